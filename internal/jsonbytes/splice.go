package jsonbytes

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Splicing members into and out of a JSON object while keeping every other
// byte as it was: cel_detect writes "detections" into an event this way, and
// detections_to_alerts takes it out again and puts the event into an alert.

// WithoutMember returns the JSON object raw without its top-level member(s)
// called name; every other byte is kept as it was.
func WithoutMember(raw []byte, name string) ([]byte, error) {
	for {
		start, end, found, err := memberSpan(raw, name)
		if err != nil {
			return nil, err
		}
		if !found {
			return raw, nil
		}
		out := make([]byte, 0, len(raw)-(end-start))
		out = append(out, raw[:start]...)
		raw = append(out, raw[end:]...)
	}
}

// memberSpan finds the first top-level member called name in the object raw
// and returns the byte span to cut so that the rest stays valid JSON: the
// preceding comma with the member, or for a first member the member with the
// following comma.
func memberSpan(raw []byte, name string) (start, end int, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return 0, 0, false, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return 0, 0, false, errors.New("not a JSON object")
	}
	first := true
	for dec.More() {
		prevEnd := int(dec.InputOffset())
		keyTok, err := dec.Token()
		if err != nil {
			return 0, 0, false, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false, err
		}
		valEnd := int(dec.InputOffset())
		if key, _ := keyTok.(string); key == name {
			if !first {
				return prevEnd, valEnd, true, nil
			}
			rest := raw[valEnd:]
			i := 0
			for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\n' || rest[i] == '\r') {
				i++
			}
			if i < len(rest) && rest[i] == ',' {
				return prevEnd, valEnd + i + 1, true, nil
			}
			return prevEnd, valEnd, true, nil
		}
		first = false
	}
	return 0, 0, false, nil
}

// AppendMember appends "name":value (value: JSON) to the JSON object obj,
// keeping every byte of obj before its closing brace.
func AppendMember(obj []byte, name string, value []byte) ([]byte, error) {
	body := bytes.TrimRight(obj, " \t\r\n")
	if len(body) == 0 || body[len(body)-1] != '}' {
		return nil, errors.New("not a JSON object")
	}
	body = body[:len(body)-1]
	key, _ := json.Marshal(name)
	out := make([]byte, 0, len(body)+len(key)+len(value)+3)
	out = append(out, body...)
	if inner := bytes.TrimRight(body, " \t\r\n"); len(inner) > 0 && inner[len(inner)-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, '}'), nil
}
