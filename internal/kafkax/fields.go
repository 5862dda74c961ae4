package kafkax

import (
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// Names of the connection fields every Kafka component and the changelog
// block share.
const (
	FieldSeedBrokers = "seed_brokers"
	FieldClientID    = "client_id"
	FieldTLS         = "tls"
	FieldSASL        = "sasl"
)

// SeedBrokersField is the seed_brokers field.
func SeedBrokersField() *service.ConfigField {
	return service.NewStringListField(FieldSeedBrokers).
		Description("Kafka brokers to bootstrap from (`host:port`). Entries may hold several comma-separated addresses.").
		Example([]string{"localhost:9092"}).
		Example([]string{"kafka-1:9092,kafka-2:9092"})
}

// ClientIDField is the client_id field.
func ClientIDField() *service.ConfigField {
	return service.NewStringField(FieldClientID).
		Description("The client ID sent to Kafka, visible in broker logs and quotas.").
		Default("oktadetect")
}

// TLSField is the tls field.
func TLSField() *service.ConfigField {
	return service.NewTLSToggledField(FieldTLS).
		Description("TLS for broker connections: a custom CA (`root_cas`/`root_cas_file`) and client certificates (`client_certs`) for mutual TLS. `skip_cert_verify` disables server verification and is for tests only.")
}

// SplitList reads a string list field whose entries may each hold several
// comma-separated values (seed_brokers, topics), dropping blanks.
func SplitList(conf *service.ParsedConfig, field string) ([]string, error) {
	raw, err := conf.FieldStringList(field)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, entry := range raw {
		for _, s := range strings.Split(entry, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out, nil
}
