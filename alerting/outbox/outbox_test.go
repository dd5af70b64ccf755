package outbox

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

func TestDedup(t *testing.T) {
	trig := notify.Notification{Action: notify.ActionTrigger, Key: "k", Summary: "down"}
	res := notify.Notification{Action: notify.ActionResolve, Key: "k", Summary: "up"}
	note := notify.Notification{Key: "k", Summary: "fyi"}
	open := accepted(trig, t0, 1)
	const repeat = time.Hour
	cases := []struct {
		name   string
		state  dedupState
		n      notify.Notification
		now    time.Time
		send   bool
		reason dedupReason
	}{
		{"first trigger", dedupState{}, trig, t0, true, reasonNew},
		{"trigger while open", open, trig, t0.Add(time.Minute), false, reasonRepeat},
		{"trigger while open, summary changed", open, notify.Notification{Action: notify.ActionTrigger, Key: "k", Summary: "down in 3"}, t0.Add(time.Minute), true, reasonChanged},
		{"trigger while open, repeat interval passed", open, trig, t0.Add(repeat), true, reasonRepeatDue},
		{"trigger after resolve", accepted(res, t0, 2), trig, t0.Add(time.Minute), true, reasonNew},
		{"resolve while open", open, res, t0.Add(time.Minute), true, reasonResolves},
		{"resolve never triggered", dedupState{}, res, t0, false, reasonNotOpen},
		{"resolve twice", accepted(res, t0, 2), res, t0.Add(time.Minute), false, reasonNotOpen},
		{"resolve after a notice", accepted(note, t0, 3), res, t0, false, reasonNotOpen},
		{"same notice", accepted(note, t0, 3), note, t0.Add(time.Minute), false, reasonRepeat},
		{"same notice later", accepted(note, t0, 3), note, t0.Add(2 * repeat), true, reasonRepeatDue},
		{"other notice", accepted(note, t0, 3), notify.Notification{Key: "k", Summary: "other"}, t0, true, reasonChanged},
		{"notice while open", open, note, t0, true, reasonNew},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			send, reason := dedup(tc.state, tc.n, tc.now, repeat)
			if send != tc.send || reason != tc.reason {
				t.Errorf("dedup = (%v, %s), want (%v, %s)", send, reason, tc.send, tc.reason)
			}
		})
	}
}

func TestPipelineRestartDeliversPendingOnce(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	fake.SetAlways(http.StatusServiceUnavailable)
	dir := t.TempDir()
	a, b := notifytest.PageDown("incident-a"), notifytest.PageDown("incident-b")
	b.Summary = "api DOWN"
	// An update of a (a resolve would drop a's trigger, never delivered:
	// TestResolvedBeforeDeliveredIsNotSent).
	a2 := a
	a2.Summary = "web-home DOWN in 3 of 3 regions"

	h1 := startPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h1.enqueue(a, "oncall")
	h1.enqueue(b, "oncall")
	h1.enqueue(a2, "oncall")
	h1.clock.WaitTimersCreated(t, 1, 10*time.Second) // the first attempt failed
	h1.stop()
	if got := h1.pendingGauge("oncall"); got != 3 {
		t.Fatalf("pending before restart = %v, want 3", got)
	}

	fake.SetAlways(0)
	h2 := newPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h2.pendingGauge("oncall"); got != 3 {
		t.Fatalf("pending after restart = %v, want 3", got)
	}
	h2.run()
	waitFor(t, "the pending notifications", func() bool { return len(fake.Events()) == 3 })
	evs := fake.Events()
	var order []string
	for _, e := range evs {
		order = append(order, e.EventAction+" "+e.DedupKey)
	}
	if got := strings.Join(order, ", "); got != "trigger incident-a, trigger incident-b, trigger incident-a" {
		t.Errorf("delivered %s", got)
	}
	h2.stop()

	// A third start finds nothing to send.
	h3 := startPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h3.p.Pending("oncall"); got != 0 {
		t.Errorf("pending on the third start = %d", got)
	}
	h3.stop()
	if got := len(fake.Events()); got != 3 {
		t.Errorf("%d events after the third start, want 3", got)
	}
}

