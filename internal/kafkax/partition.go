package kafkax

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
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
