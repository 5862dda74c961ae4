package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
)

const orgRule = `// id: O
// title: "grant in {{ event.oktadetect.org }}"
event.?oktadetect.?org.orValue('') == 'acme.okta.com'
`

// The processor passes okta_org by default, and any configured key.
func TestProcessorEventMetadata(t *testing.T) {
	dir := t.TempDir()
	writeRuleFile(t, dir, "org.cel", orgRule+"&& event.?oktadetect.?tenant.orValue('') == 't1'\n")
	for yaml, want := range map[string]bool{
		"rules: [" + dir + "]\nevent_metadata: {org: okta_org, tenant: tenant}": true,
		"rules: [" + dir + "]":                     false, // no tenant by default
		"rules: [" + dir + "]\nevent_metadata: {}": false,
	} {
		p := newTestProcessor(t, yaml)
		msg := service.NewMessage([]byte(`{"eventType":"x"}`))
		msg.MetaSetMut("okta_org", "acme.okta.com")
		msg.MetaSetMut("tenant", "t1")
		batches, err := p.ProcessBatch(context.Background(), service.MessageBatch{msg})
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := batches[0][0].MetaGet(meta.DetectionIDs)
		if (ids == "O") != want {
			t.Errorf("%s: detection_ids %q, want a match %v", yaml, ids, want)
		}
	}
	if _, err := ConfigSpec().ParseYAML("event_metadata: {org: ''}", nil); err == nil {
		conf, _ := ConfigSpec().ParseYAML("event_metadata: {org: ''}", nil)
		if _, err := newProcessorFromConfig(conf, service.MockResources(), testProduct); err == nil || !strings.Contains(err.Error(), "must not be empty") {
			t.Errorf("empty metadata key accepted: %v", err)
		}
	}
}

func writeRuleFile(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A state_file that cannot be written (its "directory" is a file, or is
// read-only) stops cel_detect at start with an error naming the directory,
// instead of events flowing while every save fails.
func TestStateFileUnwritableRefusesToStart(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(base, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{filepath.Join(file, "sub", "state.json"): filepath.Join(file, "sub")}
	if os.Geteuid() != 0 { // root writes anywhere
		cases[filepath.Join(readOnly, "state.json")] = readOnly
	}
	for path, dir := range cases {
		conf, err := ConfigSpec().ParseYAML("state_file: "+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newProcessorFromConfig(conf, service.MockResources(), testProduct)
		if err == nil {
			p.Close(context.Background())
			t.Fatalf("state_file %s: cel_detect started", path)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "state_file") {
			t.Errorf("state_file %s: error %q does not name the directory %s", path, err, dir)
		}
	}
}

// A state_file whose directory is missing: cel_detect creates it (0700) at
// start, and the snapshot lands there.
func TestStateFileDirectoryCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "oktadetect")
	path := filepath.Join(dir, "state.json")
	p := newTestProcessor(t, "state_file: "+path)
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v, err %v; want created with mode 0700", info, err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot after close: %v", err)
	}
}
