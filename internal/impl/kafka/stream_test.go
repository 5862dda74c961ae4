package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	// The generate input and mapping processor used by the pipelines.
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

// runStream runs generate → kafka_producer until generate is exhausted and
// every message is acknowledged.
func runStream(t *testing.T, c *kfake.Cluster, count int) {
	t.Helper()
	b := service.NewStreamBuilder()
	err := b.SetYAML(fmt.Sprintf(`
input:
  generate:
    count: %d
    interval: ""
    mapping: |
      let id = uuid_v4()
      root.uuid = $id
      root.n = counter()
      meta okta_uuid = $id
output:
  kafka_producer:
    seed_brokers: [ %s ]
    topic: t
    key: ${! json("uuid") }
    timeout: 1s
    metadata:
      include_prefixes: [ okta_ ]
    batching:
      count: 10
      period: 50ms
logger:
  level: warn
`, count, strings.Join(c.ListenAddrs(), ",")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("stream: %v", err)
	}
}

func checkStreamOutput(t *testing.T, c *kfake.Cluster, count int) {
	t.Helper()
	seen := map[int]int{}
	for _, r := range consume(t, c, "t", count) {
		var ev struct {
			UUID string `json:"uuid"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		if string(r.Key) != ev.UUID || len(r.Headers) != 1 || string(r.Headers[0].Value) != ev.UUID {
			t.Errorf("record %d: key %q, headers %v, uuid %q", ev.N, r.Key, r.Headers, ev.UUID)
		}
		seen[ev.N]++
	}
	for n := 1; n <= count; n++ {
		if seen[n] != 1 {
			t.Errorf("event %d in Kafka %d times", n, seen[n])
		}
	}
}

func TestStreamThroughBenthos(t *testing.T) {
	c := newCluster(t)
	runStream(t, c, 200)
	checkStreamOutput(t, c, 200)
}

// TestStreamWaitsOutKafkaOutage refuses every produce for the first two
// seconds: the pipeline must wait and deliver everything once, not drop.
func TestStreamWaitsOutKafkaOutage(t *testing.T) {
	c := newCluster(t)
	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	time.AfterFunc(2*time.Second, f.Remove)
	runStream(t, c, 50)
	if f.Hits() == 0 {
		t.Fatal("the outage was never hit")
	}
	checkStreamOutput(t, c, 50)
}
