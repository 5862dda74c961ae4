package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oktadetect/oktadetect/internal/testkit"
)

// TestPipelineDetectBinary builds the real binary and runs
// stdin → cel_detect → stdout over a recorded stream of Okta events.
func TestPipelineDetectBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "oktadetect")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(`
input:
  stdin: {}
pipeline:
  threads: 2
  processors:
    - cel_detect:
        state_file: `+filepath.Join(dir, "state.json")+`
output:
  stdout: {}
logger:
  level: ERROR
http:
  address: 127.0.0.1:0 # never the default port, which tests/e2e's binding test needs
`), 0o600)

	stream, want := recordedStream()
	cmd := exec.Command(bin, "-c", config)
	cmd.Stdin = strings.NewReader(strings.Join(stream, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := testkit.RunFor(cmd, testkit.Patience); err != nil {
		t.Fatalf("oktadetect: %v\n%s", err, stderr.String())
	}
	got := map[string][]string{}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(stream) {
		t.Fatalf("%d events out, %d in:\n%s", len(lines), len(stream), stdout.String())
	}
	for _, l := range lines {
		var e struct {
			UUID string `json:"uuid"`
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("bad output line %q: %v", l, err)
		}
		json.Unmarshal([]byte(l), &e)
		var ids []string
		var dets []map[string]any
		json.Unmarshal(raw["detections"], &dets)
		for _, d := range dets {
			ids = append(ids, d["id"].(string))
			if d["alert_id"] == "" || d["title"] == "" || d["severity"] == "" {
				t.Errorf("incomplete detection %v", d)
			}
		}
		got[e.UUID] = ids
	}
	// Two pipeline threads reorder events: the event that completes the
	// evidence (the fifth failure, the second login) is whichever arrives
	// last, so count tags per rule rather than per event there.
	perRule := func(m map[string][]string) map[string]int {
		n := map[string]int{}
		for _, ids := range m {
			for _, id := range ids {
				n[id]++
			}
		}
		return n
	}
	if g, w := fmt.Sprint(perRule(got)), fmt.Sprint(perRule(want)); g != w {
		t.Errorf("tags per rule %s, want %s (%v)", g, w, got)
	}
	for _, uuid := range []string{"admin", "token", "plain"} {
		if strings.Join(got[uuid], ",") != strings.Join(want[uuid], ",") {
			t.Errorf("event %s: detections %v, want %v", uuid, got[uuid], want[uuid])
		}
	}
	unmatched := stream[len(stream)-1]
	if !strings.Contains(stdout.String(), unmatched) {
		t.Error("unmatched event not passed byte for byte")
	}
}

// recordedStream: a brute force (5 failures in 4 minutes), an admin grant,
// an API token, and an impossible trip, among ordinary events; returns the
// lines and the detections expected per uuid.
func recordedStream() ([]string, map[string][]string) {
	want := map[string][]string{}
	var lines []string
	add := func(uuid, published string, fields string, ids ...string) {
		lines = append(lines, fmt.Sprintf(`{"uuid":%q,"published":%q,%s}`, uuid, published, fields))
		want[uuid] = ids
	}
	fail := `"eventType":"user.session.start","actor":{"id":"00u1","alternateId":"eve@acme.io"},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}`
	for i := range 5 {
		var ids []string
		if i == 4 {
			ids = []string{"Okta.BruteForceLogins"}
		}
		add(fmt.Sprintf("bf-%d", i), fmt.Sprintf("2024-05-01T10:0%d:00.000Z", i), fail, ids...)
	}
	add("admin", "2024-05-01T10:10:00.000Z", `"eventType":"user.account.privilege.grant","outcome":{"result":"SUCCESS"},"actor":{"alternateId":"a@acme.io","displayName":"A"},"target":[{"alternateId":"b@acme.io","displayName":"B"}],"debugContext":{"debugData":{"privilegeGranted":"Super administrator"}}`,
		"Okta.AdminRoleAssigned", "Okta.CustomerDetections.SuperAdminGrantedOrRevoked", "Okta.Sigma.AdminRoleAssignedToUserOrGroup")
	add("token", "2024-05-01T10:11:00.000Z", `"eventType":"system.api_token.create","outcome":{"result":"SUCCESS"},"actor":{"alternateId":"a@acme.io","displayName":"A"},"target":[{"id":"00T9","displayName":"ci"}]`, "Okta.APIKeyCreated")
	login := func(city string, lat, lon float64) string {
		return fmt.Sprintf(`"eventType":"user.session.start","actor":{"id":"00u2","alternateId":"bob@acme.io"},"outcome":{"result":"SUCCESS"},"client":{"geographicalContext":{"city":%q,"country":"X","geolocation":{"lat":%v,"lon":%v}}}`, city, lat, lon)
	}
	add("geo-1", "2024-05-01T09:00:00.000Z", login("Baltimore", 39.2891, -76.5583))
	add("geo-2", "2024-05-01T11:00:00.000Z", login("Paris", 48.8566, 2.3522), "Okta.GeographicallyImprobableAccess")
	add("plain", "2024-05-01T12:00:00.000Z", `"eventType":"user.session.end","n":1.50`)
	return lines, want
}
