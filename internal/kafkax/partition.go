package kafkax

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// IsFenced reports whether err says that a transactional producer was taken
// over: another client initialised the same transactional id, so this one's
// transactions fail for good. A fenced producer must stop rather than
// re-initialise, which would fence its successor in turn.
func IsFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// KeysForEachPartition returns, for each of n partitions, a record key
// that Kafka's default partitioner places in it: murmur2 of the key, as
// the Java client, franz-go's StickyKeyPartitioner and kafka_producer's
// default `murmur2` do. Keys are prefix followed by a number, the smallest
// that lands in the partition. A record sent under keys[i] by such a
// producer reaches partition i of a topic with n partitions.
func KeysForEachPartition(prefix string, n int) [][]byte {
	keys := make([][]byte, n)
	part := kgo.StickyKeyPartitioner(nil).ForTopic("")
	for found, j := 0, 0; found < n; j++ {
		key := []byte(prefix + strconv.Itoa(j))
		if p := part.Partition(&kgo.Record{Key: key}, n); keys[p] == nil {
			keys[p] = key
			found++
		}
	}
	return keys
}
