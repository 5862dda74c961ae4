package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// The README's first command: the demo detects all five seed detections
// within its run and exits 0.
func TestDemoPrintsTheFiveSeedDetections(t *testing.T) {
	out, err := exec.Command(binary, "demo", "--duration", "60s").CombinedOutput()
	if err != nil {
		t.Fatalf("oktadetect demo: %v\n%s", err, out)
	}
	for _, id := range seedRuleIDs {
		if !strings.Contains(string(out), id) {
			t.Errorf("the demo did not print a %s alert", id)
		}
	}
	if !strings.Contains(string(out), "Summary after") {
		t.Error("the demo printed no summary")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", out)
	}
}
