package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	impldetect "github.com/oktadetect/oktadetect/internal/impl/detect"
	"github.com/oktadetect/oktadetect/plugin"
)

// lintCommand is Benthos' `lint` plus a pass of our components' own start
// checks that need no network: lint rules (Bloblang over one component's
// fields) cannot see resources or files, so a checkpoint_cache naming no
// declared cache, or cel_detect rules that do not exist or do not compile,
// used to pass lint and fail at start.
//
// Flags are not parsed here: the arguments go unchanged to Benthos' own lint
// (which knows its flags), and the extra pass reads only the config paths,
// -r resource files and -e env files out of them.
func lintCommand(benthosCLI func(args ...string) int) *cli.Command {
	return &cli.Command{
		Name:            "lint",
		Usage:           "Parse oktadetect configs and report any linting errors (and our components' start checks)",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			// Benthos' lint gets the command line as given, root flags
			// (-c, -r, -e before `lint`) included.
			code := benthosCLI(os.Args[1:]...)
			if hasHelpFlag(c.Args().Slice()) {
				return exitCode(code)
			}
			la := parseLintArgs(c.Args().Slice())
			addRootFlags(c, &la)
			problems, err := startChecks(la)
			if err != nil {
				return err
			}
			printProblems(c.App.ErrWriter, problems)
			if len(problems) > 0 && code == 0 {
				code = 1
			}
			return exitCode(code)
		},
	}
}

func hasHelpFlag(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			return true
		}
	}
	return false
}

func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return cli.Exit("", code)
}

type lintArgs struct {
	targets, resources, envFiles []string
}

// parseLintArgs picks the config paths and the -r / -e values out of lint's
// arguments; Benthos' lint has already rejected anything malformed.
func parseLintArgs(args []string) lintArgs {
	var la lintArgs
	valueFlags := map[string]*[]string{"-r": &la.resources, "--resources": &la.resources,
		"-e": &la.envFiles, "--env-file": &la.envFiles, "-t": nil, "--templates": nil}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if dst, ok := valueFlags[name]; ok {
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			if dst != nil {
				*dst = append(*dst, value)
			}
			continue
		}
		if strings.HasPrefix(a, "-") {
			continue
		}
		la.targets = append(la.targets, a)
	}
	return la
}

// addRootFlags adds what root flags given before `lint` contribute to it,
// as Benthos' lint takes them: -c as a target, -r resources, -e env files.
func addRootFlags(c *cli.Context, la *lintArgs) {
	for _, parent := range c.Lineage()[1:] {
		if conf := parent.String("config"); conf != "" {
			la.targets = append(la.targets, conf)
		}
		la.resources = append(la.resources, parent.StringSlice("resources")...)
		la.envFiles = append(la.envFiles, parent.StringSlice("env-file")...)
	}
}

// lintProblem is one finding, printed as Benthos prints lints.
type lintProblem struct {
	path string
	line int
	msg  string
}

func printProblems(w io.Writer, problems []lintProblem) {
	for _, p := range problems {
		fmt.Fprintf(w, "%s(%d,1) %s\n", p.path, p.line, p.msg)
	}
}

// startChecks runs the checks over every target config.
func startChecks(la lintArgs) ([]lintProblem, error) {
	env, err := lintEnv(la.envFiles)
	if err != nil {
		return nil, err
	}
	targets, err := expandTargets(la.targets)
	if err != nil {
		return nil, err
	}
	resources, err := expandTargets(la.resources)
	if err != nil {
		return nil, err
	}
	// Caches declared in -r files are visible to every target.
	shared := map[string]bool{}
	for _, r := range resources {
		if b, err := os.ReadFile(r); err == nil {
			addCacheLabels(shared, interpolate(b, env))
		}
	}
	var problems []lintProblem
	for _, path := range targets {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // Benthos' lint has reported it
		}
		problems = append(problems, checkConfig(path, interpolate(b, env), shared)...)
	}
	return problems, nil
}

