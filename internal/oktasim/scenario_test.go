package oktasim

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// speed is the great-circle speed in km/h between two sign-ins.
func speed(a, b LogEvent) float64 {
	const r = 6371.0
	ga, gb := a.Client.GeographicalContext.Geolocation, b.Client.GeographicalContext.Geolocation
	rad := math.Pi / 180
	dLat, dLon := (gb.Lat-ga.Lat)*rad, (gb.Lon-ga.Lon)*rad
	h := math.Pow(math.Sin(dLat/2), 2) + math.Cos(ga.Lat*rad)*math.Cos(gb.Lat*rad)*math.Pow(math.Sin(dLon/2), 2)
	km := 2 * r * math.Asin(math.Sqrt(h))
	return km / b.Published.Sub(a.Published).Hours()
}

func TestDemoScenarioHoldsTheSeedAttacks(t *testing.T) {
	tl, err := Scenario("demo", NewGenerator(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(tl, byOffset) {
		t.Error("timeline not sorted by offset")
	}
	var failures, logins []LogEvent
	found := map[string]bool{}
	for _, te := range tl {
		e := te.Event
		attack := true
		switch {
		case e.EventType == "user.session.start" && e.Actor.AlternateID == DemoBruteForceUser && e.Outcome.Result == "FAILURE":
			failures = append(failures, e)
		case e.EventType == "user.session.start" && e.Actor.AlternateID == DemoTraveller && e.Outcome.Result == "SUCCESS":
			logins = append(logins, e)
		case e.EventType == "user.account.privilege.grant" &&
			strings.Contains(e.DebugContext.DebugData["privilegeGranted"].(string), "Super administrator"):
			found["admin role"] = true
		case e.EventType == "system.api_token.create":
			found["token created"] = true
		case e.EventType == "system.api_token.revoke":
			found["token revoked"] = true
		default:
			attack = false
		}
		if attack && te.Offset > 45*time.Second {
			t.Errorf("%s persisted at %v, after the first 45 s", e.EventType, te.Offset)
		}
	}
	if len(failures) < 6 || failures[5].Published.Sub(failures[0].Published) > 15*time.Minute {
		t.Errorf("brute force: %d failures", len(failures))
	}
	if len(logins) != 2 || speed(logins[0], logins[1]) < 900 {
		t.Errorf("impossible travel: %d logins", len(logins))
	} else if d := logins[1].Published.Sub(logins[0].Published); d != 30*time.Minute {
		t.Errorf("impossible travel logins %v apart", d)
	}
	for _, k := range []string{"admin role", "token created", "token revoked"} {
		if !found[k] {
			t.Errorf("demo lacks %s", k)
		}
	}
}

func TestScenariosHaveLateEvents(t *testing.T) {
	for _, name := range []string{"quiet", "demo", "full"} {
		tl, err := Scenario(name, NewGenerator(1), t0)
		if err != nil {
			t.Fatal(err)
		}
		var latest time.Time
		late := 0
		for _, te := range tl {
			if te.Event.Published.Before(latest.Add(-5 * time.Second)) {
				late++
			}
			if te.Event.Published.After(latest) {
				latest = te.Event.Published
			}
		}
		if late < 5 {
			t.Errorf("%s: %d late events", name, late)
		}
	}
}

func TestBacklogScenario(t *testing.T) {
	tl, err := Scenario("backlog", NewGenerator(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != BacklogSize || tl[len(tl)-1].Offset != 0 || !tl[len(tl)-1].Event.Published.Before(t0) {
		t.Errorf("backlog: %d events", len(tl))
	}
}

func TestUnknownScenario(t *testing.T) {
	_, err := Scenario("nope", NewGenerator(1), t0)
	if err == nil {
		t.Fatal("no error")
	}
	for _, n := range ScenarioNames() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list %s", err, n)
		}
	}
	if !slices.Contains(ScenarioNames(), "demo") || !slices.Contains(ScenarioNames(), "quiet") || !slices.Contains(ScenarioNames(), "backlog") {
		t.Errorf("names %v", ScenarioNames())
	}
}

func TestPlay(t *testing.T) {
	f := newFixture(t, Options{})
	g := NewGenerator(1)
	tl := []Timed{
		{30 * time.Millisecond, g.Ordinary(t0)},
		{0, g.Ordinary(t0)},
		{0, g.Ordinary(t0)},
		{time.Hour, g.Ordinary(t0)},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.sim.Play(ctx, tl); close(done) }()
	deadline := time.After(time.Second)
	for f.sim.Len() < 3 {
		select {
		case <-deadline:
			t.Fatalf("Len = %d, want 3 before the hour-long offset", f.sim.Len())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	<-done
	if f.sim.Len() != 3 {
		t.Errorf("Len = %d after cancel", f.sim.Len())
	}
	// Same-offset events keep their timeline order.
	page := uuids(f.get(t, f.logsURL(nil)).events(t))
	if !slices.Equal(page, []string{tl[1].Event.UUID, tl[2].Event.UUID, tl[0].Event.UUID}) {
		t.Errorf("persistence order %v", page)
	}
}
