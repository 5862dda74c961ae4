// Package deploy checks what operators install from deploy/: the Kubernetes
// manifests, the systemd unit, the Prometheus alert rules and the Grafana
// dashboard. It holds tests only. Whether the metrics they read are really
// exported is tests/e2e's TestDeployMetricsAreExported.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/oktadetect/oktadetect/internal/detect"
	"github.com/oktadetect/oktadetect/internal/testkit"
	"github.com/oktadetect/oktadetect/plugin"
)

const (
	image = "ghcr.io/oktadetect/oktadetect"
	// shutdownTimeout is the shipped configs' default shutdown_timeout.
	shutdownTimeout = 20 * time.Second
)

type obj = map[string]any

// get walks nested maps by key; nil when a key is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func str(v any) string { s, _ := v.(string); return s }

// manifests decodes every YAML document under deploy/kubernetes, by file.
func manifests(t *testing.T) map[string][]obj {
	t.Helper()
	out := map[string][]obj{}
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var doc obj
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if doc != nil {
				out[path] = append(out[path], doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no manifests under deploy/kubernetes")
	}
	return out
}

// workloads are the Deployments and StatefulSets of the manifests.
func workloads(t *testing.T) map[string]obj {
	t.Helper()
	w := map[string]obj{}
	for file, docs := range manifests(t) {
		for _, d := range docs {
			if k := str(d["kind"]); k == "Deployment" || k == "StatefulSet" {
				w[file+" "+k+"/"+str(get(d, "metadata", "name"))] = d
			}
		}
	}
	return w
}

// Every manifest parses and says what it is; every Deployment and
// StatefulSet runs our image with both probes, resources and a locked-down
// non-root security context, and listens where its probes look.
func TestKubernetesManifests(t *testing.T) {
	for file, docs := range manifests(t) {
		for i, d := range docs {
			if str(d["apiVersion"]) == "" || str(d["kind"]) == "" {
				t.Errorf("%s document %d: no apiVersion or kind", file, i)
			}
			if str(d["kind"]) != "Kustomization" && str(get(d, "metadata", "name")) == "" {
				t.Errorf("%s document %d: no metadata.name", file, i)
			}
		}
	}
	ws := workloads(t)
	if len(ws) < 5 {
		t.Fatalf("%d workloads, want the poller, the at-least-once poller, the local-rules poller, stage 1 and stage 2", len(ws))
	}
	for name, w := range ws {
		t.Run(name, func(t *testing.T) { checkWorkload(t, w) })
	}
}

func checkWorkload(t *testing.T, w obj) {
	pod := get(w, "spec", "template", "spec")
	if l, sel := get(w, "spec", "template", "metadata", "labels"), get(w, "spec", "selector", "matchLabels"); !subset(sel, l) {
		t.Errorf("selector %v does not match the pod labels %v", sel, l)
	}
	if g, ok := get(pod, "terminationGracePeriodSeconds").(int); !ok || time.Duration(g)*time.Second <= shutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %v: must exceed shutdown_timeout (%v) or SIGKILL cuts the shutdown short", get(pod, "terminationGracePeriodSeconds"), shutdownTimeout)
	}
	podSec := get(pod, "securityContext")
	if get(podSec, "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	volumes := map[string]bool{}
	for _, v := range list(get(pod, "volumes")) {
		volumes[str(get(v, "name"))] = true
	}
	for _, v := range list(get(w, "spec", "volumeClaimTemplates")) {
		volumes[str(get(v, "metadata", "name"))] = true
	}
	containers := list(get(pod, "containers"))
	if len(containers) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range containers {
		checkContainer(t, c, podSec, volumes)
	}
}

func checkContainer(t *testing.T, c any, podSec any, volumes map[string]bool) {
	img := str(get(c, "image"))
	if repo, tag, ok := strings.Cut(img, ":"); !ok || repo != image || tag == "" || tag == "latest" {
		t.Errorf("image %q: want %s:<version>", img, image)
	}
	ports := map[string]bool{}
	for _, p := range list(get(c, "ports")) {
		if get(p, "containerPort") == 4195 {
			ports[str(get(p, "name"))] = true
		}
	}
	for probe, path := range map[string]string{"readinessProbe": "/ready", "livenessProbe": "/ping"} {
		h := get(c, probe, "httpGet")
		if str(get(h, "path")) != path {
			t.Errorf("%s: httpGet.path %v, want %s", probe, get(h, "path"), path)
		}
		if p := get(h, "port"); p != 4195 && !ports[str(p)] {
			t.Errorf("%s: port %v is not the container's port 4195", probe, p)
		}
	}
	if env := envValues(c); env["OKTADETECT_HTTP_ADDRESS"] != "0.0.0.0:4195" {
		t.Errorf("OKTADETECT_HTTP_ADDRESS %q: the probes come from the kubelet, the pod must listen on 0.0.0.0:4195", env["OKTADETECT_HTTP_ADDRESS"])
	}
	for _, r := range []string{"requests", "limits"} {
		for _, k := range []string{"cpu", "memory"} {
			if get(c, "resources", r, k) == nil {
				t.Errorf("no resources.%s.%s", r, k)
			}
		}
	}
	sec := get(c, "securityContext")
	for key, want := range map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false} {
		if get(sec, key) != want {
			t.Errorf("securityContext.%s is %v, want %v", key, get(sec, key), want)
		}
	}
	if drop := list(get(sec, "capabilities", "drop")); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("securityContext.capabilities.drop %v, want [ALL]", drop)
	}
	if str(get(sec, "seccompProfile", "type")) != "RuntimeDefault" && str(get(podSec, "seccompProfile", "type")) != "RuntimeDefault" {
		t.Error("no seccompProfile RuntimeDefault")
	}
	mounts := map[string]bool{}
	for _, m := range list(get(c, "volumeMounts")) {
		if !volumes[str(get(m, "name"))] {
			t.Errorf("volumeMount %v names no volume", get(m, "name"))
		}
		mounts[str(get(m, "mountPath"))] = true
	}
	checkArgs(t, c, mounts)
	checkSecretRefs(t, c)
	checkMemoryLimit(t, c)
}

