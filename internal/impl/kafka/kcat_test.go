package kafka

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// TestKcatReadsWhatWeWrote reads our records with an independent client,
// librdkafka's kcat (Debian package "kcat"): zstd batches, keys, headers,
// and partitions matching the Java murmur2 reference.
func TestKcatReadsWhatWeWrote(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is not on PATH; CI must install the Debian package kcat (apt-get install -y kcat)")
		}
		t.Skip("kcat not on PATH (install the Debian package kcat); skipped outside CI")
	}
	c := newCluster(t)
	k := newProducer(t, c, "topic: t\nkey: ${! meta(\"key\") }\ncompression: zstd\nmetadata: {include_prefixes: [okta_]}\n")
	var b service.MessageBatch
	for key := range murmur2Vectors {
		m := service.NewMessage([]byte(`{"uuid":"` + key + `"}`))
		m.MetaSetMut("key", key)
		m.MetaSetMut("okta_event_type", "user.session.start")
		b = append(b, m)
	}
	if err := write(t, k, b); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", strings.Join(c.ListenAddrs(), ","),
		"-C", "-t", "t", "-o", "beginning", "-e", "-q", "-f", "%p|%k|%s|%h\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(murmur2Vectors) {
		t.Fatalf("kcat printed %d records, want %d:\n%s", len(lines), len(murmur2Vectors), out)
	}
	for _, line := range lines {
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			t.Fatalf("unexpected kcat line %q", line)
		}
		key := f[1]
		if _, ok := murmur2Vectors[key]; !ok {
			t.Errorf("kcat saw unknown key %q", key)
			continue
		}
		if want := javaPartition(key, 4); f[0] != strconv.Itoa(int(want)) {
			t.Errorf("key %q on partition %s, want %d", key, f[0], want)
		}
		if f[2] != `{"uuid":"`+key+`"}` || f[3] != "okta_event_type=user.session.start" {
			t.Errorf("kcat line %q", line)
		}
	}
}
