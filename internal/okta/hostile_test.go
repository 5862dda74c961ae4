package okta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// deepEvent is an event whose "x" nests levels arrays deep.
func deepEvent(uuid string, levels int) []byte {
	return []byte(`{"uuid":"` + uuid + `","published":"2026-01-02T03:04:05.000Z","x":` +
		strings.Repeat("[", levels) + strings.Repeat("]", levels) + `}`)
}

// fastjson's parser stops at 300 levels; an event nested deeper, but within
// encoding/json's 10,000, is a valid page and must be read (it used to be
// refused as invalid JSON and retried forever, stalling the input).
func TestDeepEventIsRead(t *testing.T) {
	ev := deepEvent("deep-1", 9_990)
	body := append(append([]byte(`[`), ev...), `,{"uuid":"next","eventType":"e"}]`...)
	evs, err := parseEvents(body, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].UUID != "deep-1" || !bytes.Equal(evs[0].Raw, ev) || evs[1].UUID != "next" || evs[1].EventType != "e" {
		t.Fatalf("events %d: %q %q", len(evs), evs[0].UUID, evs[1].UUID)
	}
	ref, refErr := parseEventsStdlib(body, "application/json")
	if refErr != nil || len(ref) != 2 {
		t.Fatalf("encoding/json: %v", refErr)
	}
}

// Deeper than encoding/json's limit: a clear, classified error, and no stack
// exhaustion even for a body that is nothing but 64 MiB of '['.
func TestTooDeepPageIsRefusedWithoutCrash(t *testing.T) {
	for name, body := range map[string][]byte{
		"event":      append(append([]byte(`[`), deepEvent("d", 10_000)...), ']'),
		"all open":   bytes.Repeat([]byte("["), maxResponseBytes),
		"open close": append(bytes.Repeat([]byte("["), 1<<20), bytes.Repeat([]byte("]"), 1<<20)...),
	} {
		_, err := parseEvents(body, "application/json")
		var re *RequestError
		if !errors.As(err, &re) || re.Reason != ReasonTooDeep || !strings.Contains(err.Error(), "deeper than 10000") {
			t.Errorf("%s: %v, want a too_deep error", name, err)
		}
	}
}

// The top-level field scan keeps encoding/json's semantics.
func TestEventFieldsLikeEncodingJSON(t *testing.T) {
	for _, page := range []string{
		`[{"UUID":"a","uuid":"b","EVENTTYPE":"t"}]`,
		`[{"\u0075uid":"esc","published":null,"x":{"uuid":"nested"}}]`,
		`[{ "uuid" : "sp" , "eventType" : "t" , "n" : 1.5e3 , "b" : true }]`,
		`[{"uuid":"inv\u00e9\ud800"}]`,
		`[{"uuid":["not","a","string"]}]`,
		`[{"uuid":5}]`,
		`[{}]`,
		`[{"x":"}{\"uuid\":\"fake\""}]`,
	} {
		evs, err := parseEvents([]byte(page), "application/json")
		ref, refErr := parseEventsStdlib([]byte(page), "application/json")
		if (err == nil) != (refErr == nil) {
			t.Errorf("%s: error %v, encoding/json %v", page, err, refErr)
			continue
		}
		for i := range evs {
			if evs[i].UUID != ref[i].UUID || evs[i].EventType != ref[i].EventType || evs[i].Published != ref[i].Published {
				t.Errorf("%s: %+v, encoding/json %+v", page, evs[i], ref[i])
			}
		}
	}
}
