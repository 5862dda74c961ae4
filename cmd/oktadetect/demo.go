package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/config"
	"github.com/oktadetect/oktadetect/internal/oktasim"
)

const (
	demoConfig       = "okta-to-kafka.yaml"
	demoEventsTopic  = "okta.system_log"
	demoAlertsTopic  = "okta.alerts"
	demoPollInterval = "2s"
)

// demoCommand runs the whole product on a simulated org: the Okta simulator,
// an in-process Kafka (kfake) and the shipped okta-to-kafka pipeline, printing
// alerts as they land in Kafka.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "Detect attacks on a simulated Okta org, with an embedded Kafka, printing alerts as they land",
		Description: "Starts the Okta System Log simulator playing a scenario (ordinary traffic plus\n" +
			"brute force, an admin role grant, API token creation and revocation, impossible\n" +
			"travel), an in-process Kafka, and the pipeline of config/" + demoConfig + ",\n" +
			"then prints each alert read back from the " + demoAlertsTopic + " topic.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: run until interrupted)"},
			&cli.StringFlag{Name: "scenario", Value: "demo", Usage: fmt.Sprintf("simulator scenario %v", oktasim.ScenarioNames())},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "event generator seed"},
			&cli.StringFlag{Name: "log-level", Value: "WARN", Usage: "pipeline log level"},
			&cli.StringFlag{
				Name: "http-address", EnvVars: []string{envHTTPAddress}, Value: defaultHTTPAddress,
				Usage: "where the pipeline's /metrics is served, for a dashboard or curl (127.0.0.1:0: any free port)",
			},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if d := c.Duration("duration"); d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			return runDemo(ctx, demoOptions{
				scenario: c.String("scenario"),
				seed:     c.Int64("seed"),
				logLevel: c.String("log-level"),
				httpAddr: c.String("http-address"),
				duration: c.Duration("duration"),
				out:      c.App.Writer,
				errOut:   c.App.ErrWriter,
				tty:      isTerminal(c.App.Writer),
			})
		},
	}
}

type demoOptions struct {
	scenario string
	seed     int64
	logLevel string
	httpAddr string
	duration time.Duration
	out      io.Writer
	errOut   io.Writer
	tty      bool // out is a terminal: colour, and counts updated in place
}

