package detect

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/oktadetect/oktadetect/rules"
)

// benchEvents builds a realistic mix: mostly successful logins from a few
// hundred users around the world, failures, token and admin events.
func benchEvents(n int) [][]byte {
	cities := []struct {
		name     string
		lat, lon float64
	}{{"San Francisco", 37.7852, -122.3874}, {"London", 51.5072, -0.1276}, {"Tokyo", 35.6764, 139.65}, {"Berlin", 52.52, 13.405}}
	events := make([][]byte, n)
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		user := fmt.Sprintf("user%03d@acme.io", i%300)
		city := cities[(i/300)%len(cities)]
		ev := map[string]any{
			"uuid":           fmt.Sprintf("e%08d-0000-4000-8000-000000000000", i),
			"published":      start.Add(time.Duration(i) * 250 * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
			"eventType":      "user.session.start",
			"version":        "0",
			"severity":       "INFO",
			"displayMessage": "User login to Okta",
			"actor":          map[string]any{"id": "00u" + user, "type": "User", "alternateId": user, "displayName": user},
			"client": map[string]any{
				"userAgent": map[string]any{"browser": "CHROME", "os": "Mac OS X", "rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
				"geographicalContext": map[string]any{"city": city.name, "country": "X", "postalCode": "00000",
					"geolocation": map[string]any{"lat": city.lat, "lon": city.lon}},
				"zone": "null", "ipAddress": "136.24.229.58", "device": "Computer",
			},
			"outcome":               map[string]any{"result": "SUCCESS"},
			"authenticationContext": map[string]any{"authenticationStep": 0, "externalSessionId": "102abc"},
			"securityContext":       map[string]any{"asNumber": 7922, "asOrg": "comcast", "isp": "comcast", "domain": "comcast.net", "isProxy": false},
			"debugContext":          map[string]any{"debugData": map[string]any{"requestId": "X777", "requestUri": "/api/v1/authn", "threatSuspected": "false"}},
			"transaction":           map[string]any{"type": "WEB", "id": "X777", "detail": map[string]any{}},
			"request":               map[string]any{"ipChain": []any{map[string]any{"ip": "136.24.229.58", "version": "V4"}}},
		}
		switch i % 10 {
		case 7, 8:
			ev["outcome"] = map[string]any{"result": "FAILURE", "reason": "INVALID_CREDENTIALS"}
		case 9:
			ev["eventType"] = []string{"system.api_token.create", "user.account.privilege.grant", "system.api_token.revoke"}[i%3]
			ev["debugContext"] = map[string]any{"debugData": map[string]any{"privilegeGranted": "Application administrator (all)"}}
			ev["target"] = []any{map[string]any{"id": "00T1", "type": "Token", "alternateId": "unknown", "displayName": "key"}}
		}
		events[i], _ = json.Marshal(ev)
	}
	return events
}

// BenchmarkDecodeOnly is the baseline: decoding the JSON and nothing else.
func BenchmarkDecodeOnly(b *testing.B) {
	events := benchEvents(4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := json.Unmarshal(events[i%len(events)], &m); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDetectSeedRules runs the engine with the five seed rules
// (decode, evaluate, state, tagging).
func BenchmarkDetectSeedRules(b *testing.B) {
	events := benchEvents(4096)
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Process(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDetectSeedRulesParallel is the same under concurrent threads.
func BenchmarkDetectSeedRulesParallel(b *testing.B) {
	events := benchEvents(4096)
	rs, err := LoadFS(rules.FS, rules.Root, CompileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(rs, EngineOptions{})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = e.Process(events[i%len(events)])
			i++
		}
	})
	reportRate(b)
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}
