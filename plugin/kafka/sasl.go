package kafka

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const (
	saslFieldMechanism = "mechanism"
	saslFieldUsername  = "username"
	saslFieldPassword  = "password"
)

func saslField() *service.ConfigField {
	return service.NewObjectListField(kpFieldSASL,
		service.NewStringEnumField(saslFieldMechanism, "none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512").
			Description("The SASL mechanism. PLAIN sends the password as is, so use it only over TLS. `none` skips the entry, so a config can take the mechanism from an environment variable (`mechanism: ${KAFKA_SASL_MECHANISM:none}`)."),
		service.NewStringField(saslFieldUsername).Default("").
			Description("The user to authenticate as."),
		service.NewStringField(saslFieldPassword).Default("").
			Description("The user's password.").
			Secret(),
	).
		Description("SASL authentication. Mechanisms are tried in order until the broker accepts one.").
		Optional().
		Advanced()
}

func saslMechanisms(conf *service.ParsedConfig) ([]sasl.Mechanism, error) {
	if !conf.Contains(kpFieldSASL) {
		return nil, nil
	}
	entries, err := conf.FieldObjectList(kpFieldSASL)
	if err != nil {
		return nil, err
	}
	mechs := make([]sasl.Mechanism, 0, len(entries))
	for i, e := range entries {
		m, err := saslMechanism(e)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", kpFieldSASL, i, err)
		}
		if m != nil {
			mechs = append(mechs, m)
		}
	}
	return mechs, nil
}

// saslMechanism builds one entry's mechanism; nil for `none`.
func saslMechanism(conf *service.ParsedConfig) (sasl.Mechanism, error) {
	name, err := conf.FieldString(saslFieldMechanism)
	if err != nil {
		return nil, err
	}
	if name == "none" {
		return nil, nil
	}
	user, err := conf.FieldString(saslFieldUsername)
	if err != nil {
		return nil, err
	}
	pass, err := conf.FieldString(saslFieldPassword)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("%s is empty", saslFieldUsername)
	}
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("unknown mechanism %q", name)
}