func TestPipelineRestartNeitherRepagesNorForgetsResolve(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	dir := t.TempDir()
	down := notifytest.PageDown("incident-a")

	h1 := startPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h1.enqueue(down, "oncall")
	waitFor(t, "the trigger", func() bool { return h1.count("oncall", resultDelivered) == 1 })
	h1.stop()

	h2 := startPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h2.p.OpenIncidents("oncall"); len(got) != 1 || got[0] != "incident-a" {
		t.Errorf("open incidents after restart: %v", got)
	}
	again := down
	again.Time = down.Time.Add(time.Minute) // a replica, or a restarted evaluator, says it again
	h2.enqueue(again, "oncall")
	if got := h2.count("oncall", resultDeduplicated); got != 1 {
		t.Errorf("deduplicated = %v, want 1", got)
	}
	h2.enqueue(notifytest.ResolveOf(down), "oncall")
	waitFor(t, "the resolve", func() bool { return len(fake.Events()) == 2 })
	h2.enqueue(notifytest.ResolveOf(down), "oncall")                                   // resolved already
	h2.enqueue(notifytest.ResolveOf(notifytest.PageDown("never-triggered")), "oncall") // nothing to resolve
	h2.stop()
	if got := h2.count("oncall", resultDeduplicated); got != 3 {
		t.Errorf("deduplicated = %v, want 3", got)
	}
	evs := fake.Events()
	if len(evs) != 2 || evs[0].EventAction != "trigger" || evs[1].EventAction != "resolve" || evs[1].DedupKey != "incident-a" {
		t.Errorf("events %+v", evs)
	}
}

func TestPipelineRoutes(t *testing.T) {
	pd, chat, log := &notifytest.Recorder{}, &notifytest.Recorder{}, &notifytest.Recorder{}
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": pd, "chat": chat, "log": log}, func(o *Options) {
		o.Routes = map[string][]string{"oncall": {notify.RouteCritical}, "chat": {notify.RouteCritical, notify.RouteWarning}}
		o.CheckNotifiers = map[string][]string{"api": {"chat"}}
	})
	h.enqueue(notifytest.PageDown("down")) // critical: everyone
	warn := notifytest.PageDown("degraded")
	warn.Route, warn.Severity = notify.RouteWarning, notify.SeverityWarning
	h.enqueue(warn) // warning: chat and log
	h.enqueue(notifytest.PageDown("only-chat"), "chat")
	// A check with its own notifiers: only those, still by route.
	own := notifytest.PageDown("own")
	own.Check = "api"
	h.enqueue(own)
	// The pipeline is a notify.Notifier for liveness notices: stale triggers on
	// the meta route, live resolves it.
	if _, err := h.p.Notify(context.Background(), notify.Notification{Kind: notify.KindRegionStale, Key: "outpost:region:us-east", Severity: notify.SeverityWarning, Summary: "agent in us-east silent"}); err != nil {
		t.Fatal(err)
	}
	// Delivered before it resolves (a resolve drops a trigger not yet
	// delivered: TestResolvedBeforeDeliveredIsNotSent).
	waitFor(t, "the stale region's trigger", func() bool { return len(log.Delivered()) == 3 })
	if _, err := h.p.Notify(context.Background(), notify.Notification{Kind: notify.KindRegionLive, Key: "outpost:region:us-east", Severity: notify.SeverityInfo, Summary: "agent in us-east reporting again"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deliveries", func() bool {
		return len(log.Delivered()) == 4 && len(chat.Delivered()) == 4 && len(pd.Delivered()) == 1
	})
	if got := notifytest.Summaries(pd.Delivered()); got != "trigger down "+notifytest.PageDown("").Summary {
		t.Errorf("oncall got:\n%s", got)
	}
	ls := log.Delivered()
	if ls[2].Action != notify.ActionTrigger || ls[2].Route != notify.RouteMeta || ls[3].Action != notify.ActionResolve || ls[3].Route != notify.RouteMeta {
		t.Errorf("liveness notices: %+v / %+v", ls[2], ls[3])
	}
	if err := h.p.Enqueue(notifytest.PageDown("x"), []string{"nobody"}); !errors.Is(err, ErrUnknownNotifier) {
		t.Errorf("Enqueue to an unknown notifier = %v", err)
	}
	if err := h.p.Enqueue(notify.Notification{Summary: "no key"}, nil); !errors.Is(err, notify.ErrInvalidNotification) {
		t.Errorf("Enqueue without key = %v", err)
	}
}

