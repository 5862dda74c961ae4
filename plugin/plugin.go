// Package plugin registers every oktadetect component with Benthos' global
// environment. Import it for its side effects:
//
//	import _ "github.com/oktadetect/oktadetect/plugin"
//
// It is also the one place that hands product data to the components: the
// rule pack embedded in the binary and the okta.* CEL library its rules use
// go to cel_detect here, so that the engine (internal/detect) and the
// component (internal/impl/detect) stay free of Okta specifics.
package plugin

import (
	"github.com/google/cel-go/cel"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect/oktalib"
	impldetect "github.com/oktadetect/oktadetect/internal/impl/detect"
	"github.com/oktadetect/oktadetect/rules"

	// okta_system_log input.
	_ "github.com/oktadetect/oktadetect/internal/impl/okta"
	// kafka_producer output, kafka_consumer input, kafka_checkpoint cache.
	_ "github.com/oktadetect/oktadetect/internal/impl/kafka"
	// prometheus metrics exporter.
	_ "github.com/oktadetect/oktadetect/internal/impl/prometheus"
)

// Detection is what cel_detect runs when a config names no rules (the pack
// embedded in the binary), and the CEL libraries every rule may call.
var Detection = impldetect.Product{
	Pack:      rules.FS,
	PackRoot:  rules.Root,
	Libraries: []cel.Library{oktalib.Okta(oktalib.Version(1))},
	Lists:     packLists(),
}

// packLists are the defaults of the pack's site data (rules/lists.yaml); a
// file that does not parse is a build mistake the rules package's tests
// catch first.
func packLists() map[string][]string {
	lists, err := rules.Lists()
	if err != nil {
		panic(err)
	}
	return lists
}

func init() {
	if err := impldetect.Register(service.GlobalEnvironment(), Detection); err != nil {
		panic(err)
	}
}
