package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/console"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
)

func TestStepLiveness(t *testing.T) {
	const stale = 30 * time.Second
	start := t0
	at := func(d time.Duration) time.Time { return start.Add(d) }
	never := time.Time{}
	unknown := decide.Liveness{State: decide.RegionUnknown, Since: start}
	live := decide.Liveness{State: decide.RegionLive, Since: at(5 * time.Second)}
	staleSeen := decide.Liveness{State: decide.RegionStale, Since: at(70 * time.Second), SilentSince: at(40 * time.Second)}
	staleNever := decide.Liveness{State: decide.RegionStale, Since: at(30 * time.Second), SilentSince: start, NeverSeen: true}

	tests := []struct {
		name     string
		cur      decide.Liveness
		lastSeen time.Time
		now      time.Time
		want     decide.Liveness
		event    decide.LivenessEvent
	}{
		{"never seen, just started", unknown, never, at(time.Second), unknown, decide.LivenessEvent{}},
		{"never seen, just under stale_after", unknown, never, at(stale - time.Nanosecond), unknown, decide.LivenessEvent{}},
		{"never seen for stale_after", unknown, never, at(stale),
			staleNever, decide.LivenessEvent{Kind: decide.LivenessStale, SilentSince: start, NeverSeen: true}},
		{"first batch", unknown, at(2 * time.Second), at(3 * time.Second),
			decide.Liveness{State: decide.RegionLive, Since: at(3 * time.Second)}, decide.LivenessEvent{Kind: decide.LivenessFirstSeen}},
		{"reporting", live, at(20 * time.Second), at(49 * time.Second), live, decide.LivenessEvent{}},
		{"silent for stale_after", live, at(40 * time.Second), at(70 * time.Second),
			staleSeen, decide.LivenessEvent{Kind: decide.LivenessStale, SilentSince: at(40 * time.Second)}},
		{"still silent", staleSeen, at(40 * time.Second), at(300 * time.Second), staleSeen, decide.LivenessEvent{}},
		{"reporting again", staleSeen, at(292 * time.Second), at(293 * time.Second),
			decide.Liveness{State: decide.RegionLive, Since: at(293 * time.Second)},
			decide.LivenessEvent{Kind: decide.LivenessBack, SilentSince: at(40 * time.Second), SilentFor: 252 * time.Second}},
		{"first batch after never", staleNever, at(90 * time.Second), at(91 * time.Second),
			decide.Liveness{State: decide.RegionLive, Since: at(91 * time.Second)},
			decide.LivenessEvent{Kind: decide.LivenessBack, SilentSince: start, SilentFor: 90 * time.Second, NeverSeen: true}},
		{"seen once, then silent before any step", unknown, at(time.Second), at(40 * time.Second),
			decide.Liveness{State: decide.RegionStale, Since: at(40 * time.Second), SilentSince: at(time.Second)},
			decide.LivenessEvent{Kind: decide.LivenessStale, SilentSince: at(time.Second)}},
		{"agent clock ahead is still fresh", live, at(60 * time.Second), at(50 * time.Second), live, decide.LivenessEvent{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ev := decide.StepLiveness(tc.cur, decide.LivenessInput{LastSeen: tc.lastSeen, Started: start, StaleAfter: stale}, tc.now)
			if got != tc.want || ev != tc.event {
				t.Fatalf("stepLiveness = %+v, %+v\nwant %+v, %+v", got, ev, tc.want, tc.event)
			}
		})
	}
}

