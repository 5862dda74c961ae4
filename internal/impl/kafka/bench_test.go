package kafka

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchValue is a ~1.5 KB JSON document, the size of a typical Okta event.
var benchValue = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"eventType":"user.session.start","outcome":{"result":"SUCCESS"},"pad":"`)
	for b.Len() < 1500 {
		b.WriteString("abcdefghij")
	}
	b.WriteString(`"}`)
	return b.Bytes()
}()

// BenchmarkKafkaProducer compares the output with a raw franz-go
// ProduceSync loop using the same producer settings (idempotent, acks=all,
// murmur2, no compression), both against kfake, so the figures are ratios
// of the same machine and broker.
func BenchmarkKafkaProducer(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("baseline_franz/batch=%d", size), func(b *testing.B) { benchFranz(b, size) })
		b.Run(fmt.Sprintf("kafka_producer/batch=%d", size), func(b *testing.B) { benchOutput(b, size) })
	}
}

func benchFranz(b *testing.B, size int) {
	c := newCluster(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, size)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range recs {
			recs[j] = &kgo.Record{Topic: "t", Key: []byte(strconv.Itoa(j)), Value: benchValue}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	report(b, size)
}

func benchOutput(b *testing.B, size int) {
	c := newCluster(b)
	k := newProducer(b, c, "topic: t\nkey: ${! meta(\"k\") }\ncompression: none\n")
	batch := make(service.MessageBatch, size)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j] = service.NewMessage(benchValue)
			batch[j].MetaSetMut("k", strconv.Itoa(j))
		}
		if err := k.WriteBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	report(b, size)
}

func report(b *testing.B, size int) {
	secs := b.Elapsed().Seconds()
	records := float64(b.N * size)
	b.ReportMetric(records/secs, "records/s")
	b.ReportMetric(records*float64(len(benchValue))/secs/1e6, "MB/s")
}
