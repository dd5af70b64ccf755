package agent

import (
	"context"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestBusLostPagesAndResolves: with a bus, WatchEvaluators pages when
// JetStream has acknowledged nothing for lost_after, and resolves at the
// first acknowledgement after it is back.
func TestBusLostPagesAndResolves(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, bustest.Options{})
	b.fromStore = false
	clock := newFakeClock(repEpoch)
	rep := repReporting(10)
	rep.Heartbeat = 10 * time.Second // liveness keeps publishing
	h := newBusHarness(t, clock, t.TempDir(), rep, b)
	h.start()
	p := &pages{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); WatchEvaluators(ctx, h.r, p, clock, time.Minute, 10*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })

	// Time stands still while a publish waits for its answer: the
	// watcher must judge acknowledgements, not how slow the machine is.
	pump := func(cond func() bool) {
		t.Helper()
		clocktest.WaitFor(t, repWait, "the condition", func() bool {
			if cond() {
				return true
			}
			if d, ok := clock.Next(); ok && d <= backoffMax && h.eval(0).answerDue.Load() == 0 {
				clock.Advance(d)
			}
			return false
		})
	}
	pump(func() bool { return drained(h, 0) && value(h.eval(0).sent) >= 3 })
	if got := p.all(); len(got) != 0 {
		t.Fatalf("paged %v while JetStream acknowledges", got)
	}
	b.srv.Stop()
	pump(func() bool { return len(p.all()) == 1 })
	if got := p.all(); !got[0] {
		t.Fatalf("pages %v, want a trigger", got)
	}
	b.restart(bustest.Options{})
	pump(func() bool { return len(p.all()) == 2 })
	if got := p.all(); got[1] {
		t.Fatalf("pages %v, want the trigger then a resolve", got)
	}
}
