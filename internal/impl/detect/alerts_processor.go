package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/jsonbytes"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// detections_to_alerts turns a tagged event into the event plus one alert
// message per detection, each with the topic and key to write it under in
// metadata. It lets a single output write an event and its alerts in one
// batch — and so, with kafka_producer's transactional_id, in one Kafka
// transaction — where a broker fan_out would need two outputs.

const (
	alertsFieldEventsTopic = "events_topic"
	alertsFieldAlertsTopic = "alerts_topic"
	alertsFieldTopicMeta   = "topic_metadata"
	alertsFieldKeyMeta     = "key_metadata"
	alertsFieldEmitEvents  = "emit_events"
)

func detectionsToAlertsSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Expands each event tagged by `cel_detect` into the event and one alert message per detection, with the topic and key each goes to in metadata.").
		Description(`
The event leaves first, byte for byte as it arrived (with its `+"`detections`"+` array, as `+"`cel_detect`"+`
wrote it), with metadata `+"`topic_metadata`"+` = `+"`events_topic`"+` and `+"`key_metadata`"+` = its `+"`uuid`"+`.
Then one message per detection: the detection object, the rule that matched under `+"`rule`"+`
(`+"`id`, `title`, `description`, `severity`, `mitre`, `references`, `runbook`, `tags`, `author`, `license`, `status`"+`,
and `+"`version`"+`, a hash of the rule file), `+"`detected_at`"+` (processing time, RFC 3339) and the event
(without `+"`detections`"+`, its other fields byte for byte) under `+"`event`"+`, with metadata
`+"`topic_metadata`"+` = `+"`alerts_topic`"+` and `+"`key_metadata`"+` = the detection's `+"`alert_id`"+`. Alerts keep the
event's other metadata. With `+"`emit_events: false`"+` only the alerts leave (a detection worker that
writes alerts only).

A message `+"`cel_detect`"+` emitted for an absence (metadata `+"`detection_deferred`"+` = `+"`true`"+`: the
opening event again, carrying the absence's detection) gives its alerts only: the event itself
was written when it first passed.

A message of `+"`cel_detect`"+`'s state (metadata `+"`detection_state`"+` = `+"`true`"+`, with `+"`state_topic`"+`) passes
on untouched: its topic and key are set, and it is not an event.

An event without detections (or not a JSON object) passes on alone. Everything stays in the
input's batch, so an output writing the batch in one transaction commits an event and its alerts
together.`).
		Fields(
			service.NewStringField(alertsFieldEventsTopic).Default("okta.system_log").
				Description("The topic events are routed to."),
			service.NewStringField(alertsFieldAlertsTopic).Default("okta.alerts").
				Description("The topic alerts are routed to."),
			service.NewStringField(alertsFieldTopicMeta).Default(meta.KafkaTopic).Advanced().
				Description("The metadata key the topic is written to."),
			service.NewStringField(alertsFieldKeyMeta).Default(meta.KafkaKey).Advanced().
				Description("The metadata key the record key is written to."),
			service.NewBoolField(alertsFieldEmitEvents).Default(true).
				Description("Pass the events on (to `events_topic`) besides their alerts; false: alerts only."),
		).
		Example("One transaction per page", "Events and alerts through one transactional kafka_producer.", `
pipeline:
  processors:
    - cel_detect: {}
    - detections_to_alerts: {}
output:
  kafka_producer:
    seed_brokers: [ localhost:9092 ]
    topic: ${! meta("kafka_topic") }
    key: ${! meta("kafka_key") }
    transactional_id: oktadetect-acme
`)
}

type alertsProcessor struct {
	eventsTopic, alertsTopic string
	topicMeta, keyMeta       string
	emitEvents               bool
	now                      func() time.Time
}

func newAlertsProcessor(conf *service.ParsedConfig) (*alertsProcessor, error) {
	p := &alertsProcessor{now: time.Now}
	for field, dst := range map[string]*string{
		alertsFieldEventsTopic: &p.eventsTopic, alertsFieldAlertsTopic: &p.alertsTopic,
		alertsFieldTopicMeta: &p.topicMeta, alertsFieldKeyMeta: &p.keyMeta,
	} {
		v, err := conf.FieldString(field)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("%s must not be empty", field)
		}
		*dst = v
	}
	var err error
	if p.emitEvents, err = conf.FieldBool(alertsFieldEmitEvents); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *alertsProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	if v, _ := msg.MetaGet(meta.DetectionState); v == "true" {
		return service.MessageBatch{msg}, nil // a state record: its topic and key are set
	}
	raw, err := msg.AsBytes()
	if err != nil {
		return service.MessageBatch{msg}, nil
	}
	var head struct {
		UUID       json.RawMessage   `json:"uuid"`
		Detections []json.RawMessage `json:"detections"`
	}
	_ = json.Unmarshal(raw, &head) // not an object: passes on as an event
	msg.MetaSetMut(p.topicMeta, p.eventsTopic)
	var uuid string
	if json.Unmarshal(head.UUID, &uuid) == nil {
		msg.MetaSetMut(p.keyMeta, uuid)
	}
	out := service.MessageBatch{msg}
	if deferred, _ := msg.MetaGet(meta.DetectionDeferred); !p.emitEvents || deferred == "true" {
		// alerts only: a worker writing no events, or an absence (its
		// event was written when it arrived)
		out = nil
	}
	if len(head.Detections) == 0 {
		return out, nil
	}
	event, err := jsonbytes.WithoutMember(raw, "detections")
	if err != nil {
		return out, nil
	}
	rules, _ := msg.MetaGetMut(meta.DetectionRules)
	detectedAt, _ := json.Marshal(p.now().UTC().Format(time.RFC3339Nano))
	for _, d := range head.Detections {
		var id struct {
			ID      string `json:"id"`
			AlertID string `json:"alert_id"`
		}
		if json.Unmarshal(d, &id) != nil {
			continue
		}
		body, err := alertBody(d, ruleOf(rules, id.ID), detectedAt, event)
		if err != nil {
			continue
		}
		alert := msg.Copy()
		alert.SetBytes(body)
		alert.MetaSetMut(p.topicMeta, p.alertsTopic)
		alert.MetaSetMut(p.keyMeta, id.AlertID)
		out = append(out, alert)
	}
	return out, nil
}

func (p *alertsProcessor) Close(context.Context) error { return nil }

// alertBody is the detection with the rule's description, the detection
// time and the event beside it.
func alertBody(det []byte, rule *detect.RuleInfo, detectedAt, event []byte) ([]byte, error) {
	body := det
	if rule != nil {
		r, err := json.Marshal(rule.ForAlert())
		if err != nil {
			return nil, err
		}
		if body, err = jsonbytes.AppendMember(body, "rule", r); err != nil {
			return nil, err
		}
	}
	body, err := jsonbytes.AppendMember(body, "detected_at", detectedAt)
	if err != nil {
		return nil, err
	}
	return jsonbytes.AppendMember(body, "event", event)
}

// ruleOf finds the description of rule id among cel_detect's metadata.
func ruleOf(meta any, id string) *detect.RuleInfo {
	rules, _ := meta.([]*detect.RuleInfo)
	for _, r := range rules {
		if r != nil && r.ID == id {
			return r
		}
	}
	return nil
}
