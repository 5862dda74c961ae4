package okta

import (
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	cp := checkpoint{Version: checkpointVersion, Next: "https://a/api/v1/logs?after=x", UUIDs: []string{"u1"}}
	b, err := encodeCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCheckpoint(b)
	if err != nil || got.Next != cp.Next || len(got.UUIDs) != 1 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{`not json`, `{"v":99,"next":"x"}`, `{"v":1}`} {
		if _, err := decodeCheckpoint([]byte(bad)); err == nil {
			t.Errorf("decodeCheckpoint(%s): want error", bad)
		}
	}
}

// The stored cursor: whatever is in the cache, decoding never panics, and
// what decodes re-encodes to the same cursor.
func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add([]byte(`{"v":1,"next":"https://acme.okta.com/api/v1/logs?after=1&limit=1000","uuids":["a","b"]}`))
	f.Add([]byte(`{"v":2,"next":"x"}`))
	f.Add([]byte(`{"v":1,"next":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cp, err := decodeCheckpoint(raw)
		if err != nil {
			return
		}
		enc, err := encodeCheckpoint(cp)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeCheckpoint(enc)
		if err != nil || again.Next != cp.Next || len(again.UUIDs) != len(cp.UUIDs) {
			t.Fatalf("round trip changed the cursor: %v", err)
		}
	})
}