func TestPipelineOutboxBounded(t *testing.T) {
	rec := &notifytest.Recorder{}
	h := newPipe(t, t.TempDir(), map[string]notify.Notifier{"n": rec}, func(o *Options) { o.MaxPending = 3 })
	note := func(key, route string) notify.Notification {
		n := notifytest.PageDown(key)
		n.Route, n.Summary = route, key
		return n
	}
	for _, n := range []notify.Notification{
		note("w1", notify.RouteWarning), note("c1", notify.RouteCritical), note("w2", notify.RouteWarning),
		note("w3", notify.RouteWarning),  // drops w1
		note("c2", notify.RouteCritical), // drops w2
		note("c3", notify.RouteCritical), // drops w3
		note("c4", notify.RouteCritical), // drops c1, the oldest, all being critical
	} {
		h.enqueue(n)
	}
	if got := h.count("n", resultDropped); got != 4 {
		t.Errorf("dropped = %v, want 4", got)
	}
	if got := h.pendingGauge("n"); got != 3 {
		t.Errorf("pending = %v, want 3", got)
	}
	if got := strings.Count(h.logs.String(), "outbox full"); got != 1 {
		t.Errorf("%d overflow log lines, want 1:\n%s", got, h.logs.String())
	}
	h.run()
	waitFor(t, "delivery", func() bool { return len(rec.Delivered()) == 3 })
	var keys []string
	for _, n := range rec.Delivered() {
		keys = append(keys, n.Key)
	}
	if got := strings.Join(keys, ","); got != "c2,c3,c4" {
		t.Errorf("delivered %s, want c2,c3,c4", got)
	}
	// A dropped trigger is forgotten: its resolve is not sent, and the
	// trigger can be raised again.
	h.enqueue(notifytest.ResolveOf(note("w1", notify.RouteWarning)))
	if got := h.count("n", resultDeduplicated); got != 1 {
		t.Errorf("deduplicated = %v, want 1", got)
	}
}

func TestPipelineRunHonoursCancelDuringBackoff(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := &notifytest.Recorder{}
	rec.FailNext(1000, true)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"n": rec})
	h.enqueue(notifytest.PageDown("k"))
	h.clock.WaitTimersCreated(t, 1, 10*time.Second)
	start := time.Now()
	h.stop() // without advancing the clock
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping took %v", took)
	}
	if got := rec.Calls(); got != 1 {
		t.Errorf("%d attempts, want 1", got)
	}
}

func TestPipelineBackoff(t *testing.T) {
	p := &Outbox{backoffMin: time.Second, backoffMax: 5 * time.Minute}
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 100: 5 * time.Minute} {
		var most time.Duration
		for range 200 {
			d := p.backoff(attempt, nil)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", attempt, d, ceiling)
			}
			most = max(most, d)
		}
		if most < ceiling/2 {
			t.Errorf("backoff(%d) never went above %v: no jitter up to %v?", attempt, most, ceiling)
		}
	}
	ra := &notify.DeliveryError{StatusCode: 429, RetryAfter: 40 * time.Second}
	if d := p.backoff(1, ra); d != 40*time.Second {
		t.Errorf("backoff with Retry-After 40s = %v", d)
	}
	ra.RetryAfter = time.Hour
	if d := p.backoff(1, ra); d != 5*time.Minute {
		t.Errorf("backoff with Retry-After 1h = %v, want the 5m cap", d)
	}
}

func TestPipelineDropsOrphanedEntries(t *testing.T) {
	dir := t.TempDir()
	h1 := newPipe(t, dir, map[string]notify.Notifier{"old": &notifytest.Recorder{}, "kept": &notifytest.Recorder{}})
	h1.enqueue(notifytest.PageDown("k"))
	h1.stop()
	rec := &notifytest.Recorder{}
	h2 := startPipe(t, dir, map[string]notify.Notifier{"kept": rec})
	waitFor(t, "delivery", func() bool { return len(rec.Delivered()) == 1 })
	if logs := h2.logs.String(); !strings.Contains(logs, "no longer configured") || !strings.Contains(logs, "notifier=old") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestPipelineOutboxLocked(t *testing.T) {
	dir := t.TempDir()
	newPipe(t, dir, map[string]notify.Notifier{"n": &notifytest.Recorder{}})
	_, err := Open(Options{Notifiers: map[string]notify.Notifier{"n": &notifytest.Recorder{}}, Dir: dir, Clock: clocktest.New(t0)})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second pipeline on one dir: %v", err)
	}
}
