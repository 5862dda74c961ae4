package kafkax

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compactedTopicConfigs make a topic whose latest value per key is all that
// matters small to read from the start: segments roll hourly (compaction never
// touches the active segment, 7 days by default) and are compacted once a
// tenth of them is superseded (half by default).
var compactedTopicConfigs = map[string]string{
	"cleanup.policy":            "compact",
	"segment.ms":                "3600000",
	"min.cleanable.dirty.ratio": "0.1",
}

// EnsureCompactedTopic creates topic, compacted, with the given number of
// partitions when it does not exist. An existing topic that does not compact
// is made to (see makeCompacted), and warn is told; if that fails, the error
// says how to fix it.
func EnsureCompactedTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, warn func(string)) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = -1
	for k, v := range compactedTopicConfigs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = k
		c.Value = kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("creating topic %q: %w", topic, explain(err, false, false))
	}
	existed := false
	for _, t := range resp.Topics {
		err := kerr.ErrorForCode(t.ErrorCode)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			existed = true
		} else if err != nil {
			return fmt.Errorf("creating topic %q: %w", topic, err)
		}
	}
	if !existed {
		return nil
	}
	was, err := makeCompacted(ctx, cl, topic)
	if err != nil {
		return err
	}
	if was != "" && warn != nil {
		warn(fmt.Sprintf("Topic %q had cleanup.policy %q: its values would have expired with retention.ms (a lost cursor or state starts over silently); set it to compact", topic, was))
	}
	return nil
}

// CompactedTopicConfigs are the topic configs EnsureCompactedTopic creates a
// topic with.
func CompactedTopicConfigs() map[string]string { return maps.Clone(compactedTopicConfigs) }

// makeCompacted gives an existing topic cleanup.policy compact. A checkpoint
// or state topic that deletes by retention loses its values (the cursor, the
// state) once they are older than retention.ms, and a lost cursor restarts
// the input from its lookback without a word. It returns the policy found
// ("" when it already compacts).
func makeCompacted(ctx context.Context, cl *kgo.Client, topic string) (string, error) {
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("reading the configs of topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return "", fmt.Errorf("reading the configs of topic %q: %w", topic, errors.Join(err, rc.Err))
	}
	policy := "delete" // Kafka's default when the topic does not say
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && *c.Value != "" {
			policy = *c.Value
		}
	}
	if slices.Contains(strings.Split(strings.ReplaceAll(policy, " ", ""), ","), "compact") {
		return "", nil
	}
	alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}}
	resp, err := adm.AlterTopicConfigs(ctx, alter, topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil {
				err = fmt.Errorf("%w %s", r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		return policy, fmt.Errorf("topic %q has cleanup.policy %q, so its values expire with retention.ms and a lost value silently starts over; setting it to compact failed (%w): run kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact, or grant this principal ALTER_CONFIGS on the topic", topic, policy, err, topic)
	}
	return policy, nil
}
