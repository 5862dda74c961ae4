package okta

import (
	"strings"
	"testing"
)

func TestStatusErrorsNameTheCause(t *testing.T) {
	body := []byte(`{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeX","errorCauses":[]}`)
	e := statusError(401, body, "acme.okta.com")
	if e.Kind != FailConfig || !strings.Contains(e.Error(), "api_token") || !strings.Contains(e.Error(), "E0000011") {
		t.Fatalf("401: %v", e)
	}
	if e := statusError(403, nil, "acme.okta.com"); !strings.Contains(e.Error(), "okta.logs.read") {
		t.Fatalf("403: %v", e)
	}
	if e := statusError(503, []byte("<html>"), "acme.okta.com"); e.Kind != FailTransient {
		t.Fatalf("503 must be transient: %v", e)
	}
	if e := statusError(429, nil, "acme.okta.com"); e.Kind != FailRateLimited {
		t.Fatalf("429: %v", e)
	}
}
