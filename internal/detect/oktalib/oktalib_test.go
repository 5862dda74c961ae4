package oktalib

import (
	"testing"

	"github.com/google/cel-go/cel"
)

func TestSplitBraced(t *testing.T) {
	got := splitBraced("{reasons=[a, b], level=HIGH}")
	if len(got) != 2 || got[0] != "reasons=[a, b]" || got[1] != " level=HIGH" {
		t.Errorf("got %q", got)
	}
}

// The library on plain maps, as any CEL host would use it.
func TestOnPlainMaps(t *testing.T) {
	env, err := cel.NewEnv(cel.Variable("event", cel.DynType), cel.OptionalTypes(), cel.Lib(Okta()))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile("okta.behaviors(event)[?'New IP'].orValue('') + '/' + okta.risk(event)")
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast, cel.CostLimit(1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		event map[string]any
		want  string
	}{
		{map[string]any{"debugContext": map[string]any{"debugData": map[string]any{"behaviors": "{New IP=POSITIVE}", "risk": "{level=HIGH}"}}}, "POSITIVE/HIGH"},
		{map[string]any{"debugContext": map[string]any{"debugData": "x"}}, "/"},
		{map[string]any{}, "/"},
	} {
		out, _, err := prg.Eval(map[string]any{"event": c.event})
		if err != nil {
			t.Fatal(err)
		}
		if out.Value() != c.want {
			t.Errorf("%v: got %v, want %q", c.event, out.Value(), c.want)
		}
	}
}