// runDemo runs until ctx is done, then prints a summary.
func runDemo(ctx context.Context, opts demoOptions) error {
	start := time.Now()
	timeline, err := oktasim.Scenario(opts.scenario, oktasim.NewGenerator(opts.seed), start)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	orgURL, stopSim, err := serveSim(ctx, timeline)
	if err != nil {
		return err
	}
	defer stopSim()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, demoEventsTopic, demoAlertsTopic))
	if err != nil {
		return fmt.Errorf("demo: starting the embedded Kafka: %w", err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	stateDir, err := os.MkdirTemp("", "oktadetect-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(stateDir)

	metricsLn, err := net.Listen("tcp", opts.httpAddr)
	if err != nil {
		return fmt.Errorf("demo: serving metrics on --http-address %s: %w; pick a free one, e.g. --http-address 127.0.0.1:0", opts.httpAddr, err)
	}
	mux := http.NewServeMux()
	metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = metricsSrv.Serve(metricsLn) }()
	defer metricsSrv.Close()
	metricsURL := "http://" + metricsLn.Addr().String() + "/metrics"

	stream, err := demoStream(opts, mux, map[string]string{
		"OKTA_ORG_URL":          orgURL,
		"OKTA_API_TOKEN":        oktasim.DemoToken,
		"OKTA_POLL_INTERVAL":    demoPollInterval,
		"OKTA_INITIAL_LOOKBACK": "2h",
		"KAFKA_BROKERS":         brokers,
		"OKTADETECT_STATE_DIR":  stateDir,
	})
	if err != nil {
		return err
	}
	p := newAlertPrinter(opts.out, opts.tty)
	p.expected, err = attackAlerts(opts.scenario, opts.seed, start, timeline, orgHost(orgURL))
	if err != nil {
		return err
	}
	p.next = nextSteps(brokers, metricsURL)
	p.println(fmt.Sprintf("oktadetect demo: simulated org %s (scenario %q, %d events), embedded Kafka %s",
		orgURL, opts.scenario, len(timeline), brokers))
	p.println("Metrics: " + metricsURL)
	if opts.duration > 0 {
		p.println(fmt.Sprintf("Stops after %v; Ctrl-C to stop sooner.", opts.duration))
	} else {
		p.println("Ctrl-C to stop.")
	}
	p.println(fmt.Sprintf("Alerts as they land in %s (one line per alert; ×N: detections it groups):", demoAlertsTopic))
	p.checkDone() // a scenario without attacks

	streamErr := make(chan error, 1)
	go func() { streamErr <- stream.Run(context.Background()) }()

	summary, consumeErr := consumeAlerts(ctx, brokers, p)

	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Stop(stopCtx); err != nil {
		fmt.Fprintf(opts.errOut, "demo: stopping the pipeline: %v\n", err)
	}
	<-streamErr
	summary.print(opts.out, time.Since(start))
	return consumeErr
}

// serveSim serves the simulator on a loopback port and plays the timeline.
func serveSim(ctx context.Context, timeline []oktasim.Timed) (string, func(), error) {
	sim := oktasim.New(oktasim.Options{Token: oktasim.DemoToken})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: listening for the simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	playCtx, stopPlay := context.WithCancel(ctx)
	go sim.Play(playCtx, timeline)
	return "http://" + ln.Addr().String(), func() { stopPlay(); _ = srv.Close() }, nil
}

// demoStream builds the shipped pipeline with the demo's environment. Only
// the given variables are visible to it, so the user's own KAFKA_BROKERS or
// OKTA_API_TOKEN can never leak into the demo.
func demoStream(opts demoOptions, mux *http.ServeMux, env map[string]string) (*service.Stream, error) {
	conf, err := config.FS.ReadFile(demoConfig)
	if err != nil {
		return nil, fmt.Errorf("demo: reading the embedded %s: %w", demoConfig, err)
	}
	b := service.NewStreamBuilder()
	b.SetEnvVarLookupFunc(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	if err := b.SetYAML(string(conf)); err != nil {
		return nil, fmt.Errorf("demo: %s: %w", demoConfig, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(opts.logLevel)); err != nil {
		return nil, fmt.Errorf("demo: --log-level: %w", err)
	}
	// The pipeline's HTTP endpoints (/metrics) on the demo's own listener.
	b.SetHTTPMux(mux)
	b.SetLogger(slog.New(slog.NewTextHandler(opts.errOut, &slog.HandlerOptions{Level: level})))
	stream, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("demo: building the pipeline: %w", err)
	}
	return stream, nil
}

// alertRecord is what the pipeline writes to okta.alerts.
type alertRecord struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	AlertID  string `json:"alert_id"`
	Event    struct {
		Published string `json:"published"`
	} `json:"event"`
}

type demoSummary struct {
	events  int
	alerts  int
	byRule  map[string]int
	alertID map[string]bool
}

// consumeAlerts reads both topics from the start until ctx is done, printing
// each alert as one line.
func consumeAlerts(ctx context.Context, brokers string, p *alertPrinter) (*demoSummary, error) {
	s := &demoSummary{byRule: map[string]int{}, alertID: map[string]bool{}}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.ConsumeTopics(demoEventsTopic, demoAlertsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return s, fmt.Errorf("demo: Kafka consumer: %w", err)
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return s, nil
		}
		if err := fetches.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return s, fmt.Errorf("demo: consuming: %w", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic == demoEventsTopic {
				s.events++
				return
			}
			var a alertRecord
			if err := json.Unmarshal(r.Value, &a); err != nil {
				p.println(fmt.Sprintf("unreadable alert record: %v", err))
				return
			}
			s.alerts++
			s.byRule[a.ID]++
			s.alertID[a.AlertID] = true
			p.alert(a)
		})
	}
}

func (s *demoSummary) print(out io.Writer, elapsed time.Duration) {
	fmt.Fprintf(out, "\nSummary after %v: %d events in %s, %d detections (%d alerts) in %s\n",
		elapsed.Round(time.Second), s.events, demoEventsTopic, s.alerts, len(s.alertID), demoAlertsTopic)
	rules := make([]string, 0, len(s.byRule))
	for id := range s.byRule {
		rules = append(rules, id)
	}
	sort.Strings(rules)
	for _, id := range rules {
		fmt.Fprintf(out, "  %4d  %s\n", s.byRule[id], id)
	}
}