// checkMemoryLimit: GOMEMLIMIT, in Go's syntax, is 85–95% of the
// container's memory limit, so the runtime collects before the kernel kills.
func checkMemoryLimit(t *testing.T, c any) {
	limit, err := byteSize(str(get(c, "resources", "limits", "memory")), map[string]uint64{"Mi": 1 << 20, "Gi": 1 << 30})
	if err != nil {
		t.Errorf("resources.limits.memory: %v", err)
		return
	}
	soft, err := byteSize(envValues(c)["GOMEMLIMIT"], map[string]uint64{"MiB": 1 << 20, "GiB": 1 << 30})
	if err != nil {
		t.Errorf("GOMEMLIMIT: %v (set it to about 90%% of resources.limits.memory, e.g. 460MiB for 512Mi)", err)
		return
	}
	if ratio := float64(soft) / float64(limit); ratio < 0.85 || ratio > 0.95 {
		t.Errorf("GOMEMLIMIT is %.0f%% of resources.limits.memory, want 85–95%%", 100*ratio)
	}
}

// byteSize parses a whole number followed by one of units.
func byteSize(s string, units map[string]uint64) (uint64, error) {
	for suffix, mult := range units {
		if num, ok := strings.CutSuffix(s, suffix); ok {
			n, err := strconv.ParseUint(num, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", s, err)
			}
			return n * mult, nil
		}
	}
	return 0, fmt.Errorf("%q: not a whole number of %v", s, slices.Sorted(maps.Keys(units)))
}

