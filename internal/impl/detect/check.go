package detect

import (
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// CheckConfig runs the start-up checks of a cel_detect config that need no
// network and touch no state: the fields parse, and the rules (the pack
// and rule files) are found, compile under the configured cost_limit and
// take the tuning (disable, enable, overrides, exceptions, lists), exactly
// as the constructor loads them. `oktadetect lint` calls it so that a rule
// path that does not exist, a rule that does not compile or a tuning entry
// that names no rule fails lint rather than start-up.
func CheckConfig(conf *service.ParsedConfig, product Product) error {
	c, err := parseConfig(conf, product)
	if err != nil {
		return err
	}
	src, err := ruleSources(c.rules, product)
	if err != nil {
		return err
	}
	opts := detect.CompileOptions{CostLimit: uint64(c.costLimit), Libraries: product.Libraries, Tuning: c.tuning}
	if _, err := detect.Load(src, opts); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	return nil
}
