package alerting

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/console"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
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

func TestRegionNotification(t *testing.T) {
	now := t0.Add(10 * time.Minute)
	silent := time.Date(2030, 1, 2, 12, 3, 41, 0, time.FixedZone("CET", 3600)) // 11:03:41 UTC
	tests := []struct {
		name     string
		ev       decide.LivenessEvent
		kind     string
		severity string
		summary  string
	}{
		{"stale", decide.LivenessEvent{Kind: decide.LivenessStale, SilentSince: silent}, notify.KindRegionStale, notify.SeverityWarning,
			"agent in us-east silent since 11:03:41"},
		{"never", decide.LivenessEvent{Kind: decide.LivenessStale, SilentSince: t0, NeverSeen: true}, notify.KindRegionStale, notify.SeverityWarning,
			"agent in us-east never heard from since evaluator start at 12:00:00"},
		{"live", decide.LivenessEvent{Kind: decide.LivenessBack, SilentSince: silent, SilentFor: 4*time.Minute + 12*time.Second + 300*time.Millisecond},
			notify.KindRegionLive, notify.SeverityInfo, "agent in us-east reporting again after 4m12s"},
		{"first", decide.LivenessEvent{Kind: decide.LivenessBack, SilentSince: t0, SilentFor: 90 * time.Second, NeverSeen: true},
			notify.KindRegionLive, notify.SeverityInfo, "agent in us-east reporting for the first time, 1m30s after evaluator start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := regionNotification("us-east", tc.ev, now)
			if !ok || n.Kind != tc.kind || n.Severity != tc.severity || n.Summary != tc.summary ||
				n.Key != "outpost:region:us-east" || n.Region != "us-east" || !n.Time.Equal(now) {
				t.Fatalf("notification = %+v", n)
			}
		})
	}
	for _, k := range []decide.LivenessChange{decide.LivenessSame, decide.LivenessFirstSeen} {
		if n, ok := regionNotification("us-east", decide.LivenessEvent{Kind: k}, now); ok {
			t.Errorf("event %d notified: %+v", k, n)
		}
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
	summaries := func() (out []string) {
		for _, n := range regionNotes(f.notes) {
			out = append(out, n.Kind+": "+n.Summary)
		}
		return out
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
	advanceReporting(time.Minute)
	if f.state("eu-west") != decide.RegionStale || f.state("us-east") != decide.RegionLive || f.state("ap-south") != decide.RegionStale {
		t.Fatalf("after a minute: %+v", f.ev.Snapshot().Regions)
	}
	if f.live("eu-west") != 0 || f.live("us-east") != 1 {
		t.Fatal("outpost_region_live wrong after a minute")
	}
	want := []string{
		"region_stale: agent in eu-west silent since 12:00:00",
		"region_stale: agent in ap-south never heard from since evaluator start at 12:00:00",
	}
	if got := summaries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notifications:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// eu-west comes back at 12:04:12.
	advanceReporting(4*time.Minute + 12*time.Second - f.clock.Now().Sub(t0))
	report("eu-west")
	advance(time.Second)
	if f.state("eu-west") != decide.RegionLive || f.live("eu-west") != 1 {
		t.Fatalf("after eu-west reported again: %+v", f.ev.Snapshot().Regions)
	}
	want = append(want, "region_live: agent in eu-west reporting again after 4m12s")
	if got := summaries(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notifications:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	n := regionNotes(f.notes)[2]
	if n.Key != "outpost:region:eu-west" || n.Details["silent_since"] != "2030-01-02T12:00:00Z" {
		t.Errorf("notification = %+v", n)
	}
}

// Silence is never health: an evaluator that hears from nobody reports
// every region stale once stale_after has passed since it started.
func TestRunNeverSeen(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	f := newFixture(t)
	advance := runLoop(t, f)
	advance(29 * time.Second)
	if s := f.state("us-east"); s != decide.RegionUnknown || len(f.notes.Delivered()) != 0 {
		t.Fatalf("before stale_after: %s, %d notifications", s, len(f.notes.Delivered()))
	}
	advance(time.Second)
	for _, r := range f.ev.Snapshot().Regions {
		if r.State != decide.RegionStale {
			t.Errorf("%s: %s, want STALE", r.Name, r.State)
		}
	}
	if n := len(regionNotes(f.notes)); n != 3 {
		t.Fatalf("%d region notifications, want one per region", n)
	}
	advance(time.Minute)
	if n := len(regionNotes(f.notes)); n != 3 {
		t.Fatalf("%d region notifications after another minute, want still 3", n)
	}
	// Every check is UNKNOWN now, with no region live: one meta page says
	// so for all of them, not one page per check.
	var unknown []notify.Notification
	for _, n := range f.notes.Delivered() {
		if n.Kind == notify.KindChecksUnknown {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) != 1 || unknown[0].Details["action"] != "trigger" || !strings.Contains(unknown[0].Summary, "UNKNOWN") {
		t.Fatalf("unknown-check pages = %+v, want one aggregated trigger", unknown)
	}
}

// regionNotes returns the region liveness notifications.
func regionNotes(c *notifytest.Recorder) []notify.Notification {
	var out []notify.Notification
	for _, n := range c.Delivered() {
		if strings.HasPrefix(n.Kind, "region_") {
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
// fail: three regions going stale at once give one line.
func TestRunLogsNotifierFailure(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Notifier = failingNotifier{} })
	f.ev.tick(context.Background(), t0.Add(time.Minute))
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
