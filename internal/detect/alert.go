package detect

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oktadetect/oktadetect/internal/jsonbytes"
)

// alert renders the detection of a tagged event and assigns its alert_id:
// for stateful rules from their evidence (its opening, count, values,
// sequence), for the others from the dedup period the event falls in.
func (e *Engine) alert(r activeRule, ev *event, act *activation, evd *evidence) (*Detection, error) {
	title, err := r.title.render(act)
	if err != nil {
		return nil, fmt.Errorf("title: %w", err)
	}
	severity, err := r.severity.render(act)
	if err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	severity = strings.ToUpper(strings.TrimSpace(severity))
	if !validSeverity(severity) {
		return nil, fmt.Errorf("severity: %q is not one of %s", severity, strings.Join(severityLevels, "|"))
	}
	d := &Detection{ID: r.ID, Title: title, Severity: severity, Rule: r.info}
	if d.Dedup, err = evalKey(r.dedupKey, act, title); err != nil {
		return nil, fmt.Errorf("dedup.key: %w", err)
	}
	// The key may point into the event's bytes; it is kept in state and in
	// the detection (see evalRule).
	d.Dedup = strings.Clone(d.Dedup)
	if r.context != nil {
		v, _, err := r.context.Eval(act)
		if err != nil {
			return nil, fmt.Errorf("context: %w", err)
		}
		if d.Context, err = toJSONNative(v); err != nil {
			return nil, fmt.Errorf("context: %w", err)
		}
	}
	var opening string
	if evd != nil {
		d.Count, d.Values, d.Sequence = evd.count, evd.values, evd.sequence
		opening = openingText(evd.opening)
	} else {
		opening = r.opening(ev, d.Dedup)
	}
	d.AlertID = alertID(r.ID, d.Dedup, opening, ev.org())
	return d, nil
}

// opening is the alert's opening time as text: the dedup period's opening
// the event falls in; events without a usable published time get an alert
// of their own, named after their content.
func (r activeRule) opening(ev *event, key string) string {
	if ev.timeErr != nil {
		sum := sha1.Sum(ev.raw)
		return fmt.Sprintf("event:%x", sum[:8])
	}
	return openingText(r.state.assign(ev.scoped(key), ev.at, int64(r.Dedup.Period)))
}

func openingText(at int64) string {
	return time.Unix(0, at).UTC().Format(time.RFC3339Nano)
}

// alertNamespace is the UUIDv5 namespace of alert ids (a fixed random UUID).
var alertNamespace = [16]byte{0x6f, 0x6b, 0x74, 0x61, 0x2d, 0x64, 0x65, 0x74, 0x8e, 0x1d, 0x43, 0x2b, 0x9a, 0x52, 0x7c, 0x3f}

// alertID is a UUIDv5 of (rule, dedup key, opening time, and the org when
// the event has one): stable, so that replays of the same events give the
// same ids, and never shared by two orgs.
func alertID(ruleID, key, opening, org string) string {
	h := sha1.New()
	h.Write(alertNamespace[:])
	h.Write([]byte(ruleID + "\x00" + key + "\x00" + opening))
	if org != "" {
		h.Write([]byte("\x00" + org))
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (t *template) render(act *activation) (string, error) {
	if s, ok := t.static(); ok {
		return s, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.expr == nil {
			b.WriteString(p.literal)
			continue
		}
		v, _, err := p.expr.Eval(act)
		if err != nil {
			return "", err
		}
		b.WriteString(valueString(v))
	}
	return b.String(), nil
}

// addDetections writes the detections into the event. The original bytes
// are kept and the array spliced in before the closing brace, so that the
// event's own fields stay byte for byte as Okta sent them.
//
// viewed says the decoded object carries the metadata view (metaview.go),
// which is not part of the event's bytes.
func addDetections(raw []byte, obj *jsonObject, viewed bool, dets []Detection) ([]byte, error) {
	arr, err := json.Marshal(dets)
	if err != nil {
		return nil, fmt.Errorf("encoding detections: %w", err)
	}
	if _, exists := obj.lookup("detections"); exists {
		return reencodeWith(withoutMetaView(obj, viewed), arr)
	}
	out, err := jsonbytes.AppendMember(raw, "detections", arr)
	if err != nil {
		return reencodeWith(withoutMetaView(obj, viewed), arr)
	}
	return out, nil
}

// reencodeWith replaces an existing "detections" field (an event processed
// twice); the event is re-encoded.
func reencodeWith(obj map[string]any, arr []byte) ([]byte, error) {
	cp := make(map[string]any, len(obj))
	for k, v := range obj {
		cp[k] = v
	}
	cp["detections"] = json.RawMessage(arr)
	out, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return out, nil
}
