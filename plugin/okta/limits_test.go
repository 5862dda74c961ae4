package okta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func limitsClient(t *testing.T, h http.HandlerFunc) (*client, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	org, _ := url.Parse(srv.URL)
	return &client{org: org, http: srv.Client(), auth: sswsToken("tok"), userAgent: "test", now: time.Now}, srv.URL + "/api/v1/logs?limit=1000"
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
	_, err := c.fetch(context.Background(), link)
	var reqErr *requestError
	if !errors.As(err, &reqErr) || reqErr.kind != failTransient || !strings.Contains(err.Error(), "exceeds") {
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
	p, err := c.fetch(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.events) != 1 || string(p.events[0].raw) != big {
		t.Fatalf("got %d events", len(p.events))
	}
}
