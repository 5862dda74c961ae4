package detect

import (
	"errors"
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/oktadetect/oktadetect/internal/detect"
)

// CheckConfig runs the start-up checks of a cel_detect config that need no
// network and touch no state: the fields parse, and the rule files are found
// and compile under the configured cost_limit, exactly as the constructor
// loads them. `oktadetect lint` calls it so that a rule path that does not
// exist, or a rule that does not compile, fails lint rather than start-up.
func CheckConfig(conf *service.ParsedConfig, product Product) error {
	paths, err := conf.FieldStringList(fieldRules)
	if err != nil {
		return err
	}
	costLimit, err := conf.FieldInt(fieldCostLimit)
	if err != nil {
		return err
	}
	if costLimit <= 0 {
		return errors.New("cost_limit must be positive")
	}
	if len(paths) == 0 {
		return nil // the embedded pack, compiled by the rules package's tests
	}
	if _, err := detect.LoadPaths(paths, detect.CompileOptions{CostLimit: uint64(costLimit), Libraries: product.Libraries}); err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	return nil
}
