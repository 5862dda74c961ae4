package oktasim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Timed is an event persisted Offset after a scenario starts.
type Timed struct {
	Offset time.Duration
	Event  LogEvent
}

const (
	// TrafficDuration is how long the scenarios' ordinary traffic runs.
	TrafficDuration = 30 * time.Minute
	// BacklogSize is how many events the "backlog" scenario persists.
	BacklogSize = 2000
)

// The seed attacks' cast in the "demo" and "full" scenarios. None of them
// is in the ordinary staff, so ordinary traffic never adds to their alerts.
const (
	DemoBruteForceUser = "dana.whitfield@" + OrgDomain
	DemoBruteForceIP   = "185.220.101.47"
	DemoAdmin          = "it.admin@" + OrgDomain
	DemoGrantee        = "temp.contractor@" + OrgDomain
	DemoTraveller      = "marcus.reid@" + OrgDomain
)

var scenarios = map[string]func(g *Generator, start time.Time) []Timed{
	"quiet":   quiet,
	"demo":    demo,
	"full":    full,
	"backlog": backlog,
}

// ScenarioNames lists the scenarios Scenario knows, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Scenario builds a named timeline starting at start (simulator time):
//
//   - quiet: ordinary traffic only, with late events.
//   - demo: quiet plus the five seed attacks, all persisted within 45 s:
//     brute force (6 failures), Super administrator granted, API token
//     created and revoked, impossible travel (New York, then Tokyo 30 min later).
//   - full: demo plus an account lock, MFA reset, push bombing, unauthorised
//     app access, a factor reset and a network zone deactivation.
//   - backlog: BacklogSize ordinary events published before start, all
//     persisted at offset 0.
//
// The timeline is sorted by Offset.
func Scenario(name string, g *Generator, start time.Time) ([]Timed, error) {
	build, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(ScenarioNames(), ", "))
	}
	tl := build(g, start)
	slices.SortStableFunc(tl, byOffset)
	return tl, nil
}

// quiet is ten minutes of history persisted at once, then live traffic
// every one to three seconds. One event in ten arrives late: published
// seconds to minutes before events already persisted.
func quiet(g *Generator, start time.Time) []Timed {
	var tl []Timed
	for i := range 20 {
		tl = append(tl, Timed{0, g.Ordinary(start.Add(-10*time.Minute + time.Duration(i)*30*time.Second))})
	}
	for off := time.Second; off < TrafficDuration; off += time.Duration(1000+g.intn(2000)) * time.Millisecond {
		pub := start.Add(off)
		if g.intn(10) == 0 {
			pub = pub.Add(-time.Duration(5+g.intn(175)) * time.Second)
		}
		tl = append(tl, Timed{off, g.Ordinary(pub)})
	}
	return tl
}

// live persists events when they are published (the way Okta's log fills),
// or at once if they were published before the scenario started.
func live(start time.Time, events ...LogEvent) []Timed {
	out := make([]Timed, len(events))
	for i, e := range events {
		out[i] = Timed{max(e.Published.Sub(start), 0), e}
	}
	return out
}

func demo(g *Generator, start time.Time) []Timed {
	tl := quiet(g, start)
	tl = append(tl, live(start, g.BruteForce(DemoBruteForceUser, DemoBruteForceIP, start.Add(3*time.Second), 6)...)...)
	// The first sign-in happened half an hour ago but reaches the log only
	// now: a late event, exactly what polling by persistence order is for.
	travel := g.ImpossibleTravel(DemoTraveller, start.Add(-30*time.Minute+35*time.Second))
	tl = append(tl, Timed{6 * time.Second, travel[0]}, Timed{35 * time.Second, travel[1]})
	tl = append(tl, live(start,
		g.AdminRoleAssigned(DemoAdmin, DemoGrantee, start.Add(20*time.Second)),
		g.APITokenCreated(DemoGrantee, start.Add(27*time.Second)),
		g.APITokenRevoked(DemoGrantee, start.Add(42*time.Second)),
	)...)
	return tl
}

func full(g *Generator, start time.Time) []Timed {
	tl := demo(g, start)
	tl = append(tl, live(start,
		g.AccountLocked(DemoBruteForceUser, DemoBruteForceIP, start.Add(48*time.Second)),
		g.MFAReset(DemoGrantee, DemoAdmin, start.Add(50*time.Second)),
		g.UnauthorizedAppAccess(DemoGrantee, start.Add(65*time.Second)),
		g.ZoneDeactivated(DemoGrantee, start.Add(70*time.Second)),
		g.MFAFactorDeactivated(DemoGrantee, DemoGrantee, start.Add(75*time.Second)),
	)...)
	tl = append(tl, live(start, g.PushBombing("grace.kim@"+OrgDomain, start.Add(55*time.Second), 6)...)...)
	return tl
}

func backlog(g *Generator, start time.Time) []Timed {
	events := g.Backlog(BacklogSize, start.Add(-BacklogSize*time.Second), time.Second)
	tl := make([]Timed, len(events))
	for i, e := range events {
		tl[i] = Timed{0, e}
	}
	return tl
}

func byOffset(a, b Timed) int { return cmp.Compare(a.Offset, b.Offset) }

// Play persists each event of timeline at its offset from now (wall clock;
// events sharing an offset are persisted together, in timeline order). It
// returns when the timeline is done or ctx is.
func (s *Sim) Play(ctx context.Context, timeline []Timed) {
	tl := slices.Clone(timeline)
	slices.SortStableFunc(tl, byOffset)
	begin := time.Now()
	for i := 0; i < len(tl); {
		j := i + 1
		for j < len(tl) && tl[j].Offset == tl[i].Offset {
			j++
		}
		if wait := time.Until(begin.Add(tl[i].Offset)); wait > 0 {
			sleep(ctx, wait)
		}
		if ctx.Err() != nil {
			return
		}
		batch := make([]LogEvent, 0, j-i)
		for _, t := range tl[i:j] {
			batch = append(batch, t.Event)
		}
		s.Persist(batch...)
		i = j
	}
}
