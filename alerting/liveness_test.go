package alerting

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/probes/clock"
)

func TestStepLiveness(t *testing.T) {
	const stale = 30 * time.Second
	start := t0
	at := func(d time.Duration) time.Time { return start.Add(d) }
	never := time.Time{}
	unknown := liveness{State: RegionUnknown, Since: start}
	live := liveness{State: RegionLive, Since: at(5 * time.Second)}
	staleSeen := liveness{State: RegionStale, Since: at(70 * time.Second), SilentSince: at(40 * time.Second)}
	staleNever := liveness{State: RegionStale, Since: at(30 * time.Second), SilentSince: start, NeverSeen: true}

	tests := []struct {
		name     string
		cur      liveness
		lastSeen time.Time
		now      time.Time
		want     liveness
		event    livenessEvent
	}{
		{"never seen, just started", unknown, never, at(time.Second), unknown, livenessEvent{}},
		{"never seen, just under stale_after", unknown, never, at(stale - time.Nanosecond), unknown, livenessEvent{}},
		{"never seen for stale_after", unknown, never, at(stale),
			staleNever, livenessEvent{Kind: eventStale, SilentSince: start, NeverSeen: true}},
		{"first batch", unknown, at(2 * time.Second), at(3 * time.Second),
			liveness{State: RegionLive, Since: at(3 * time.Second)}, livenessEvent{Kind: eventFirstSeen}},
		{"reporting", live, at(20 * time.Second), at(49 * time.Second), live, livenessEvent{}},
		{"silent for stale_after", live, at(40 * time.Second), at(70 * time.Second),
			staleSeen, livenessEvent{Kind: eventStale, SilentSince: at(40 * time.Second)}},
		{"still silent", staleSeen, at(40 * time.Second), at(300 * time.Second), staleSeen, livenessEvent{}},
		{"reporting again", staleSeen, at(292 * time.Second), at(293 * time.Second),
			liveness{State: RegionLive, Since: at(293 * time.Second)},
			livenessEvent{Kind: eventLive, SilentSince: at(40 * time.Second), SilentFor: 252 * time.Second}},
		{"first batch after never", staleNever, at(90 * time.Second), at(91 * time.Second),
			liveness{State: RegionLive, Since: at(91 * time.Second)},
			livenessEvent{Kind: eventLive, SilentSince: start, SilentFor: 90 * time.Second, NeverSeen: true}},
		{"seen once, then silent before any step", unknown, at(time.Second), at(40 * time.Second),
			liveness{State: RegionStale, Since: at(40 * time.Second), SilentSince: at(time.Second)},
			livenessEvent{Kind: eventStale, SilentSince: at(time.Second)}},
		{"agent clock ahead is still fresh", live, at(60 * time.Second), at(50 * time.Second), live, livenessEvent{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ev := stepLiveness(tc.cur, tc.lastSeen, start, tc.now, stale)
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
		ev       livenessEvent
		kind     string
		severity string
		summary  string
	}{
		{"stale", livenessEvent{Kind: eventStale, SilentSince: silent}, KindRegionStale, SeverityWarning,
			"agent in us-east silent since 11:03:41"},
		{"never", livenessEvent{Kind: eventStale, SilentSince: t0, NeverSeen: true}, KindRegionStale, SeverityWarning,
			"agent in us-east never heard from since evaluator start at 12:00:00"},
		{"live", livenessEvent{Kind: eventLive, SilentSince: silent, SilentFor: 4*time.Minute + 12*time.Second + 300*time.Millisecond},
			KindRegionLive, SeverityInfo, "agent in us-east reporting again after 4m12s"},
		{"first", livenessEvent{Kind: eventLive, SilentSince: t0, SilentFor: 90 * time.Second, NeverSeen: true},
			KindRegionLive, SeverityInfo, "agent in us-east reporting for the first time, 1m30s after evaluator start"},
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
	for _, k := range []eventKind{eventNone, eventFirstSeen} {
		if n, ok := regionNotification("us-east", livenessEvent{Kind: k}, now); ok {
			t.Errorf("event %d notified: %+v", k, n)
		}
	}
}

// runLoop starts e.Run and returns a function that advances the fake
// clock one second at a time, waiting each time until the loop has ticked
// and parked again.
func runLoop(t *testing.T, f *fixture) (advance func(time.Duration)) {
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
	return func(d time.Duration) {
		for range int(d / tickInterval) {
			f.clock.Advance(tickInterval)
			timers++
			f.clock.WaitTimersCreated(t, timers, 10*time.Second)
		}
	}
}

func (f *fixture) state(region string) RegionState {
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

	if s := f.state("us-east"); s != RegionUnknown {
		t.Fatalf("before any batch: %s, want UNKNOWN", s)
	}
	report("us-east")
	report("eu-west")
	advance(time.Second)
	if f.state("us-east") != RegionLive || f.state("eu-west") != RegionLive || f.state("ap-south") != RegionUnknown {
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
	if f.state("eu-west") != RegionStale || f.state("us-east") != RegionLive || f.state("ap-south") != RegionStale {
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
	if f.state("eu-west") != RegionLive || f.live("eu-west") != 1 {
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
	if s := f.state("us-east"); s != RegionUnknown || len(f.notes.all()) != 0 {
		t.Fatalf("before stale_after: %s, %d notifications", s, len(f.notes.all()))
	}
	advance(time.Second)
	for _, r := range f.ev.Snapshot().Regions {
		if r.State != RegionStale {
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
	var unknown []Notification
	for _, n := range f.notes.all() {
		if n.Kind == KindChecksUnknown {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) != 1 || unknown[0].Details["action"] != "trigger" || !strings.Contains(unknown[0].Summary, "UNKNOWN") {
		t.Fatalf("unknown-check pages = %+v, want one aggregated trigger", unknown)
	}
}

// regionNotes returns the region liveness notifications.
func regionNotes(c *captureNotifier) []Notification {
	var out []Notification
	for _, n := range c.all() {
		if strings.HasPrefix(n.Kind, "region_") {
			out = append(out, n)
		}
	}
	return out
}

type failingNotifier struct{}

func (failingNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	return true, errors.New("pager unreachable")
}

func TestRunLogsNotifierFailure(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Notifier = failingNotifier{} })
	f.ev.tick(context.Background(), t0.Add(time.Minute))
	if logs := f.logs.String(); strings.Count(logs, "notification not delivered") != 3 || !strings.Contains(logs, "pager unreachable") {
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
	var buf syncBuffer
	n := Notification{Kind: KindRegionStale, Key: "outpost:region:us-east", Severity: SeverityWarning, Summary: "agent in us-east silent since 12:03:41",
		Region: "us-east", Time: t0, Details: map[string]string{"last_seen": "2030-01-02T12:03:41Z"}}
	if _, err := NewConsoleNotifier(slogTo(&buf)).Notify(context.Background(), n); err != nil {
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
