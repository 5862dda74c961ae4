package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/meta"
)

// detections_to_alerts turns a tagged event into the event plus one alert
// message per detection, each with the topic and key to write it under in
// metadata. It lets a single output write an event and its alerts in one
// batch — and so, with kafka_producer's transactional_id, in one Kafka
// transaction — where a broker fan_out would need two outputs.

const (
	daFieldEventsTopic = "events_topic"
	daFieldAlertsTopic = "alerts_topic"
	daFieldTopicMeta   = "topic_metadata"
	daFieldKeyMeta     = "key_metadata"
)

func detectionsToAlertsSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Utility").
		Summary("Expands each event tagged by `cel_detect` into the event and one alert message per detection, with the topic and key each goes to in metadata.").
		Description(`
The event leaves first, byte for byte as it arrived (with its `+"`detections`"+` array, as `+"`cel_detect`"+`
wrote it), with metadata `+"`topic_metadata`"+` = `+"`events_topic`"+` and `+"`key_metadata`"+` = its `+"`uuid`"+`.
Then one message per detection: the detection object with the event (without `+"`detections`"+`, its
other fields byte for byte) under `+"`event`"+`, metadata `+"`topic_metadata`"+` = `+"`alerts_topic`"+` and
`+"`key_metadata`"+` = the detection's `+"`alert_id`"+`. Alerts keep the event's other metadata.

A message `+"`cel_detect`"+` emitted for an absence (metadata `+"`detection_deferred`"+` = `+"`true`"+`: the
opening event again, carrying the absence's detection) gives its alerts only: the event itself
was written when it first passed.

An event without detections (or not a JSON object) passes on alone. Everything stays in the
input's batch, so an output writing the batch in one transaction commits an event and its alerts
together.`).
		Fields(
			service.NewStringField(daFieldEventsTopic).Default("okta.system_log").
				Description("The topic events are routed to."),
			service.NewStringField(daFieldAlertsTopic).Default("okta.alerts").
				Description("The topic alerts are routed to."),
			service.NewStringField(daFieldTopicMeta).Default(meta.KafkaTopic).Advanced().
				Description("The metadata key the topic is written to."),
			service.NewStringField(daFieldKeyMeta).Default(meta.KafkaKey).Advanced().
				Description("The metadata key the record key is written to."),
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
}

func newAlertsProcessor(conf *service.ParsedConfig) (*alertsProcessor, error) {
	p := &alertsProcessor{}
	for field, dst := range map[string]*string{
		daFieldEventsTopic: &p.eventsTopic, daFieldAlertsTopic: &p.alertsTopic,
		daFieldTopicMeta: &p.topicMeta, daFieldKeyMeta: &p.keyMeta,
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
	return p, nil
}

func (p *alertsProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
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
	if deferred, _ := msg.MetaGet(meta.DetectionDeferred); deferred == "true" {
		out = out[:0] // an absence: its event was written when it arrived
	}
	if len(head.Detections) == 0 {
		return out, nil
	}
	event, err := withoutMember(raw, "detections")
	if err != nil {
		return out, nil
	}
	for _, d := range head.Detections {
		var id struct {
			AlertID string `json:"alert_id"`
		}
		body, err := withMember(d, "event", event)
		if err != nil || json.Unmarshal(d, &id) != nil {
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

// withoutMember returns the JSON object raw without its top-level member(s)
// called name; every other byte is kept as it was.
func withoutMember(raw []byte, name string) ([]byte, error) {
	for {
		start, end, found, err := memberSpan(raw, name)
		if err != nil {
			return nil, err
		}
		if !found {
			return raw, nil
		}
		out := make([]byte, 0, len(raw)-(end-start))
		out = append(out, raw[:start]...)
		raw = append(out, raw[end:]...)
	}
}

// memberSpan finds the first top-level member called name in the object raw
// and returns the byte span to cut so that the rest stays valid JSON: the
// preceding comma with the member, or for a first member the member with the
// following comma.
func memberSpan(raw []byte, name string) (start, end int, found bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return 0, 0, false, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return 0, 0, false, errors.New("not a JSON object")
	}
	first := true
	for dec.More() {
		prevEnd := int(dec.InputOffset())
		keyTok, err := dec.Token()
		if err != nil {
			return 0, 0, false, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false, err
		}
		valEnd := int(dec.InputOffset())
		if key, _ := keyTok.(string); key == name {
			if !first {
				return prevEnd, valEnd, true, nil
			}
			rest := raw[valEnd:]
			i := 0
			for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t' || rest[i] == '\n' || rest[i] == '\r') {
				i++
			}
			if i < len(rest) && rest[i] == ',' {
				return prevEnd, valEnd + i + 1, true, nil
			}
			return prevEnd, valEnd, true, nil
		}
		first = false
	}
	return 0, 0, false, nil
}

// withMember appends "name":value to the JSON object obj.
func withMember(obj []byte, name string, value []byte) ([]byte, error) {
	body := bytes.TrimRight(obj, " \t\r\n")
	if len(body) == 0 || body[len(body)-1] != '}' {
		return nil, errors.New("not a JSON object")
	}
	body = body[:len(body)-1]
	key, _ := json.Marshal(name)
	out := make([]byte, 0, len(body)+len(key)+len(value)+3)
	out = append(out, body...)
	if bytes.TrimSpace(body)[len(bytes.TrimSpace(body))-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, key...)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, '}'), nil
}
