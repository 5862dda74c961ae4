package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// selfSigned makes a CA-less server certificate for 127.0.0.1 and returns
// it with its PEM, which doubles as the client's root CA.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	c := newCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	indented := "      " + strings.ReplaceAll(strings.TrimSpace(caPEM), "\n", "\n      ")
	k := newProducer(t, c, "topic: t\ntls:\n  enabled: true\n  root_cas: |\n"+indented+"\n")
	if err := write(t, k, msgBatch("over tls")); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	recs := consume(t, c, "t", 1, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	if string(recs[0].Value) != "over tls" {
		t.Fatalf("got %q", recs[0].Value)
	}

	// Without the CA the broker's certificate is refused.
	bad, err := parseProducer("seed_brokers: [" + c.ListenAddrs()[0] + "]\ntopic: t\ntimeout: 1s\ntls: {enabled: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close(t.Context())
	if err := bad.Connect(t.Context()); err == nil {
		t.Error("connected to a broker whose certificate is not trusted")
	}
}
