package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topics the producer writes: a fresh cluster has none of them. Java and
// librdkafka producers ask the broker to auto-create a missing topic, and so
// does kafka_producer (allow_auto_topic_creation); create_topics creates them
// explicitly with the partitions and configs the operator chose. Either way a
// topic is checked once before the first record goes to it, so a topic that
// is missing for good is an error naming it and the fix, not a produce that
// waits forever for a topic that never appears.

// Names of the topic creation fields and of create_topics' own fields.
const (
	FieldAutoCreateTopics = "allow_auto_topic_creation"
	FieldCreateTopics     = "create_topics"

	createTopicsFieldEnabled     = "enabled"
	createTopicsFieldPartitions  = "partitions"
	createTopicsFieldReplication = "replication_factor"
	createTopicsFieldConfig      = "config"
)

// TopicCreationFields are the fields that say how a producer's missing
// topics come to exist: allow_auto_topic_creation and create_topics.
func TopicCreationFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewBoolField(FieldAutoCreateTopics).
			Description("Ask the broker to create a missing topic, as Java and librdkafka producers do; brokers that allow it (`auto.create.topics.enable`, on in Apache Kafka's defaults) create it with their default partitions and configs. Use `create_topics` to choose them.").
			Default(true),
		createTopicsField("Create every topic this output writes to (`topic`, each value an interpolated `topic` resolves to, `dead_letter_topic`) that does not exist yet, with these settings, before the first record goes to it. Existing topics are left as they are. The principal needs CREATE on the topics (or the cluster)."),
	}
}

// createTopicsField is the create_topics block, described for its component.
func createTopicsField(description string) *service.ConfigField {
	return service.NewObjectField(FieldCreateTopics,
		service.NewBoolField(createTopicsFieldEnabled).
			Description("Create missing topics.").
			Default(false),
		service.NewIntField(createTopicsFieldPartitions).
			Description("Partitions of a created topic; -1: the broker's default (`num.partitions`).").
			Default(-1),
		service.NewIntField(createTopicsFieldReplication).
			Description("Replicas of each partition; -1: the broker's default (`default.replication.factor`).").
			Default(-1),
		service.NewStringMapField(createTopicsFieldConfig).
			Description("Topic configs of a created topic.").
			Example(map[string]string{"retention.ms": "604800000", "compression.type": "producer"}).
			Default(map[string]any{}),
	).
		Description(description).
		Example(map[string]any{"enabled": true, "partitions": 12, "replication_factor": 3})
}

// ConsumerCreateTopicsField is create_topics for a consumer: the topics it
// reads, created at connect when missing, as Kafka Streams creates its
// internal topics before it starts.
func ConsumerCreateTopicsField() *service.ConfigField {
	return createTopicsField("Create every topic this input reads that does not exist yet, with these settings, when it connects and before it joins its group. A topic that another component creates later (a repartition topic written by this pipeline's own output) would otherwise appear after the group formed and move partitions between members mid-stream. Existing topics are left as they are; one whose partition count is not `partitions` is logged at WARN. The principal needs CREATE on the topics (or the cluster).")
}

// TopicCreator creates missing topics as a create_topics block says.
type TopicCreator struct{ spec *topicSpec }

// ParseTopicCreator reads create_topics; nil when it is not enabled.
func ParseTopicCreator(conf *service.ParsedConfig) (*TopicCreator, error) {
	spec, err := parseTopicSpec(conf)
	if err != nil || spec == nil {
		return nil, err
	}
	return &TopicCreator{spec: spec}, nil
}

// Create creates those of topics that do not exist. It asks first: a
// principal allowed to read the topics but not to create any must still be
// able to use existing ones. It returns, for the operator's log, a note
// for each existing topic whose partition count is not the configured one:
// such a topic is left as it is, and whatever else was told the count (a
// repartition step's watermark_partitions) must be given the topic's.
func (c *TopicCreator) Create(ctx context.Context, cl *kgo.Client, topics []string) ([]string, error) {
	listed, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of topics %v: %w", topics, explain(err, false, false))
	}
	var missing, notes []string
	for _, t := range topics {
		d, ok := listed[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err == nil && c.spec.partitions > 0 && len(d.Partitions) != int(c.spec.partitions):
			notes = append(notes, fmt.Sprintf("topic %s exists with %d partitions, not the %d of %s.%s; it is used as it is (a setting told the partition count, such as cel_route's watermark_partitions, must be given %d)",
				t, len(d.Partitions), c.spec.partitions, FieldCreateTopics, createTopicsFieldPartitions, len(d.Partitions)))
		}
	}
	if len(missing) == 0 {
		return notes, nil
	}
	return notes, createTopics(ctx, cl, c.spec, missing)
}

// topicSpec is a parsed create_topics block.
type topicSpec struct {
	partitions  int32
	replication int16
	configs     map[string]*string
}