func TestMetaSummary(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2030, 1, 2, 12, 3, 41, 0, time.FixedZone("CET", 3600)) // 11:03:41 UTC
	many := make([]string, 12)
	for i := range many {
		many[i] = fmt.Sprintf("c%02d", i)
	}
	tests := []struct {
		name    string
		silent  []silentRegion
		unknown []string
		want    string
	}{
		{"one region", []silentRegion{{"eu-west", at, false}}, nil, "1/3 regions silent: eu-west since 11:03:41"},
		{"every region", []silentRegion{{"us-east", at, false}, {"eu-west", at, false}, {"ap-south", t0, true}}, []string{"web", "api"},
			"monitoring blind: 3/3 regions silent: us-east since 11:03:41, eu-west since 11:03:41, ap-south never heard from since evaluator start at 12:00:00; " +
				"2 check(s) UNKNOWN, too few live regions to decide (web, api)"},
		{"checks only", nil, many, "12 check(s) UNKNOWN, too few live regions to decide (c00, c01, c02, c03, c04, c05, c06, c07, c08, c09 and 2 more)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.ev.metaSummary(tc.silent, tc.unknown); got != tc.want {
				t.Fatalf("summary\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// runLoop starts e.Run and returns a function that advances the fake
// clock one second at a time, waiting each time until the loop has ticked
// and parked again.
func runLoop(t *testing.T, f *fixture) (advance func(time.Duration)) {
	advance, _ = runLoopJumps(t, f)
	return advance
}

// runLoopJumps is runLoop that also returns jump, which moves the fake
// clock by d in one step (one late tick) and waits for that tick.
func runLoopJumps(t *testing.T, f *fixture) (advance, jump func(time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	timers := f.clock.TimersCreated() + 1
	go func() { done <- f.ev.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	f.clock.WaitTimersCreated(t, timers, 10*time.Second)
	jump = func(d time.Duration) {
		f.clock.Advance(d)
		timers++
		f.clock.WaitTimersCreated(t, timers, 10*time.Second)
	}
	advance = func(d time.Duration) {
		for range int(d / tickInterval) {
			jump(tickInterval)
		}
	}
	return advance, jump
}

func (f *fixture) state(region string) decide.RegionState {
	for _, r := range f.ev.Snapshot().Regions {
		if r.Name == region {
			return r.State
		}
	}
	f.t.Fatalf("no region %q", region)
	return ""
}

func (f *fixture) live(region string) float64 {
	v, ok := f.gathered("outpost_region_live", map[string]string{"region": region})
	if !ok {
		f.t.Fatalf("outpost_region_live{region=%q} not exported", region)
	}
	return v
}

func TestRunLiveness(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the fixture's server is closed
	f := newFixture(t)
	advance := runLoop(t, f)
	seqs := map[string]uint64{}
	report := func(region string) {
		t.Helper()
		seqs[region]++
		if code, body := f.sendBatch(f.batch(region, seqs[region])); code != 200 {
			t.Fatalf("%s heartbeat: %d %q", region, code, body)
		}
	}

	if s := f.state("us-east"); s != decide.RegionUnknown {
		t.Fatalf("before any batch: %s, want UNKNOWN", s)
	}
	report("us-east")
	report("eu-west")
	advance(time.Second)
	if f.state("us-east") != decide.RegionLive || f.state("eu-west") != decide.RegionLive || f.state("ap-south") != decide.RegionUnknown {
		t.Fatalf("after the first batches: %+v", f.ev.Snapshot().Regions)
	}
	if f.live("us-east") != 1 || f.live("ap-south") != 0 {
		t.Fatal("outpost_region_live wrong after the first batches")
	}

	// us-east keeps reporting every 10s; eu-west stops at 12:00:00.
	advanceReporting := func(d time.Duration) {
		for range int(d / time.Second) {
			advance(time.Second)
			if f.clock.Now().Sub(t0)%(10*time.Second) == 0 {
				report("us-east")
			}
		}
	}
	// eu-west is STALE from 12:00:30 (stale_after); the page waits
	// meta.for (two heartbeats, 20s).
	advanceReporting(48 * time.Second)
	if f.state("eu-west") != decide.RegionStale {
		t.Fatalf("at 12:00:49: %+v", f.ev.Snapshot().Regions)
	}
	if n := metaNotes(f.notes); len(n) != 0 {
		t.Fatalf("paged before meta.for: %+v", n)
	}
	advanceReporting(time.Second)
	if got := metaNotes(f.notes); len(got) != 1 || got[0].Action != notify.ActionTrigger || got[0].Summary != "1/3 regions silent: eu-west since 12:00:00" ||
		got[0].Key != metaKey || got[0].Route != checks.RouteMeta || got[0].Details["region.eu-west"] != "silent since 2030-01-02T12:00:00Z" {
		t.Fatalf("meta pages at 12:00:50 = %+v", got)
	}
	// ap-south, never heard from, is STALE at the end of the start grace
	// (stale_after + heartbeat + batch delay: 41s) and joins the same
	// incident 20s later.
	advanceReporting(time.Minute)
	if f.state("eu-west") != decide.RegionStale || f.state("us-east") != decide.RegionLive || f.state("ap-south") != decide.RegionStale {
		t.Fatalf("after two minutes: %+v", f.ev.Snapshot().Regions)
	}
	if f.live("eu-west") != 0 || f.live("us-east") != 1 {
		t.Fatal("outpost_region_live wrong after two minutes")
	}
	got := metaNotes(f.notes)
	last := got[len(got)-1]
	if !strings.HasPrefix(last.Summary, "2/3 regions silent: eu-west since 12:00:00, ap-south never heard from since evaluator start at 12:00:00") ||
		last.Action != notify.ActionTrigger {
		t.Fatalf("meta page after two minutes: %+v", last)
	}
	for _, n := range got {
		if n.Key != metaKey || n.Action != notify.ActionTrigger {
			t.Errorf("meta notification %s %s %q: want triggers of %s only", n.Key, n.Action, n.Summary, metaKey)
		}
	}

	// eu-west comes back at 12:04:12: the incident is updated, not
	// resolved, since ap-south is still silent.
	advanceReporting(4*time.Minute + 12*time.Second - f.clock.Now().Sub(t0))
	report("eu-west")
	advance(time.Second)
	if f.state("eu-west") != decide.RegionLive || f.live("eu-west") != 1 {
		t.Fatalf("after eu-west reported again: %+v", f.ev.Snapshot().Regions)
	}
	got = metaNotes(f.notes)
	if last := got[len(got)-1]; last.Action != notify.ActionTrigger || !strings.HasPrefix(last.Summary, "1/3 regions silent: ap-south never heard from") {
		t.Fatalf("meta page after eu-west came back: %+v", last)
	}
	if !strings.Contains(f.logs.String(), `msg="region reporting again" region=eu-west silent_since=2030-01-02T12:00:00Z silent_for=4m12s`) {
		t.Errorf("eu-west's return not logged:\n%s", f.logs.String())
	}
}

// Silence is never health: an evaluator that hears from nobody reports
// every region stale once its start grace has passed, in one meta page.
func TestRunNeverSeen(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	f := newFixture(t)
	advance := runLoop(t, f)
	advance(40 * time.Second)
	if s := f.state("us-east"); s != decide.RegionUnknown || len(f.notes.Delivered()) != 0 {
		t.Fatalf("within the start grace: %s, %d notifications", s, len(f.notes.Delivered()))
	}
	advance(time.Second)
	for _, r := range f.ev.Snapshot().Regions {
		if r.State != decide.RegionStale {
			t.Errorf("%s: %s, want STALE", r.Name, r.State)
		}
	}
	advance(20 * time.Second)
	got := metaNotes(f.notes)
	if len(got) != 1 || !strings.HasPrefix(got[0].Summary, "monitoring blind: 3/3 regions silent: ") {
		t.Fatalf("meta pages = %+v, want one: monitoring blind", got)
	}
	// Every check is UNKNOWN too once warm (70s): the same incident says
	// so, and nothing else pages.
	advance(time.Minute)
	got = metaNotes(f.notes)
	last := got[len(got)-1]
	if !strings.Contains(last.Summary, "2 check(s) UNKNOWN") {
		t.Fatalf("meta page after warm-up: %q", last.Summary)
	}
	for _, n := range f.notes.Delivered() {
		if n.Key != metaKey || n.Action != notify.ActionTrigger {
			t.Errorf("notification %s %s %q: want updates of %s only", n.Key, n.Action, n.Summary, metaKey)
		}
	}
}

// metaNotes returns the meta incident's notifications.
func metaNotes(c *notifytest.Recorder) []notify.Notification {
	var out []notify.Notification
	for _, n := range c.Delivered() {
		if n.Kind == notify.KindMonitoring {
			out = append(out, n)
		}
	}
	return out
}

type failingNotifier struct{}

func (failingNotifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	return true, errors.New("pager unreachable")
}

// TestRunLogsNotifierFailure: a failing notifier is logged, with its
// error, but once per kind and rejectLogEvery however many notifications
// fail: the meta page and its updates give one line.
func TestRunLogsNotifierFailure(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Notifier = failingNotifier{} })
	for _, at := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
		f.ev.tick(context.Background(), t0.Add(at))
	}
	if logs := f.logs.String(); strings.Count(logs, "notification not delivered") != 1 || !strings.Contains(logs, "pager unreachable") {
		t.Fatalf("logs:\n%s", logs)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	ev, err := New(loadTestConfig(t), Options{Clock: clock.Real{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ev.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConsoleNotifier(t *testing.T) {
	var buf notifytest.LogBuffer
	n := notify.Notification{Kind: notify.KindRegionStale, Key: "outpost:region:us-east", Severity: notify.SeverityWarning, Summary: "agent in us-east silent since 12:03:41",
		Region: "us-east", Time: t0, Details: map[string]string{"last_seen": "2030-01-02T12:03:41Z"}}
	if _, err := console.New(slogTo(&buf)).Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, want := range []string{"level=WARN", `msg="agent in us-east silent since 12:03:41"`, "kind=region_stale", "key=outpost:region:us-east", "details.last_seen=2030-01-02T12:03:41Z"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("want one line, got %q", line)
	}
}