// checkArgs: `-c <config>` names a config the image ships (/config/…) or a
// mounted path.
func checkArgs(t *testing.T, c any, mounts map[string]bool) {
	args := list(get(c, "args"))
	if len(args) != 2 || args[0] != "-c" {
		t.Errorf("args %v: want [-c <config>]", args)
		return
	}
	cfg := str(args[1])
	if name, ok := strings.CutPrefix(cfg, "/config/"); ok {
		if _, err := os.Stat(filepath.Join("..", "config", name)); err != nil {
			t.Errorf("args: %s is not a shipped config: %v", cfg, err)
		}
		return
	}
	if !mounts[filepath.Dir(cfg)] {
		t.Errorf("args: %s is neither in the image's /config nor under a volumeMount", cfg)
	}
}

// checkSecretRefs: secrets come from the example Secret's keys, and the
// Okta token from a Secret, never a literal.
func checkSecretRefs(t *testing.T, c any) {
	keys := secretKeys(t)
	for _, e := range list(get(c, "env")) {
		ref := get(e, "valueFrom", "secretKeyRef")
		if ref == nil {
			if n := str(get(e, "name")); strings.Contains(n, "TOKEN") || strings.Contains(n, "PASSWORD") {
				t.Errorf("env %s is not taken from a Secret", n)
			}
			continue
		}
		if name, key := str(get(ref, "name")), str(get(ref, "key")); !keys[name+"/"+key] {
			t.Errorf("env %s: Secret %s has no key %s in base/secret.example.yaml", get(e, "name"), name, key)
		}
	}
}

func envValues(c any) map[string]string {
	env := map[string]string{}
	for _, e := range list(get(c, "env")) {
		env[str(get(e, "name"))] = str(get(e, "value"))
	}
	return env
}

func secretKeys(t *testing.T) map[string]bool {
	keys := map[string]bool{}
	for _, d := range manifests(t)[filepath.Join("kubernetes", "base", "secret.example.yaml")] {
		for k := range get(d, "stringData").(obj) {
			keys[str(get(d, "metadata", "name"))+"/"+k] = true
		}
	}
	return keys
}

func subset(sub, of any) bool {
	s, _ := sub.(obj)
	o, _ := of.(obj)
	for k, v := range s {
		if o[k] != v {
			return false
		}
	}
	return len(s) > 0
}

// The shapes' specifics: the exactly-once poller is one Recreate replica;
// the file-cursor pollers keep /var/lib/oktadetect on a claimed volume.
func TestKubernetesShapes(t *testing.T) {
	ws := workloads(t)
	byName := map[string]obj{}
	for _, w := range ws {
		byName[str(get(w, "kind"))+"/"+str(get(w, "metadata", "name"))] = w
	}
	for _, name := range []string{"Deployment/oktadetect-poller"} {
		w := byName[name]
		if get(w, "spec", "replicas") != 1 || str(get(w, "spec", "strategy", "type")) != "Recreate" {
			t.Errorf("%s: replicas %v, strategy %v: one replica per transactional id, Recreate", name, get(w, "spec", "replicas"), get(w, "spec", "strategy"))
		}
	}
	for _, name := range []string{"StatefulSet/oktadetect-poller-alo", "StatefulSet/oktadetect-stage1"} {
		w := byName[name]
		if w == nil {
			t.Errorf("no %s", name)
			continue
		}
		claims := map[string]bool{}
		for _, v := range list(get(w, "spec", "volumeClaimTemplates")) {
			claims[str(get(v, "metadata", "name"))] = true
		}
		c := list(get(w, "spec", "template", "spec", "containers"))[0]
		found := false
		for _, m := range list(get(c, "volumeMounts")) {
			found = found || (str(get(m, "mountPath")) == "/var/lib/oktadetect" && claims[str(get(m, "name"))])
		}
		if !found || get(w, "spec", "replicas") != 1 {
			t.Errorf("%s: want 1 replica with a volumeClaimTemplate mounted at /var/lib/oktadetect", name)
		}
	}
	if w := byName["Deployment/oktadetect-detect"]; w == nil || !strings.HasSuffix(str(list(get(list(get(w, "spec", "template", "spec", "containers"))[0], "args"))[1]), "stage2-detect-worker.yaml") {
		t.Error("no Deployment/oktadetect-detect running config/stage2-detect-worker.yaml")
	}
}

