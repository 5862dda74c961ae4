package okta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParseEvents(t *testing.T) {
	evs, err := parseEvents([]byte(` [{"uuid":"u1","eventType":"user.session.start","published":"2026-11-25T10:00:00.000Z","x":{"y":1}},{"uuid":"u2"}] `), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].UUID != "u1" || evs[0].EventType != "user.session.start" || evs[1].UUID != "u2" {
		t.Fatalf("parsed %+v", evs)
	}
	if string(evs[0].Raw) != `{"uuid":"u1","eventType":"user.session.start","published":"2026-11-25T10:00:00.000Z","x":{"y":1}}` {
		t.Fatalf("event bytes changed: %s", evs[0].Raw)
	}
	if evs, err := parseEvents([]byte(`[]`), "application/json"); err != nil || len(evs) != 0 {
		t.Fatalf("empty page: %v %v", evs, err)
	}
	bad := map[string]string{
		"<!DOCTYPE html><html><body>Sign in</body></html>": "not a JSON array",
		`[{"uuid":"u1"},{"uuid":`:                          "not valid JSON",
		`{"errorCode":"E0000011"}`:                         "not a JSON array",
		`[1,2]`:                                            "not a JSON object",
		``:                                                 "not a JSON array",
	}
	for body, want := range bad {
		_, err := parseEvents([]byte(body), "text/html")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseEvents(%q) = %v, want %q", body, err, want)
		}
	}
}

// An event whose uuid, eventType or published is neither a string nor null
// is passed on with that field empty and named, not refused with its page
// (which would stall the input on the page forever).
func TestParseEventsOddFields(t *testing.T) {
	body := `[{"uuid":5,"eventType":"a"},{"uuid":"u2","published":{"t":1},"eventType":null},{"UUID":"x","uuid":[1]}]`
	evs, err := parseEvents([]byte(body), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{UUID: "", EventType: "a", BadField: "uuid"},
		{UUID: "u2", Published: "", BadField: "published"},
		{UUID: "", BadField: "uuid"},
	}
	for i, w := range want {
		e := evs[i]
		if e.UUID != w.UUID || e.EventType != w.EventType || e.Published != w.Published || e.BadField != w.BadField {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
	ref, err := parseEventsStdlib([]byte(body), "application/json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ref {
		if ref[i].BadField != evs[i].BadField || ref[i].UUID != evs[i].UUID {
			t.Errorf("event %d: the reference reads %+v", i, ref[i])
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`[{"uuid":"u1","published":"2026-11-25T10:00:00.000Z"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`<html>`))
	f.Add([]byte(`[{"uuid":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := parseEvents(body, "application/json")
		if err != nil && evs != nil {
			t.Fatal("events returned with an error")
		}
		// The one-pass parser must agree with encoding/json on every page.
		ref, refErr := parseEventsStdlib(body, "application/json")
		if (err == nil) != (refErr == nil) {
			t.Fatalf("parseEvents error %v, encoding/json error %v", err, refErr)
		}
		if len(evs) != len(ref) {
			t.Fatalf("%d events, encoding/json %d", len(evs), len(ref))
		}
		for i := range evs {
			if !bytes.Equal(evs[i].Raw, ref[i].Raw) || evs[i].UUID != ref[i].UUID || evs[i].EventType != ref[i].EventType || evs[i].Published != ref[i].Published || evs[i].BadField != ref[i].BadField {
				t.Fatalf("event %d: %+v, encoding/json %+v", i, evs[i], ref[i])
			}
		}
		checkSplitPage(t, body) // the fast path agrees with the general one
	})
}

// parseEventsStdlib is the straightforward encoding/json reading of a page:
// the reference parseEvents is checked against (TestParseEventsMatchesStdlib,
// FuzzParseEvents) and benchmarked against (BenchmarkParsePage).
func parseEventsStdlib(body []byte, contentType string) ([]Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, transientError(fmt.Sprintf("System Log response is not a JSON array (Content-Type %q, body starts %q)", contentType, snippet(trimmed)), nil)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, transientError(fmt.Sprintf("System Log response is not valid JSON (%d bytes)", len(body)), err)
	}
	events := make([]Event, 0, len(raws))
	for i, raw := range raws {
		// The three fields as encoding/json fills string fields, except that
		// a value neither string nor null empties the field and is named.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, transientError(fmt.Sprintf("System Log event %d is not a JSON object", i), err)
		}
		ev := Event{Raw: raw}
		type field struct {
			name string
			dst  *string
		}
		fields := []field{{"uuid", &ev.UUID}, {"eventType", &ev.EventType}, {"published", &ev.Published}}
		members, err := orderedMembers(raw)
		if err != nil {
			return nil, transientError(fmt.Sprintf("System Log event %d is not a JSON object", i), err)
		}
		for _, m := range members {
			for _, f := range fields {
				if !strings.EqualFold(m.key, f.name) {
					continue
				}
				var s *string
				if json.Unmarshal(m.val, &s) != nil {
					*f.dst = ""
					if ev.BadField == "" {
						ev.BadField = f.name
					}
				} else if s != nil {
					*f.dst = *s
				}
			}
		}
		events = append(events, ev)
	}
	return events, nil
}

type rawMember struct {
	key string
	val json.RawMessage
}

// orderedMembers lists an object's top-level members in order, duplicates
// included (a Go map would keep only one).
func orderedMembers(raw []byte) ([]rawMember, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out []rawMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, rawMember{key: tok.(string), val: v})
	}
	return out, nil
}
