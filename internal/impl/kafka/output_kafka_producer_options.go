package kafka

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// How kafka_producer's config becomes franz-go options.

// clientOpts turns the config into franz-go options; all validation happens
// here so a bad config fails at startup rather than on first connect.
func (k *kafkaProducer) clientOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	var err error
	if k.kafka, err = kafkax.ParseConnection(conf); err != nil {
		return nil, err
	}
	opts := k.kafka.Opts()
	if k.topics.AutoCreate() {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	// franz-go counts the whole batch against this limit, so a single record
	// just under max_message_bytes still fits.
	opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(k.maxMessageBytes+batchOverhead, 1<<30))))
	partOpts, err := k.partitionerOpts(conf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, partOpts...)
	ackOpts, err := ackOpts(conf)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ackOpts...)
	codec, err := compressionCodec(conf)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

// batchOverhead is a generous bound on the record-batch header plus one
// record's framing, so max_message_bytes can speak about the record alone.
const batchOverhead = 256

func (k *kafkaProducer) partitionerOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	name, err := conf.FieldString(producerFieldPartitioner)
	if err != nil {
		return nil, err
	}
	hasPartition := conf.Contains(producerFieldPartition)
	if hasPartition != (name == "manual") {
		return nil, fmt.Errorf("%s is required with partitioner manual and only allowed with it", producerFieldPartition)
	}
	var p kgo.Partitioner
	switch name {
	case "murmur2":
		// A nil hasher is franz-go's KafkaHasher(murmur2): the Java client's
		// default for keyed records.
		p = kgo.StickyKeyPartitioner(nil)
	case "round_robin":
		p = kgo.RoundRobinPartitioner()
	case "least_backup":
		p = kgo.LeastBackupPartitioner()
	case "manual":
		if k.partition, err = conf.FieldInterpolatedString(producerFieldPartition); err != nil {
			return nil, err
		}
		p = kgo.ManualPartitioner()
	default:
		return nil, fmt.Errorf("unknown partitioner %q", name)
	}
	return []kgo.Opt{kgo.RecordPartitioner(p)}, nil
}

func ackOpts(conf *service.ParsedConfig) ([]kgo.Opt, error) {
	acksName, err := conf.FieldString(producerFieldAcks)
	if err != nil {
		return nil, err
	}
	idempotent, err := conf.FieldBool(producerFieldIdempotent)
	if err != nil {
		return nil, err
	}
	var acks kgo.Acks
	switch acksName {
	case "all":
		acks = kgo.AllISRAcks()
	case "leader":
		acks = kgo.LeaderAck()
	case "none":
		acks = kgo.NoAck()
	default:
		return nil, fmt.Errorf("unknown acks %q", acksName)
	}
	if idempotent && acksName != "all" {
		// Kafka rejects idempotent produce without acks=all; say so now
		// rather than let every write fail later.
		return nil, fmt.Errorf("%s requires acks: all (got %q); set %s: false to use weaker acks", producerFieldIdempotent, acksName, producerFieldIdempotent)
	}
	opts := []kgo.Opt{kgo.RequiredAcks(acks)}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts, nil
}

func compressionCodec(conf *service.ParsedConfig) (kgo.CompressionCodec, error) {
	name, err := conf.FieldString(producerFieldCompression)
	if err != nil {
		return kgo.NoCompression(), err
	}
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown compression %q", name)
}
