package kafkax

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Connection is a parsed set of connection fields: the franz-go options for
// brokers, client id, TLS and SASL, and what they say about TLS and SASL, so
// that a failed connection can be explained. Parsing validates everything
// and does no I/O.
type Connection struct {
	opts []kgo.Opt
	tls  bool // TLS is on
	sasl bool // at least one SASL mechanism is set
}

// ParseConnection reads the connection fields of conf (seed_brokers,
// client_id, tls, sasl).
func ParseConnection(conf *service.ParsedConfig) (*Connection, error) {
	brokers, err := SplitList(conf, FieldSeedBrokers)
	if err != nil {
		return nil, err
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%s must list at least one broker", FieldSeedBrokers)
	}
	clientID, err := conf.FieldString(FieldClientID)
	if err != nil {
		return nil, err
	}
	c := &Connection{opts: []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientID)}}
	tlsConf, tlsOn, err := conf.FieldTLSToggled(FieldTLS)
	if err != nil {
		return nil, err
	}
	if tlsOn {
		c.tls = true
		c.opts = append(c.opts, kgo.Dialer(tlsDialer(tlsConf)))
	}
	mechs, err := saslMechanisms(conf)
	if err != nil {
		return nil, err
	}
	if len(mechs) > 0 {
		c.sasl = true
		c.opts = append(c.opts, kgo.SASL(mechs...))
	}
	return c, nil
}

// Opts returns the connection's client options followed by extra, in a new
// slice.
func (c *Connection) Opts(extra ...kgo.Opt) []kgo.Opt {
	return append(append(make([]kgo.Opt, 0, len(c.opts)+len(extra)), c.opts...), extra...)
}

// Ping checks that a broker answers; a failure says its likely cause and fix.
func (c *Connection) Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return explain(err, c.tls, c.sasl)
	}
	return nil
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