func parseTopicSpec(conf *service.ParsedConfig) (*topicSpec, error) {
	c := conf.Namespace(FieldCreateTopics)
	if on, err := c.FieldBool(createTopicsFieldEnabled); err != nil || !on {
		return nil, err
	}
	parts, err := c.FieldInt(createTopicsFieldPartitions)
	if err != nil {
		return nil, err
	}
	repl, err := c.FieldInt(createTopicsFieldReplication)
	if err != nil {
		return nil, err
	}
	if parts == 0 || parts < -1 || parts > 1<<20 {
		return nil, fmt.Errorf("%s.%s must be -1 (broker default) or a positive count, got %d", FieldCreateTopics, createTopicsFieldPartitions, parts)
	}
	if repl == 0 || repl < -1 || repl > 1<<10 {
		return nil, fmt.Errorf("%s.%s must be -1 (broker default) or a positive count, got %d", FieldCreateTopics, createTopicsFieldReplication, repl)
	}
	cfg, err := c.FieldStringMap(createTopicsFieldConfig)
	if err != nil {
		return nil, err
	}
	s := &topicSpec{partitions: int32(parts), replication: int16(repl), configs: map[string]*string{}}
	for k, v := range cfg {
		s.configs[k] = kmsg.StringPtr(v)
	}
	return s, nil
}

// TopicGate checks each topic a producer writes to once, before the first
// record goes to it, creating it as configured.
type TopicGate struct {
	autoCreate bool
	create     *topicSpec // nil: never create explicitly

	mu    sync.Mutex
	ready map[string]bool
}

// ParseTopicGate reads the topic creation fields (TopicCreationFields).
func ParseTopicGate(conf *service.ParsedConfig) (*TopicGate, error) {
	g := &TopicGate{ready: map[string]bool{}}
	var err error
	if g.autoCreate, err = conf.FieldBool(FieldAutoCreateTopics); err != nil {
		return nil, err
	}
	if g.create, err = parseTopicSpec(conf); err != nil {
		return nil, err
	}
	return g, nil
}

// AutoCreate says whether the producer asks the broker to create a missing
// topic (kgo.AllowAutoTopicCreation).
func (g *TopicGate) AutoCreate() bool { return g.autoCreate }

// Ensure makes sure every topic exists (creating it as configured). A
// topic that cannot be used is an error naming it and the fix.
func (g *TopicGate) Ensure(ctx context.Context, cl *kgo.Client, topics ...string) error {
	missing := g.unchecked(topics)
	if len(missing) == 0 {
		return nil
	}
	if g.create != nil {
		if err := createTopics(ctx, cl, g.create, missing); err != nil {
			return err
		}
	}
	if err := topicsExist(ctx, cl, missing, g.autoCreate, g.create != nil); err != nil {
		return err
	}
	g.mu.Lock()
	for _, t := range missing {
		g.ready[t] = true
	}
	g.mu.Unlock()
	return nil
}

func (g *TopicGate) unchecked(topics []string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, t := range topics {
		if t != "" && !g.ready[t] && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func createTopics(ctx context.Context, cl *kgo.Client, s *topicSpec, topics []string) error {
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, s.partitions, s.replication, s.configs, topics...)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, explain(err, false, false))
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %q (%s): %w %s; create it yourself or grant this principal CREATE on it", r.Topic, FieldCreateTopics, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// topicsExist asks for the topics' metadata, asking the broker to create
// missing ones when auto is set. A topic being created (LEADER_NOT_AVAILABLE)
// counts as existing: the producer waits for its leader.
func topicsExist(ctx context.Context, cl *kgo.Client, topics []string, auto, created bool) error {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = auto
	for _, t := range topics {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, mt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("reading metadata of topics %v: %w", topics, explain(err, false, false))
	}
	for _, rt := range resp.Topics {
		err := kerr.ErrorForCode(rt.ErrorCode)
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		switch {
		case err == nil, errors.Is(err, kerr.LeaderNotAvailable):
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return missingTopicError(name, auto, created)
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			return fmt.Errorf("topic %q: this principal may not use it (%w): grant it DESCRIBE and WRITE on the topic", name, err)
		default:
			return fmt.Errorf("metadata of topic %q: %w", name, err)
		}
	}
	return nil
}

func missingTopicError(topic string, auto, created bool) error {
	create := fmt.Sprintf("kafka-topics.sh --create --topic %s --partitions 12", topic)
	switch {
	case created:
		return fmt.Errorf("topic %q does not exist although %s asked to create it: create it yourself (%s)", topic, FieldCreateTopics, create)
	case auto:
		return fmt.Errorf("topic %q does not exist and the broker did not create it (auto.create.topics.enable is off, or this principal may not create topics): create it (%s), or set %s on this output", topic, create, FieldCreateTopics)
	}
	return fmt.Errorf("topic %q does not exist: create it (%s), set %s on this output, or set %s: true against a broker that auto-creates topics", topic, create, FieldCreateTopics, FieldAutoCreateTopics)
}

// PartitionCount returns how many partitions topic has (0 if it does not
// exist).
func PartitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("reading metadata of topic %q: %w", topic, explain(err, false, false))
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return 0, nil
			}
			return 0, fmt.Errorf("metadata of topic %q: %w", topic, err)
		}
		return int32(len(rt.Partitions)), nil
	}
	return 0, nil
}
