package changelog

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/oktadetect/oktadetect/internal/kafkax"
	"github.com/oktadetect/oktadetect/internal/testkit"
)

func newTestStore(t *testing.T, c *kfake.Cluster, topic string) *Store {
	t.Helper()
	conf, err := service.NewConfigSpec().Fields(Fields()...).ParseYAML(
		fmt.Sprintf("seed_brokers: [ %q ]\ntopic: %s\ntimeout: 20s\n", c.ListenAddrs()[0], topic), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewStore(conf)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// The changelog is created compacted with the source's partition count; a
// partition's entries come back latest per key, deletions applied, other
// sources' entries apart.
func TestChangelogRoundTrip(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.SeedTopics(6, "src"), kfake.SeedTopics(6, "other"))
	cl := newTestStore(t, c, "state")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, entries, err := cl.Open(ctx, "src", 5)
	if err != nil || len(entries) != 0 {
		t.Fatalf("first open: %v, %d entries", err, len(entries))
	}
	for _, batch := range [][]Record{
		{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("1")}},
		{{Key: []byte("a"), Value: []byte("2")}, {Key: []byte("b")}},
	} {
		if err := w.Commit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	other, _, err := cl.Open(ctx, "other", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Commit(ctx, []Record{{Key: []byte("a"), Value: []byte("other")}}); err != nil {
		t.Fatal(err)
	}
	w2, entries, err := cl.Open(ctx, "src", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || string(entries["a"]) != "2" {
		t.Fatalf("restored %q, want only a=2", entries)
	}
	if err := w.Commit(ctx, []Record{{Key: []byte("a"), Value: []byte("zombie")}}); err == nil || !strings.Contains(err.Error(), ErrFenced.Error()) {
		t.Fatalf("the first writer, taken over, committed: %v", err)
	}
	w.Close()
	w2.Close()
	other.Close()

	got := map[string]string{}
	testkit.KafkaAdmin(t, c, func(ctx context.Context, adm *kadm.Client) {
		topics, err := adm.ListTopics(ctx, "state")
		if err != nil || len(topics["state"].Partitions) != 6 {
			t.Fatalf("changelog topic: %v, %+v", err, topics["state"])
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, "state")
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			for _, cfg := range rc.Configs {
				if cfg.Value != nil {
					got[cfg.Key] = *cfg.Value
				}
			}
		}
	})
	for k, v := range kafkax.CompactedTopicConfigs() {
		if got[k] != v {
			t.Errorf("changelog topic config %s = %q, want %q", k, got[k], v)
		}
	}
}

// A changelog topic with fewer partitions than the source is a clear error.
func TestChangelogTooFewPartitions(t *testing.T) {
	c := testkit.KafkaCluster(t, kfake.SeedTopics(8, "src"), kfake.SeedTopics(2, "small"))
	cl := newTestStore(t, c, "small")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, _, err := cl.Open(ctx, "src", 7); err == nil || !strings.Contains(err.Error(), `changelog topic "small" has 2 partitions but src has partition 7`) {
		t.Fatalf("got %v", err)
	}
}
