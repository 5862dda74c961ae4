package kafka

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
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// This file is the one place for what every Kafka component shares: the
// connection fields turned into franz-go options, and how a connection
// failure is explained and logged.

// connectionOpts are the client options every component shares: brokers,
// client id, TLS and SASL.
func connectionOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	brokers, err := seedBrokers(conf)
	if err != nil {
		return nil, err
	}
	clientID, err := conf.FieldString(kpFieldClientID)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientID)}
	tlsConf, tlsOn, err := conf.FieldTLSToggled(kpFieldTLS)
	if err != nil {
		return nil, err
	}
	if tlsOn {
		opts = append(opts, kgo.Dialer(tlsDialer(tlsConf)))
	}
	mechs, err := saslMechanisms(conf)
	if err != nil {
		return nil, err
	}
	if len(mechs) > 0 {
		opts = append(opts, kgo.SASL(mechs...))
	}
	return opts, nil
}

// tlsHandshakeTimeout bounds a TLS handshake, so that TLS against a
// plaintext listener (which waits for a request that never completes) fails
// as a TLS error rather than as a timeout of whatever request was waiting.
const tlsHandshakeTimeout = 5 * time.Second

// tlsDialer dials TCP, then shakes hands, naming the handshake in its error.
func tlsDialer(conf *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		d := &net.Dialer{Timeout: 10 * time.Second}
		raw, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		c := conf.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(host)
		}
		hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
		defer cancel()
		tc := tls.Client(raw, c)
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			if hctx.Err() != nil && ctx.Err() == nil {
				// Not a context error to franz-go, which would retry the
				// dial until the caller gives up and report only that.
				err = fmt.Errorf("no answer within %v", tlsHandshakeTimeout)
			}
			return nil, &tlsHandshakeError{host: host, err: err}
		}
		return tc, nil
	}
}

type tlsHandshakeError struct {
	host string
	err  error
}

func (e *tlsHandshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with %s: %v", e.host, e.err)
}

func (e *tlsHandshakeError) Unwrap() error { return e.err }

// connHints is what a component's config says about its connections, so
// that a bare EOF can be explained.
type connHints struct{ tls, sasl bool }

func connHintsOf(conf *service.ParsedConfig) connHints {
	var h connHints
	_, h.tls, _ = conf.FieldTLSToggled(kpFieldTLS)
	mechs, _ := saslMechanisms(conf)
	h.sasl = len(mechs) > 0
	return h
}

func seedBrokers(conf *service.ParsedConfig) ([]string, error) {
	brokers, err := splitList(conf, kpFieldSeedBrokers)
	if err != nil {
		return nil, err
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%s must list at least one broker", kpFieldSeedBrokers)
	}
	return brokers, nil
}

// splitList reads a string list field whose entries may each hold several
// comma-separated values.
func splitList(conf *service.ParsedConfig, field string) ([]string, error) {
	raw, err := conf.FieldStringList(field)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, entry := range raw {
		for _, s := range strings.Split(entry, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// pingBrokers checks that a broker answers, explaining the failure.
func pingBrokers(ctx context.Context, cl *kgo.Client, h connHints) error {
	if err := cl.Ping(ctx); err != nil {
		return explainConnErr(err, h)
	}
	return nil
}

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

// explainConnErr names the likely cause of a failed connection and its fix.
// The categories are the ones operators meet first: nothing listening, TLS
// on one side only or an untrusted certificate, rejected credentials.
func explainConnErr(err error, h ...connHints) error {
	var hint connHints
	if len(h) > 0 {
		hint = h[0]
	}
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
	case (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && hint.sasl:
		fix = "the broker closed the connection during SASL authentication: check sasl mechanism, username and password (or password_file)"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), strings.Contains(msg, "tls:"):
		fix = "the broker closed the connection: does the listener require TLS (tls.enabled: true) or SASL?"
	case (errors.As(err, &opErr) && opErr.Timeout() || errors.Is(err, context.DeadlineExceeded)) && hint.tls:
		fix = "no answer in time: with tls.enabled, a plaintext listener never answers the TLS handshake; check tls.enabled and seed_brokers"
	case errors.As(err, &opErr) && opErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		fix = "no answer in time: check seed_brokers, firewalls, and that the port is Kafka's"
	}
	return &connError{err: err, fix: fix}
}

// connWatch logs a component's connection state as it changes: the first
// failure, a failure with another cause, and the recovery. Benthos only logs
// "not connected" for a Connect that returns service.ErrNotConnected, and
// franz-go retries silently, so without this the cause would never reach the
// log; logging on change rather than per retry keeps the log readable during
// a long outage.
type connWatch struct {
	log  *service.Logger // nil: nothing is logged
	what string

	mu    sync.Mutex
	cause string // "" while connected
}

func newConnWatch(log *service.Logger, what string) *connWatch {
	return &connWatch{log: log, what: what}
}

// failed logs err if it differs from the last failure and returns the
// error Connect should return: ErrNotConnected (so Benthos reconnects and
// /ready is false) with the cause attached for callers that print it.
func (w *connWatch) failed(err error) error {
	w.mu.Lock()
	changed := err.Error() != w.cause
	w.cause = err.Error()
	w.mu.Unlock()
	if changed && w.log != nil {
		w.log.Errorf("%s cannot use Kafka, retrying until it can: %v", w.what, err)
	}
	return fmt.Errorf("%w: %w", service.ErrNotConnected, err)
}

// ok logs the recovery after a failure.
func (w *connWatch) ok() {
	w.mu.Lock()
	was := w.cause
	w.cause = ""
	w.mu.Unlock()
	if was != "" && w.log != nil {
		w.log.Infof("%s uses Kafka again", w.what)
	}
}
