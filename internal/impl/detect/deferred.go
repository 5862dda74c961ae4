package detect

import (
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/meta"
)

// eventMeta is the metadata okta_system_log sets about its event: on a
// deferred message it would describe the event that made the absence due,
// not the one the message carries, so it is left out.
var eventMeta = []string{meta.OktaUUID, meta.OktaEventType, meta.OktaPublished}

// deferredMessages turns the absences an event made due into messages that
// follow it in its batch (so an output writing the batch in one transaction
// commits them with it): copies of its message carrying the opening event
// with the absence's detection, that event's own event_metadata values (and
// none of the trigger's), detection_ids, and detection_deferred = true.
func deferredMessages(trigger *service.Message, defs []detect.Deferred, sources []metaSource) service.MessageBatch {
	out := make(service.MessageBatch, 0, len(defs))
	for _, d := range defs {
		m := trigger.Copy()
		m.SetBytes(d.Out)
		for _, k := range eventMeta {
			m.MetaDelete(k)
		}
		// The trigger's event_metadata values (its org) are not the opening
		// event's: one the opening event lacked must not be inherited.
		for _, s := range sources {
			m.MetaDelete(s.key)
		}
		for _, f := range d.Meta {
			for _, s := range sources {
				if s.name == f.Name {
					m.MetaSetMut(s.key, f.Value)
				}
			}
		}
		m.MetaDelete(meta.DetectionRules) // the trigger's, not the absence's
		setDetections(m, d.Detections, nil)
		m.MetaSetMut(meta.DetectionDeferred, "true")
		out = append(out, m)
	}
	return out
}
