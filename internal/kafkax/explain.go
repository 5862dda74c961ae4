package kafkax

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
)

// connError is a connection failure with the fix an operator should try.
type connError struct {
	err error
	fix string
}

func (e *connError) Error() string {
	if e.fix == "" {
		return "reaching kafka brokers: " + e.err.Error()
	}
	return "reaching kafka brokers: " + e.err.Error() + " (" + e.fix + ")"
}

func (e *connError) Unwrap() error { return e.err }

// IsConnError reports whether err is (or wraps) a failure to reach the
// brokers, as Connection.Ping and the admin helpers return it, rather than
// Kafka's answer to a request.
func IsConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// explain names the likely cause of a failed connection and its fix. The
// categories are the ones operators meet first: nothing listening, TLS on
// one side only or an untrusted certificate, rejected credentials. tlsOn and
// saslOn say what the config asked for, so that a bare EOF can be explained.
func explain(err error, tlsOn, saslOn bool) error {
	var (
		dnsErr  *net.DNSError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		opErr   *net.OpError
		hsErr   *tlsHandshakeError
	)
	msg := err.Error()
	fix := ""
	switch {
	case strings.Contains(msg, "SASL is required but not provided"):
		fix = "the listener requires SASL: set sasl (mechanism, username, password)"
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		strings.Contains(msg, "SASL"):
		fix = "the broker rejected the SASL credentials: check sasl mechanism, username and password (or password_file)"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		fix = "the broker does not offer this SASL mechanism: use one its listener enables"
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &hostErr), strings.Contains(msg, "x509:"):
		fix = "the broker's TLS certificate is not trusted for this address: set tls.root_cas_file to the CA that signed it, and use the host name in the certificate"
	case errors.As(err, &recErr), errors.As(err, &hsErr):
		fix = "the TLS handshake failed: is this a plaintext listener? set tls.enabled: false, or use the port of the broker's TLS listener"
	case errors.Is(err, syscall.ECONNREFUSED):
		fix = "nothing listens there: check seed_brokers (host:port) and that Kafka runs"
	case errors.As(err, &dnsErr):
		fix = "the host name does not resolve: check seed_brokers"
	case (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && saslOn:
		fix = "the broker closed the connection during SASL authentication: check sasl mechanism, username and password (or password_file)"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), strings.Contains(msg, "tls:"):
		fix = "the broker closed the connection: does the listener require TLS (tls.enabled: true) or SASL?"
	case (errors.As(err, &opErr) && opErr.Timeout() || errors.Is(err, context.DeadlineExceeded)) && tlsOn:
		fix = "no answer in time: with tls.enabled, a plaintext listener never answers the TLS handshake; check tls.enabled and seed_brokers"
	case errors.As(err, &opErr) && opErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		fix = "no answer in time: check seed_brokers, firewalls, and that the port is Kafka's"
	}
	return &connError{err: err, fix: fix}
}

// ConnWatch logs a component's connection state as it changes: the first
// failure, a failure with another cause, and the recovery. Benthos only logs
// "not connected" for a Connect that returns service.ErrNotConnected, and
// franz-go retries silently, so without this the cause would never reach the
// log; logging on change rather than per retry keeps the log readable during
// a long outage.
type ConnWatch struct {
	log  *service.Logger // nil: nothing is logged
	what string

	mu    sync.Mutex
	cause string // "" while connected
}

// NewConnWatch watches the connection of what (a component's name, as the
// log should say it); a nil log logs nothing.
func NewConnWatch(log *service.Logger, what string) *ConnWatch {
	return &ConnWatch{log: log, what: what}
}

// Failed logs err if it differs from the last failure and returns the
// error Connect should return: ErrNotConnected (so Benthos reconnects and
// /ready is false) with the cause attached for callers that print it.
func (w *ConnWatch) Failed(err error) error {
	w.mu.Lock()
	changed := err.Error() != w.cause
	w.cause = err.Error()
	w.mu.Unlock()
	if changed && w.log != nil {
		w.log.Errorf("%s cannot use Kafka, retrying until it can: %v", w.what, err)
	}
	return fmt.Errorf("%w: %w", service.ErrNotConnected, err)
}

// OK logs the recovery after a failure.
func (w *ConnWatch) OK() {
	w.mu.Lock()
	was := w.cause
	w.cause = ""
	w.mu.Unlock()
	if was != "" && w.log != nil {
		w.log.Infof("%s uses Kafka again", w.what)
	}
}
