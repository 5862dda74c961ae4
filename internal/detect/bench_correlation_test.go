package detect

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCorrelation is each stateful rule kind's cost per event on a
// stream of events its condition or steps match (unique uuids, one second
// apart, spread over keys), with MaxLateness expiring state as it goes.
func BenchmarkCorrelation(b *testing.B) {
	const pool = 1 << 17
	kinds := []struct {
		name, rule string
		event      func(i int) []byte
	}{
		{"threshold", thresholdRule, func(i int) []byte {
			return of(time.Duration(i)*time.Second, fmt.Sprint("u", i), "fail", fmt.Sprint("user", i%512), nil)
		}},
		{"distinct", distinctRule, func(i int) []byte {
			return of(time.Duration(i)*time.Second, fmt.Sprint("u", i), "fail", fmt.Sprint("user", i%97), map[string]any{"ip": fmt.Sprint("ip", i%64)})
		}},
		{"sequence", sequenceRule, func(i int) []byte {
			return of(time.Duration(i)*time.Second, fmt.Sprint("u", i), []string{"deny", "deny", "approve"}[i%3], fmt.Sprint("user", i/3%512), nil)
		}},
		{"first_seen", firstSeenRule, func(i int) []byte {
			return of(time.Duration(i)*time.Second, fmt.Sprint("u", i), "login", fmt.Sprint("user", i%512), map[string]any{"device": fmt.Sprint("dev", i%7)})
		}},
		{"absence", absenceRule, func(i int) []byte {
			return of(time.Duration(i)*time.Second, fmt.Sprint("u", i), []string{"start", "done", "start"}[i%3], fmt.Sprint("user", i/3%512), nil)
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			events := make([][]byte, pool)
			for i := range events {
				events[i] = k.event(i)
			}
			e := NewEngine(compileRules(b, k.rule), EngineOptions{MaxLateness: time.Hour})
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.Process(events[i%pool]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