// checkConfig walks one config's components and runs the checks of ours.
func checkConfig(path string, conf []byte, shared map[string]bool) []lintProblem {
	caches := map[string]bool{}
	for k := range shared {
		caches[k] = true
	}
	addCacheLabels(caches, conf)
	var problems []lintProblem
	var root any
	_ = yaml.Unmarshal(conf, &root)
	threadsProblem := stateTopicThreadsProblem(root)
	walker := mainSchema().NewStreamConfigWalker()
	_ = walker.WalkComponentsYAML(conf, func(w *service.WalkedComponent) error {
		var msg string
		switch {
		case w.ComponentType == "input" && w.Name == "okta_system_log":
			msg = checkOktaInput(w, caches)
		case w.ComponentType == "processor" && w.Name == "cel_detect":
			if msg = checkCELDetect(w); msg == "" && threadsProblem != "" && hasStateTopic(mustAny(w)) {
				msg = threadsProblem
			}
		}
		if msg != "" {
			problems = append(problems, lintProblem{path: path, line: w.LineStart, msg: msg})
		}
		return nil
	}) // a config that does not parse has been reported by Benthos' lint
	return problems
}

// mustAny is a walked component's config, decoded (nil if it does not).
func mustAny(w *service.WalkedComponent) any {
	v, _ := w.ConfigAny()
	return v
}

// componentConfig parses a walked component's fields with its spec.
func componentConfig(w *service.WalkedComponent, spec *service.ConfigSpec) (*service.ParsedConfig, error) {
	v, err := w.ConfigAny()
	if err != nil {
		return nil, err
	}
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m[w.Name]; ok {
			v = inner
		}
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return spec.ParseYAML(string(b), nil)
}

func checkOktaInput(w *service.WalkedComponent, caches map[string]bool) string {
	v, err := w.ConfigAny()
	if err != nil {
		return ""
	}
	conf, _ := v.(map[string]any)
	fields, _ := conf[w.Name].(map[string]any)
	name, _ := fields["checkpoint_cache"].(string)
	if name == "" || caches[name] {
		return ""
	}
	return fmt.Sprintf("okta_system_log: checkpoint_cache %q is not a cache resource: declare it under cache_resources (declared: %s)", name, cacheList(caches))
}

func cacheList(caches map[string]bool) string {
	if len(caches) == 0 {
		return "none"
	}
	names := make([]string, 0, len(caches))
	for k := range caches {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func checkCELDetect(w *service.WalkedComponent) string {
	conf, err := componentConfig(w, impldetect.ConfigSpec())
	if err != nil {
		return "" // a field error: Benthos' lint has reported it
	}
	if err := impldetect.CheckConfig(conf, plugin.Detection); err != nil {
		return "cel_detect: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return ""
}

// addCacheLabels adds the labels under a config's cache_resources.
func addCacheLabels(dst map[string]bool, conf []byte) {
	var doc struct {
		Caches []struct {
			Label string `yaml:"label"`
		} `yaml:"cache_resources"`
	}
	if yaml.Unmarshal(conf, &doc) != nil {
		return
	}
	for _, c := range doc.Caches {
		if c.Label != "" {
			dst[c.Label] = true
		}
	}
}

// expandTargets resolves globs and Benthos' "dir/..." (every .yaml/.yml
// below dir), as Benthos' lint does.
func expandTargets(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if dir, ok := strings.CutSuffix(p, "..."); ok {
			err := filepath.WalkDir(filepath.Clean(dir+"."), func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
					out = append(out, path)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("lint: walking %s: %w", dir, err)
			}
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil || len(matches) == 0 {
			out = append(out, p)
			continue
		}
		out = append(out, matches...)
	}
	return out, nil
}

// lintEnv is the process environment overlaid with -e env files.
func lintEnv(envFiles []string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	for _, f := range envFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("lint: reading env file %s: %w", f, err)
		}
		vars, err := service.ParseEnvFile(b)
		if err != nil {
			return nil, fmt.Errorf("lint: parsing env file %s: %w", f, err)
		}
		for k, v := range vars {
			env[k] = v
		}
	}
	return env, nil
}

// envRef is Benthos' ${NAME}, ${NAME:default} (the default may hold one
// nested ${…}), with an optional |function suffix.
var envRef = regexp.MustCompile(`\${([0-9A-Za-z_.]+)(?::((?:\${[^}]+}|[^}|])*))?(?:\|[0-9A-Za-z]+)?}`)

// interpolate substitutes environment references as Benthos does before it
// parses a config: the variable's value, else the default, else empty.
func interpolate(b []byte, env map[string]string) []byte {
	return envRef.ReplaceAllFunc(b, func(ref []byte) []byte {
		m := envRef.FindSubmatch(ref)
		if v := env[string(m[1])]; v != "" {
			return []byte(v)
		}
		return m[2]
	})
}
