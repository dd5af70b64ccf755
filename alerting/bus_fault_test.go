package alerting

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestBusOutageIsTheBussFault: NATS goes away under a running evaluator.
// The regions are not to blame for the silence that follows: none is
// declared STALE while the evaluator cannot hear them (until the bounded
// hold), /healthz says the bus is the trouble, and the evaluator pages
// that under its own name. When NATS is back, the fault clears and the
// regions are heard again.
func TestBusOutageIsTheBussFault(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	id := checkInShards(t, "web", 0, 63)
	cfg := busConfig(t, srv.URL, pd.URL(), "", id)
	// Regions are STALE after 5s of silence here, not busConfig's hour,
	// so that the outage outlasts it in a few ticks.
	cfg.Reporting.StaleAfter = 5 * time.Second
	clk := busClock()
	be := startBusEvaluator(t, cfg, clk, srv.URL, "solo")
	_, js := dialBus(t, srv.URL, "test-agents")
	agents := map[string]*busAgent{}
	for _, r := range busRegions {
		agents[r] = newBusAgent(t, js, clk, cfg, r)
	}
	sent := 0
	round := func() {
		t.Helper()
		for _, r := range busRegions {
			agents[r].result(id, true)
			agents[r].live()
		}
		sent += 2 * len(busRegions)
		be.waitHandled(t, sent)
		clk.Advance(time.Second)
	}
	round()
	waitLive(t, clk, be)
	round()

	srv.Stop()
	clocktest.WaitFor(t, 30*time.Second, "the evaluator's connection down", func() bool { return !be.ev.bus.js.Conn().IsConnected() })
	// Twice stale_after of silence, a tick at a time.
	for end := clk.Now().Add(2 * cfg.Reporting.StaleAfter); clk.Now().Before(end); {
		clk.Advance(tickInterval)
		clocktest.WaitIdle(t, 30*time.Second)
		for _, r := range busRegions {
			if s := stateOf(be.ev, r); s != decide.RegionLive {
				t.Fatalf("%s is %s while the evaluator could not hear it: the bus's outage blamed on the region", r, s)
			}
		}
	}
	clocktest.WaitFor(t, 30*time.Second, "/healthz naming the bus", func() bool {
		return strings.Contains(be.ev.Health(), "cannot consume results from the bus")
	})
	clocktest.WaitFor(t, 30*time.Second, "the evaluator's own page about the bus", func() bool {
		return slices.ContainsFunc(pd.Events(), func(e notifytest.Event) bool {
			return e.EventAction == "trigger" && e.Payload != nil && strings.Contains(e.Payload.Summary, "solo cannot consume results from the bus")
		})
	})

	bustest.Start(t, bustest.Options{StoreDir: srv.StoreDir, Port: srv.Port})
	clocktest.WaitFor(t, 30*time.Second, "the connections back", func() bool {
		return js.Conn().IsConnected() && be.ev.bus.js.Conn().IsConnected()
	})
	round()
	clocktest.WaitFor(t, 30*time.Second, "the fault cleared", func() bool {
		clk.Advance(tickInterval)
		return be.ev.Health() == ""
	})
	for _, r := range busRegions {
		if s := stateOf(be.ev, r); s != decide.RegionLive {
			t.Errorf("%s is %s after the bus came back", r, s)
		}
	}
}