// Each kustomization's resources exist, each shape's names the image's
// version, and every manifest is part of some kustomization (the example
// Secret aside).
func TestKustomizations(t *testing.T) {
	used := map[string]bool{}
	for file, docs := range manifests(t) {
		if filepath.Base(file) != "kustomization.yaml" {
			continue
		}
		dir := filepath.Dir(file)
		for _, r := range list(docs[0]["resources"]) {
			p := filepath.Join(dir, str(r))
			info, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: resource %v: %v", file, r, err)
				continue
			}
			if info.IsDir() {
				p = filepath.Join(p, "kustomization.yaml")
			} else if rel, err := filepath.Rel(dir, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: resource file %v is outside the kustomization's directory (kustomize refuses it)", file, r)
			}
			used[p] = true
		}
		if dir != "kubernetes" && dir != filepath.Join("kubernetes", "base") {
			imgs := list(docs[0]["images"])
			if len(imgs) != 1 || str(get(imgs[0], "name")) != image || str(get(imgs[0], "newTag")) == "" {
				t.Errorf("%s: images: want %s with a newTag", file, image)
			}
		}
	}
	for file := range manifests(t) {
		if base := filepath.Base(file); !used[file] && base != "kustomization.yaml" && base != "secret.example.yaml" {
			t.Errorf("%s is in no kustomization.yaml", file)
		}
	}
}

// The example Secret holds placeholders, never a value that could be real.
func TestSecretExampleHoldsPlaceholdersOnly(t *testing.T) {
	placeholder := regexp.MustCompile(`^<[a-z0-9-]+>$`)
	for k, v := range get(manifests(t)[filepath.Join("kubernetes", "base", "secret.example.yaml")][0], "stringData").(obj) {
		if !placeholder.MatchString(str(v)) {
			t.Errorf("secret.example.yaml %s = %q: only <placeholders>", k, v)
		}
	}
}

