package okta

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ParsePrivateKey reads a service app's private key: PEM (PKCS #8, PKCS #1
// or SEC 1, `\n` escapes accepted) or the private JWK Okta's console
// generates, RSA of at least 2048 bits or EC P-256/P-384/P-521. It returns
// the key and the JWK's kid ("" for PEM). Its errors say what to fix and
// never quote the key.
func ParsePrivateKey(raw []byte) (crypto.Signer, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		return parseJWKPrivateKey(raw)
	}
	if !bytes.Contains(raw, []byte("-----BEGIN")) {
		return nil, "", errors.New("not a PEM block or a JWK: paste the whole key, -----BEGIN PRIVATE KEY----- line included")
	}
	if !bytes.Contains(raw, []byte("\n")) && bytes.Contains(raw, []byte(`\n`)) {
		raw = bytes.ReplaceAll(raw, []byte(`\n`), []byte("\n"))
	}
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, "", errors.New("no private key found in the PEM data")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, "", errors.New("the private key is encrypted: store it unencrypted (e.g. openssl pkcs8 -topk8 -nocrypt) and protect the file or variable instead")
		case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
			return nil, "", fmt.Errorf("found a %s, not the private key: the public key belongs on the Okta app, this field needs the private key", strings.ToLower(block.Type))
		default:
			continue // e.g. EC PARAMETERS
		}
		if err != nil {
			return nil, "", fmt.Errorf("the %s block does not parse (%s)", block.Type, keyParseReason(err))
		}
		s, err := checkKey(k)
		return s, "", err
	}
}

// keyParseReason names what x509 disliked without echoing any key bytes.
func keyParseReason(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

func parseJWKPrivateKey(raw []byte) (crypto.Signer, string, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, "", errors.New("the JWK does not parse: expect the private JWK Okta generated (with \"d\")")
	}
	if jwk.IsPublic() {
		return nil, "", errors.New("the JWK is a public key: the public key belongs on the Okta app, this field needs the private key (with \"d\")")
	}
	s, err := checkKey(jwk.Key)
	return s, jwk.KeyID, err
}

// checkKey accepts the key types Okta verifies client assertions with.
func checkKey(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("the RSA key has %d bits: Okta needs at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, errors.New("the EC key is on an unsupported curve: use P-256, P-384 or P-521")
	default:
		return nil, fmt.Errorf("unsupported key type %T: use an RSA or EC (P-256/P-384/P-521) key", k)
	}
}

// assertionAlgorithm is the JWS algorithm for the client assertion.
func assertionAlgorithm(k crypto.Signer) jose.SignatureAlgorithm {
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		switch ec.Curve {
		case elliptic.P384():
			return jose.ES384
		case elliptic.P521():
			return jose.ES512
		}
		return jose.ES256
	}
	return jose.RS256
}
