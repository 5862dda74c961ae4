package changelog

import (
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/kafkax"
)

// Field names of a changelog block, besides the connection fields.
const (
	fieldTopic       = "topic"
	fieldTxnIDPrefix = "transactional_id_prefix"
	fieldTxnTimeout  = "transaction_timeout"
	fieldTimeout     = "timeout"
)

// Fields are the fields of a changelog configuration block (cel_detect's
// `changelog`).
func Fields() []*service.ConfigField {
	return []*service.ConfigField{
		kafkax.SeedBrokersField(),
		service.NewStringField(fieldTopic).
			Description("The compacted changelog topic. Created when missing, with as many partitions as the source topic; an existing one must have at least as many.").
			Default("oktadetect.state"),
		service.NewStringField(fieldTxnIDPrefix).
			Description("Prefix of the transactional ids, one per source partition (`<prefix>-<topic>-<partition>`). Workers of one group must share it; separate deployments writing the same changelog must not.").
			Default("oktadetect-state"),
		kafkax.ClientIDField().Advanced(),
		service.NewDurationField(fieldTxnTimeout).
			Description("How long Kafka waits for a transaction of a crashed worker before aborting it.").
			Default("30s").
			Advanced(),
		service.NewDurationField(fieldTimeout).
			Description("How long restoring one partition's state, or committing one batch's changes, may take before it is tried again.").
			Default("60s").
			Advanced(),
		kafkax.TLSField(),
		kafkax.SASLField(),
	}
}

// NewStore validates a changelog block; it does no I/O.
func NewStore(conf *service.ParsedConfig) (*Store, error) {
	s := &Store{conn: kafkax.NewConnWatch(nil, connWatchName)}
	var err error
	if s.kafka, err = kafkax.ParseConnection(conf); err != nil {
		return nil, err
	}
	if s.topic, err = nonEmptyString(conf, fieldTopic); err != nil {
		return nil, err
	}
	if s.txnIDPrefix, err = nonEmptyString(conf, fieldTxnIDPrefix); err != nil {
		return nil, err
	}
	if s.txnTimeout, err = conf.FieldDuration(fieldTxnTimeout); err != nil {
		return nil, err
	}
	if s.txnTimeout < time.Second {
		return nil, fmt.Errorf("%s must be at least 1s, got %v", fieldTxnTimeout, s.txnTimeout)
	}
	if s.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return nil, err
	}
	if s.timeout <= 0 {
		return nil, fmt.Errorf("%s must be positive, got %v", fieldTimeout, s.timeout)
	}
	return s, nil
}

func nonEmptyString(conf *service.ParsedConfig, field string) (string, error) {
	v, err := conf.FieldString(field)
	if err != nil {
		return "", err
	}
	if v = strings.TrimSpace(v); v == "" {
		return "", fmt.Errorf("%s must not be empty", field)
	}
	return v, nil
}
