package okta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func limitsClient(t *testing.T, h http.HandlerFunc) (*Client, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	org, _ := url.Parse(srv.URL)
	c, err := NewClient(Config{Org: org, APIToken: "tok", HTTPClient: srv.Client(), UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL + "/api/v1/logs?limit=1000"
}

// A response body larger than maxResponseBytes is refused as a transient
// failure (the link is retried with backoff), without reading it all.
func TestResponseBodyLimit(t *testing.T) {
	c, link := limitsClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Link", `<http://`+r.Host+r.URL.String()+`>; rel="next"`)
		chunk := []byte(`[` + strings.Repeat(" ", 1<<20))
		for written := 0; written <= maxResponseBytes+len(chunk); written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			chunk[0] = ' '
		}
	})
	_, err := c.Fetch(context.Background(), link)
	var reqErr *RequestError
	if !errors.As(err, &reqErr) || reqErr.Kind != FailTransient || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized body: %v", err)
	}
}

// Events have no size limit of their own below the response limit: a 5 MiB
// event with a hostile string is passed on byte for byte.
func TestLargeEventPassesUnchanged(t *testing.T) {
	big := `{"uuid":"u1","published":"2026-11-25T10:00:00.000Z","debugContext":{"x":"` + strings.Repeat(`\u00e9\"\\`, 1<<20) + `"}}`
	c, link := limitsClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Link", `<http://`+r.Host+r.URL.String()+`>; rel="next"`)
		_, _ = w.Write([]byte("[" + big + "]"))
	})
	p, err := c.Fetch(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 1 || string(p.Events[0].Raw) != big {
		t.Fatalf("got %d events", len(p.Events))
	}
}
