package okta

import (
	"strings"
	"sync"
)

// redacted replaces a secret in any text the input logs or returns.
const redacted = "[redacted]"

// minSecretLen is the shortest secret redacted: replacing a shorter string
// everywhere would garble messages, and no Okta credential is that short.
const minSecretLen = 8

// secretRing remembers the last credentials a client sent (tokens, client
// assertions, DPoP proofs), so a server that echoes one back, in an error
// body, a header or a page, does not get it into the log.
type secretRing struct {
	mu   sync.Mutex
	vals [12]string
	n    int
}

// add remembers s.
func (r *secretRing) add(s string) {
	if len(s) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals[r.n%len(r.vals)] = s
	r.n++
}

func (r *secretRing) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.vals))
	for _, v := range r.vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// redactString removes every secret from s, and every fragment of one at
// least minSecretLen long: messages quote a server's text cut short (a body's
// first bytes, a description's first 200), which can end inside a secret.
// Credentials are random, so a fragment that long does not occur by chance.
// It is the one redactor: the client passes every error through
// redactError, and every string a server sent reaches a message only inside
// such an error.
func redactString(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen {
			s = redactFragments(s, sec)
		}
	}
	return s
}

// redactFragments replaces each longest run of s that occurs in sec (and is
// at least minSecretLen long).
func redactFragments(s, sec string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+minSecretLen <= len(s); {
		if !strings.Contains(sec, s[i:i+minSecretLen]) {
			i++
			continue
		}
		j := i + minSecretLen
		for j < len(s) && strings.Contains(sec, s[i:j+1]) {
			j++
		}
		b.WriteString(s[last:i])
		b.WriteString(redacted)
		last, i = j, j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// redactError returns err with every secret removed from its text. A
// *RequestError keeps its type and fields (redacted), so callers still
// classify it; anything else keeps its chain for errors.Is and errors.As.
func redactError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	if e, ok := err.(*RequestError); ok {
		c := *e
		c.msg = redactString(e.msg, secrets)
		c.Code = redactString(e.Code, secrets)
		c.Summary = redactString(e.Summary, secrets)
		c.ErrorID = redactString(e.ErrorID, secrets)
		c.cause = redactError(e.cause, secrets)
		return &c
	}
	msg := err.Error()
	if clean := redactString(msg, secrets); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

// redactedError is an error whose text had a secret in it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