// The local-rules pipeline is config/okta-to-kafka.yaml plus `rules`, which
// lists the pack and the rules ConfigMap's mount; the ConfigMap's rules
// compile.
func TestLocalRulesPipeline(t *testing.T) {
	ms := manifests(t)
	pipe := str(get(ms[filepath.Join("kubernetes", "poller-local-rules", "pipeline-configmap.yaml")][0], "data", "okta-to-kafka.yaml"))
	var local, shipped obj
	if err := yaml.Unmarshal([]byte(pipe), &local); err != nil {
		t.Fatalf("the pipeline in pipeline-configmap.yaml: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "config", "okta-to-kafka.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &shipped); err != nil {
		t.Fatal(err)
	}
	cel := get(list(get(local, "pipeline", "processors"))[0], "cel_detect").(obj)
	rules := list(cel["rules"])
	delete(cel, "rules")
	if !reflect.DeepEqual(local, shipped) {
		t.Error("pipeline-configmap.yaml differs from config/okta-to-kafka.yaml in more than cel_detect.rules: copy the config in again and add the rules lines")
	}
	want := []any{"/rules/okta", "/etc/oktadetect/rules/*.cel"}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("rules %v, want %v (the pack in the image and the rules ConfigMap)", rules, want)
	}
	dir := t.TempDir()
	for name, src := range get(ms[filepath.Join("kubernetes", "poller-local-rules", "rules-configmap.yaml")][0], "data").(obj) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(str(src)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if errs := detect.Lint([]string{dir, filepath.Join("..", "rules", "okta")}, plugin.Detection.CompileOptions()); len(errs) > 0 {
		t.Errorf("the rules ConfigMap with the pack: %v", errs)
	}
}

// The systemd unit keeps its sandbox and its stop timeout; where
// systemd-analyze exists it verifies the unit.
func TestSystemdUnit(t *testing.T) {
	unit := "systemd/oktadetect.service"
	raw, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = append(set[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "oktadetect", "ProtectHome": "yes",
		"NoNewPrivileges": "yes", "PrivateTmp": "yes", "SystemCallFilter": "@system-service",
		"EnvironmentFile": "/etc/oktadetect/oktadetect.env", "Restart": "on-failure",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	} {
		if !contains(set[k], want) {
			t.Errorf("%s: %s=%s missing (has %v)", unit, k, want, set[k])
		}
	}
	if stop, err := time.ParseDuration(last(set["TimeoutStopSec"])); err != nil || stop <= shutdownTimeout {
		t.Errorf("%s: TimeoutStopSec=%v must exceed the pipeline's shutdown_timeout (%v)", unit, set["TimeoutStopSec"], shutdownTimeout)
	}
	if !contains(set["Environment"], "OKTADETECT_STATE_DIR=/var/lib/oktadetect") {
		t.Errorf("%s: OKTADETECT_STATE_DIR must be the StateDirectory", unit)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit is not verified by systemd")
		return
	}
	// verify checks that ExecStart's binary exists: point it at this test binary.
	self, _ := os.Executable()
	copyPath := filepath.Join(t.TempDir(), "oktadetect.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(raw, []byte("/usr/local/bin/oktadetect"), []byte(self)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func last(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// Every alert says what happened, what to do (a runbook section that exists
// in README.md) and how bad it is, and has unit tests where it fires and
// where it does not; promtool accepts the rules and passes the tests.
func TestAlertRules(t *testing.T) {
	var rules ruleFile
	var tests ruleTests
	decodeFile(t, "prometheus/alerts.yaml", &rules)
	decodeFile(t, "prometheus/alerts.test.yaml", &tests)
	anchors := readmeAnchors(t)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				quiet[c.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			for _, a := range []string{"summary", "description", "runbook"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if _, anchor, _ := strings.Cut(r.Annotations["runbook"], "README.md#"); !anchors[anchor] {
				t.Errorf("%s: runbook %s names no README.md section", r.Alert, r.Annotations["runbook"])
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: alerts.test.yaml needs a case where it fires and one where it does not", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d alert rules", n)
	}
	t.Run("promtool", func(t *testing.T) {
		promtool := testkit.Promtool(t)
		promtoolRun(t, promtool, "prometheus", "check", "rules", "alerts.yaml")
		promtoolRun(t, promtool, "prometheus", "test", "rules", "alerts.test.yaml")
	})
}

// promtoolRun runs promtool in dir; a non-zero exit fails the test with its output.
func promtoolRun(t *testing.T, promtool, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The dashboard is valid JSON, its panels have unique ids, every query uses
// the datasource variable, and promtool parses every expression.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana/oktadetect.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/oktadetect.json: %v", err)
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, tg.Datasource.UID)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	t.Run("promtool parses every expression", func(t *testing.T) {
		promtool := testkit.Promtool(t)
		// As recording rules, with Grafana's variables given values.
		vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$job", ".*", "$instance", ".*")
		var rules []obj
		for i, e := range exprs {
			rules = append(rules, obj{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": vars.Replace(e)})
		}
		out, err := yaml.Marshal(obj{"groups": []obj{{"name": "dashboard", "rules": rules}}})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		promtoolRun(t, promtool, ".", "check", "rules", file)
	})
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readmeAnchors returns the GitHub anchors of README.md's headings.
func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	strip := regexp.MustCompile(`[^a-z0-9 _-]`)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimLeft(h, "#")
			a := strings.ReplaceAll(strip.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
			anchors[a] = true
		}
	}
	return anchors
}
