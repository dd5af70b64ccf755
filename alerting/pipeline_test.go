package alerting

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

func TestDedup(t *testing.T) {
	trig := Notification{Action: ActionTrigger, Key: "k", Summary: "down"}
	res := Notification{Action: ActionResolve, Key: "k", Summary: "up"}
	note := Notification{Key: "k", Summary: "fyi"}
	open := accepted(trig, t0, 1)
	const repeat = time.Hour
	cases := []struct {
		name   string
		state  dedupState
		n      Notification
		now    time.Time
		send   bool
		reason dedupReason
	}{
		{"first trigger", dedupState{}, trig, t0, true, reasonNew},
		{"trigger while open", open, trig, t0.Add(time.Minute), false, reasonRepeat},
		{"trigger while open, summary changed", open, Notification{Action: ActionTrigger, Key: "k", Summary: "down in 3"}, t0.Add(time.Minute), true, reasonChanged},
		{"trigger while open, repeat interval passed", open, trig, t0.Add(repeat), true, reasonRepeatDue},
		{"trigger after resolve", accepted(res, t0, 2), trig, t0.Add(time.Minute), true, reasonNew},
		{"resolve while open", open, res, t0.Add(time.Minute), true, reasonResolves},
		{"resolve never triggered", dedupState{}, res, t0, false, reasonNotOpen},
		{"resolve twice", accepted(res, t0, 2), res, t0.Add(time.Minute), false, reasonNotOpen},
		{"resolve after a notice", accepted(note, t0, 3), res, t0, false, reasonNotOpen},
		{"same notice", accepted(note, t0, 3), note, t0.Add(time.Minute), false, reasonRepeat},
		{"same notice later", accepted(note, t0, 3), note, t0.Add(2 * repeat), true, reasonRepeatDue},
		{"other notice", accepted(note, t0, 3), Notification{Key: "k", Summary: "other"}, t0, true, reasonChanged},
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
	fake := newFakePagerDuty(t)
	fake.setAlways(http.StatusServiceUnavailable)
	dir := t.TempDir()
	a, b := pageDown("incident-a"), pageDown("incident-b")
	b.Summary = "api DOWN"

	h1 := startPipe(t, dir, map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h1.enqueue(a, "oncall")
	h1.enqueue(b, "oncall")
	h1.enqueue(resolveOf(a), "oncall")
	h1.clock.WaitTimersCreated(t, 1, 10*time.Second) // the first attempt failed
	h1.stop()
	if got := h1.pendingGauge("oncall"); got != 3 {
		t.Fatalf("pending before restart = %v, want 3", got)
	}

	fake.setAlways(0)
	h2 := newPipe(t, dir, map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h2.pendingGauge("oncall"); got != 3 {
		t.Fatalf("pending after restart = %v, want 3", got)
	}
	h2.run()
	waitFor(t, "the pending notifications", func() bool { return len(fake.events()) == 3 })
	evs := fake.events()
	var order []string
	for _, e := range evs {
		order = append(order, e.EventAction+" "+e.DedupKey)
	}
	if got := strings.Join(order, ", "); got != "trigger incident-a, trigger incident-b, resolve incident-a" {
		t.Errorf("delivered %s", got)
	}
	h2.stop()

	// A third start finds nothing to send.
	h3 := startPipe(t, dir, map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h3.p.Pending("oncall"); got != 0 {
		t.Errorf("pending on the third start = %d", got)
	}
	h3.stop()
	if got := len(fake.events()); got != 3 {
		t.Errorf("%d events after the third start, want 3", got)
	}
}

func TestPipelineRestartNeitherRepagesNorForgetsResolve(t *testing.T) {
	fake := newFakePagerDuty(t)
	dir := t.TempDir()
	down := pageDown("incident-a")

	h1 := startPipe(t, dir, map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h1.enqueue(down, "oncall")
	waitFor(t, "the trigger", func() bool { return h1.count("oncall", resultDelivered) == 1 })
	h1.stop()

	h2 := startPipe(t, dir, map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	if got := h2.p.OpenIncidents("oncall"); len(got) != 1 || got[0] != "incident-a" {
		t.Errorf("open incidents after restart: %v", got)
	}
	again := down
	again.Time = down.Time.Add(time.Minute) // a replica, or a restarted evaluator, says it again
	h2.enqueue(again, "oncall")
	if got := h2.count("oncall", resultDeduplicated); got != 1 {
		t.Errorf("deduplicated = %v, want 1", got)
	}
	h2.enqueue(resolveOf(down), "oncall")
	waitFor(t, "the resolve", func() bool { return len(fake.events()) == 2 })
	h2.enqueue(resolveOf(down), "oncall")                        // resolved already
	h2.enqueue(resolveOf(pageDown("never-triggered")), "oncall") // nothing to resolve
	h2.stop()
	if got := h2.count("oncall", resultDeduplicated); got != 3 {
		t.Errorf("deduplicated = %v, want 3", got)
	}
	evs := fake.events()
	if len(evs) != 2 || evs[0].EventAction != "trigger" || evs[1].EventAction != "resolve" || evs[1].DedupKey != "incident-a" {
		t.Errorf("events %+v", evs)
	}
}

func TestPipelineRoutes(t *testing.T) {
	pd, chat, log := &recordNotifier{}, &recordNotifier{}, &recordNotifier{}
	h := startPipe(t, t.TempDir(), map[string]Notifier{"oncall": pd, "chat": chat, "log": log}, func(o *PipelineOptions) {
		o.Routes = map[string][]string{"oncall": {RouteCritical}, "chat": {RouteCritical, RouteWarning}}
		o.CheckNotifiers = map[string][]string{"api": {"chat"}}
	})
	h.enqueue(pageDown("down")) // critical: everyone
	warn := pageDown("degraded")
	warn.Route, warn.Severity = RouteWarning, SeverityWarning
	h.enqueue(warn) // warning: chat and log
	h.enqueue(pageDown("only-chat"), "chat")
	// A check with its own notifiers: only those, still by route.
	own := pageDown("own")
	own.Check = "api"
	h.enqueue(own)
	// The pipeline is a Notifier for liveness notices: stale triggers on
	// the meta route, live resolves it.
	if _, err := h.p.Notify(context.Background(), Notification{Kind: KindRegionStale, Key: "outpost:region:us-east", Severity: SeverityWarning, Summary: "agent in us-east silent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.p.Notify(context.Background(), Notification{Kind: KindRegionLive, Key: "outpost:region:us-east", Severity: SeverityInfo, Summary: "agent in us-east reporting again"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deliveries", func() bool {
		return len(log.delivered()) == 4 && len(chat.delivered()) == 4 && len(pd.delivered()) == 1
	})
	if got := summaries(pd.delivered()); got != "trigger down "+pageDown("").Summary {
		t.Errorf("oncall got:\n%s", got)
	}
	ls := log.delivered()
	if ls[2].Action != ActionTrigger || ls[2].Route != RouteMeta || ls[3].Action != ActionResolve || ls[3].Route != RouteMeta {
		t.Errorf("liveness notices: %+v / %+v", ls[2], ls[3])
	}
	if err := h.p.Enqueue(pageDown("x"), []string{"nobody"}); !errors.Is(err, ErrUnknownNotifier) {
		t.Errorf("Enqueue to an unknown notifier = %v", err)
	}
	if err := h.p.Enqueue(Notification{Summary: "no key"}, nil); !errors.Is(err, ErrInvalidNotification) {
		t.Errorf("Enqueue without key = %v", err)
	}
}

func TestPipelineOutboxBounded(t *testing.T) {
	rec := &recordNotifier{}
	h := newPipe(t, t.TempDir(), map[string]Notifier{"n": rec}, func(o *PipelineOptions) { o.MaxPending = 3 })
	note := func(key, route string) Notification {
		n := pageDown(key)
		n.Route, n.Summary = route, key
		return n
	}
	for _, n := range []Notification{
		note("w1", RouteWarning), note("c1", RouteCritical), note("w2", RouteWarning),
		note("w3", RouteWarning),  // drops w1
		note("c2", RouteCritical), // drops w2
		note("c3", RouteCritical), // drops w3
		note("c4", RouteCritical), // drops c1, the oldest, all being critical
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
	waitFor(t, "delivery", func() bool { return len(rec.delivered()) == 3 })
	var keys []string
	for _, n := range rec.delivered() {
		keys = append(keys, n.Key)
	}
	if got := strings.Join(keys, ","); got != "c2,c3,c4" {
		t.Errorf("delivered %s, want c2,c3,c4", got)
	}
	// A dropped trigger is forgotten: its resolve is not sent, and the
	// trigger can be raised again.
	h.enqueue(resolveOf(note("w1", RouteWarning)))
	if got := h.count("n", resultDeduplicated); got != 1 {
		t.Errorf("deduplicated = %v, want 1", got)
	}
}

func TestPipelineRunHonoursCancelDuringBackoff(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := &recordNotifier{}
	rec.failNext(1000, true)
	h := startPipe(t, t.TempDir(), map[string]Notifier{"n": rec})
	h.enqueue(pageDown("k"))
	h.clock.WaitTimersCreated(t, 1, 10*time.Second)
	start := time.Now()
	h.stop() // without advancing the clock
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping took %v", took)
	}
	if got := rec.callCount(); got != 1 {
		t.Errorf("%d attempts, want 1", got)
	}
}

func TestPipelineBackoff(t *testing.T) {
	p := &Pipeline{backoffMin: time.Second, backoffMax: 5 * time.Minute}
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
	ra := &DeliveryError{StatusCode: 429, RetryAfter: 40 * time.Second}
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
	h1 := newPipe(t, dir, map[string]Notifier{"old": &recordNotifier{}, "kept": &recordNotifier{}})
	h1.enqueue(pageDown("k"))
	h1.stop()
	rec := &recordNotifier{}
	h2 := startPipe(t, dir, map[string]Notifier{"kept": rec})
	waitFor(t, "delivery", func() bool { return len(rec.delivered()) == 1 })
	if logs := h2.logs.String(); !strings.Contains(logs, "no longer configured") || !strings.Contains(logs, "notifier=old") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestPipelineOutboxLocked(t *testing.T) {
	dir := t.TempDir()
	newPipe(t, dir, map[string]Notifier{"n": &recordNotifier{}})
	_, err := NewPipeline(PipelineOptions{Notifiers: map[string]Notifier{"n": &recordNotifier{}}, Dir: dir, Clock: clocktest.New(t0)})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second pipeline on one dir: %v", err)
	}
}

func TestNotificationBounded(t *testing.T) {
	n := pageDown("k")
	n.Summary = strings.Repeat("s", 10000)
	n.Evidence[0].DNSAnswers = map[string][]string{}
	for i := range 100 {
		n.Evidence[0].DNSAnswers[strings.Repeat("r", i+1)] = make([]string, 1000)
	}
	n.Evidence[0].Reason = strings.Repeat("r", 5000)
	got, err := normalize(n, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Summary) > maxNoticeSummaryBytes || len(got.Evidence[0].Reason) > maxFieldBytes || len(got.Evidence[0].DNSAnswers) > maxMapKeys {
		t.Errorf("not bounded: summary %d, reason %d, answers %d", len(got.Summary), len(got.Evidence[0].Reason), len(got.Evidence[0].DNSAnswers))
	}
	for _, v := range got.Evidence[0].DNSAnswers {
		if len(v) > maxListItems {
			t.Errorf("%d answers kept", len(v))
		}
	}
	if len(n.Evidence[0].DNSAnswers) != 100 {
		t.Error("normalize changed its argument")
	}
}

func TestBuildNotifiers(t *testing.T) {
	t.Run("none configured", func(t *testing.T) {
		cfg, err := checks.LoadBytes("t.yaml", []byte("version: 1\nchecks:\n  - id: web\n    http: {url: \"http://127.0.0.1:1/\"}\n"), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		ns, err := BuildNotifiers(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ns[DefaultNotifierName].(*ConsoleNotifier); !ok || len(ns) != 1 {
			t.Errorf("notifiers %v", ns)
		}
		if r := NotifierRoutes(cfg)[DefaultNotifierName]; len(r) != 3 {
			t.Errorf("routes %v", r)
		}
	})
	t.Run("every type", func(t *testing.T) {
		cfg := leakConfig(t, map[string]string{"PD_URL": "http://127.0.0.1:1", "SLACK_URL": "http://127.0.0.1:1" + slackPath, "HOOK_URL": "http://127.0.0.1:1/hook"})
		ns, err := BuildNotifiers(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, n := range ns {
				if c, ok := n.(interface{ CloseIdleConnections() }); ok {
					c.CloseIdleConnections()
				}
			}
		})
		if _, ok := ns["oncall"].(*PagerDutyNotifier); !ok {
			t.Errorf("oncall is %T", ns["oncall"])
		}
		if _, ok := ns["chat"].(*SlackNotifier); !ok {
			t.Errorf("chat is %T", ns["chat"])
		}
		if _, ok := ns["hook"].(*WebhookNotifier); !ok {
			t.Errorf("hook is %T", ns["hook"])
		}
		if _, ok := ns["log"].(*ConsoleNotifier); !ok {
			t.Errorf("log is %T", ns["log"])
		}
		if r := NotifierRoutes(cfg)["oncall"]; strings.Join(r, ",") != "critical,meta" {
			t.Errorf("oncall routes %v", r)
		}
	})
}

func TestEvidenceFromResult(t *testing.T) {
	r := wire.Result{Region: "us-east", Reason: "A www = 198.51.100.7, want 203.0.113.10", Duration: 0.25,
		Phases: wire.Phases{Resolve: 0.01, Connect: 0.02},
		Observed: wire.Observed{ResolvedIPs: []string{"198.51.100.7"}, ConnectedAddr: "198.51.100.7:443", StatusCode: 200,
			DNS: []wire.DNSObservation{
				{Resolver: "system", Server: "127.0.0.53:53", Answers: []string{"198.51.100.7"}},
				{Resolver: "authoritative", Server: "192.0.2.1:53", Rcode: "SERVFAIL"},
			}}}
	ev := EvidenceFromResult("FAILING", r)
	want := RegionEvidence{Region: "us-east", State: "FAILING", Reason: r.Reason, ResolvedIPs: []string{"198.51.100.7"},
		ConnectedAddr: "198.51.100.7:443", StatusCode: 200,
		DNSAnswers: map[string][]string{"system 127.0.0.53:53": {"198.51.100.7"}, "authoritative 192.0.2.1:53": {"(SERVFAIL)"}},
		Phases:     map[string]float64{"total": 0.25, "resolve": 0.01, "connect": 0.02}}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("evidence\n%+v\nwant\n%+v", ev, want)
	}
}

func TestNormalizeTakesFieldsFromDetails(t *testing.T) {
	n, err := normalize(Notification{Kind: "check_down", Key: "k", Summary: "s", Severity: SeverityCritical,
		Details: map[string]string{"action": "resolve", "route": "warning", "check": "web"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n.Action != ActionResolve || n.Route != RouteWarning || n.Check != "web" || !n.Time.Equal(t0) {
		t.Errorf("normalized %+v", n)
	}
	n, err = normalize(Notification{Action: ActionTrigger, Key: "k", Summary: "s", Details: map[string]string{"action": "resolve"}}, t0)
	if err != nil || n.Action != ActionTrigger {
		t.Errorf("the field must win over Details: %+v, %v", n, err)
	}
	if _, err := normalize(Notification{Key: "k", Summary: "s", Details: map[string]string{"action": "explode"}}, t0); !errors.Is(err, ErrInvalidNotification) {
		t.Errorf("bad action from Details: %v", err)
	}
}

// TestEvaluatorThroughPipeline: the pipeline is the evaluator's Notifier;
// stale regions become meta triggers in the outbox and reach notifiers.
func TestEvaluatorThroughPipeline(t *testing.T) {
	rec := &recordNotifier{}
	h := startPipe(t, t.TempDir(), map[string]Notifier{"log": rec})
	ev, err := New(loadTestConfig(t), Options{Clock: h.clock, Notifier: h.p})
	if err != nil {
		t.Fatal(err)
	}
	ev.tick(context.Background(), t0.Add(time.Minute))
	waitFor(t, "three stale regions", func() bool { return len(rec.delivered()) == 3 })
	for _, n := range rec.delivered() {
		if n.Kind != KindRegionStale || n.Action != ActionTrigger || n.Route != RouteMeta || !strings.HasPrefix(n.Key, "outpost:region:") {
			t.Errorf("notification %+v", n)
		}
	}
}
