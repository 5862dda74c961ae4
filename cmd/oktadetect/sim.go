package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/oktadetect/oktadetect/internal/oktasim"
)

// simCommand serves the Okta System Log simulator and plays a scenario into
// it, so a pipeline can be pointed at a realistic org without one.
func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "Serve a simulated Okta System Log API (/api/v1/logs) playing a scenario",
		Description: "Serves GET /api/v1/logs like an Okta org and persists the events of a scenario\n" +
			"as time passes. Point okta_system_log at it with org_url: http://ADDR.\n" +
			fmt.Sprintf("Scenarios: %v.", oktasim.ScenarioNames()),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8089", Usage: "listen address"},
			&cli.StringFlag{
				Name: "token", EnvVars: []string{"OKTASIM_TOKEN"},
				Usage:       "SSWS API token the simulator accepts",
				DefaultText: "the built-in demo token",
			},
			&cli.StringFlag{Name: "scenario", Value: "demo", Usage: "scenario to play"},
			&cli.IntFlag{Name: "rate-limit", Value: oktasim.DefaultRateLimit, Usage: "requests per window on /api/v1/logs"},
			&cli.DurationFlag{Name: "rate-window", Value: time.Minute, Usage: "fixed rate-limit window"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "event generator seed"},
		},
		Action: runSim,
	}
}

func runSim(c *cli.Context) error {
	token := c.String("token")
	if token == "" {
		token = oktasim.DemoToken
	}
	start := time.Now()
	timeline, err := oktasim.Scenario(c.String("scenario"), oktasim.NewGenerator(c.Int64("seed")), start)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	sim := oktasim.New(oktasim.Options{
		Token:      token,
		RateLimit:  c.Int("rate-limit"),
		RateWindow: c.Duration("rate-window"),
	})

	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("sim: listening on %s: %w", c.String("addr"), err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The token is deliberately never printed: only where it came from.
	source := "the built-in demo token"
	if c.IsSet("token") {
		source = "--token / $OKTASIM_TOKEN"
	}
	fmt.Fprintf(c.App.ErrWriter, "oktasim: serving http://%s%s (scenario %q, %d events, SSWS token from %s)\n",
		ln.Addr(), oktasim.LogsPath, c.String("scenario"), len(timeline), source)

	go sim.Play(ctx, timeline)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("sim: serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sim: shutting down: %w", err)
	}
	fmt.Fprintf(c.App.ErrWriter, "oktasim: stopped after %d requests, %d events persisted\n", len(sim.Requests()), sim.Len())
	return nil
}
