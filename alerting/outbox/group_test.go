package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// serviceOf is the test checks' labels.service: the check id up to its
// first '-'.
func serviceOf(check, fact string) string {
	if fact != "labels.service" {
		return ""
	}
	s, _, _ := strings.Cut(check, "-")
	return s
}

// down is check's DOWN trigger, with the evidence of notifytest.PageDown.
func down(check string) notify.Notification {
	n := notifytest.PageDown("outpost:check:" + check + ":down")
	n.Check, n.Component, n.Link = check, check, ""
	n.Summary = check + " DOWN from 2/3 regions: status 503, want 200"
	n.Details = map[string]string{"state": "DOWN", "check": check, "route": notify.RouteCritical}
	return n
}

func resolved(check string) notify.Notification { return notifytest.ResolveOf(down(check)) }

func withGroups(pol GroupPolicy) pipeOption {
	return func(o *Options) {
		o.Groups = map[string]GroupPolicy{"oncall": pol}
		o.Facts = serviceOf
	}
}

func byService(wait, interval time.Duration) *checks.Grouping {
	return &checks.Grouping{By: []string{"labels.service"}, Wait: wait, Interval: interval}
}

func storm(threshold int) *checks.StormGuard {
	return &checks.StormGuard{Threshold: threshold, Window: 2 * time.Minute}
}

// advance moves the pipeline's clock by d once every goroutine has
// parked, then waits for them to park again.
func (h *pipe) advance(d time.Duration) {
	h.t.Helper()
	clocktest.WaitIdle(h.t, 30*time.Second)
	h.clock.Advance(d)
	clocktest.WaitIdle(h.t, 30*time.Second)
}

// perKey counts the fake's events by dedup key and action.
func perKey(evs []notifytest.Event) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, ev := range evs {
		if out[ev.DedupKey] == nil {
			out[ev.DedupKey] = map[string]int{}
		}
		out[ev.DedupKey][ev.EventAction]++
	}
	return out
}

type pdMemberView struct {
	Check   string                     `json:"check"`
	State   string                     `json:"state"`
	Regions map[string]json.RawMessage `json:"regions"`
}

func TestGroupingGivesOnePagePerGroup(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())},
		withGroups(GroupPolicy{Grouping: byService(10*time.Second, time.Minute), Storm: storm(20)}))

	for i := range 300 {
		h.enqueue(down(fmt.Sprintf("web-%03d", i)))
	}
	for i := range 200 {
		h.enqueue(down(fmt.Sprintf("api-%03d", i)))
	}
	h.advance(9 * time.Second)
	if n := fake.RequestCount(); n != 0 {
		t.Fatalf("%d events before the group wait ended", n)
	}
	h.advance(time.Second)
	waitFor(t, "one trigger per group", func() bool { return len(fake.Events()) == 2 })

	var web notifytest.Event
	for _, ev := range fake.Events() {
		if ev.DedupKey == "outpost:group:critical:labels.service=web" {
			web = ev
		}
	}
	if web.Payload == nil {
		t.Fatalf("no event for the web group: %+v", fake.Events())
	}
	if want := "300 checks DOWN from 2/3 regions: web-000, web-001, web-002, web-003, web-004, web-005, web-006, web-007, … (+292)"; web.Payload.Summary != want {
		t.Errorf("summary\n got %q\nwant %q", web.Payload.Summary, want)
	}
	var d struct {
		Firing string         `json:"checks_firing"`
		Checks []pdMemberView `json:"checks"`
	}
	if err := json.Unmarshal(web.Payload.CustomDetails, &d); err != nil {
		t.Fatal(err)
	}
	if d.Firing != "300" || len(d.Checks) != 300 || d.Checks[0].Check != "web-000" || len(d.Checks[0].Regions) != 3 {
		t.Errorf("custom_details: firing %s, %d checks, first %+v", d.Firing, len(d.Checks), d.Checks[0])
	}

	// A check of another service, failing alone during the storm, gets a
	// page of its own that reads like one.
	h.enqueue(down("billing-1"))
	h.advance(10 * time.Second)
	waitFor(t, "the billing page", func() bool { return len(fake.Events()) == 3 })
	if ev := fake.Events()[2]; ev.DedupKey != "outpost:group:critical:labels.service=billing" || ev.Payload.Summary != down("billing-1").Summary {
		t.Errorf("lone check's page: key %q, summary %q", ev.DedupKey, ev.Payload.Summary)
	}

	// Recovery: one resolve per group, once its last check is OK.
	for i := range 300 {
		h.enqueue(resolved(fmt.Sprintf("web-%03d", i)))
	}
	for i := range 199 {
		h.enqueue(resolved(fmt.Sprintf("api-%03d", i)))
	}
	h.enqueue(resolved("billing-1"))
	h.advance(time.Minute)
	waitFor(t, "resolves of web and billing, an update of api", func() bool { return len(fake.Events()) == 6 })
	h.enqueue(resolved("api-199"))
	h.advance(time.Minute)
	waitFor(t, "the api resolve", func() bool { return len(fake.Events()) == 7 })

	counts := perKey(fake.Events())
	for key, want := range map[string]map[string]int{
		"outpost:group:critical:labels.service=web":     {"trigger": 1, "resolve": 1},
		"outpost:group:critical:labels.service=api":     {"trigger": 2, "resolve": 1},
		"outpost:group:critical:labels.service=billing": {"trigger": 1, "resolve": 1},
	} {
		if fmt.Sprint(counts[key]) != fmt.Sprint(want) {
			t.Errorf("%s: events %v, want %v", key, counts[key], want)
		}
	}
	if len(counts) != 3 {
		t.Errorf("events under %d keys, want 3: %v", len(counts), counts)
	}
	if bad := fake.InvalidReasons(); len(bad) > 0 {
		t.Errorf("the fake refused events: %v", bad)
	}
	if got := h.count("oncall", resultGrouped); got != 1002 {
		t.Errorf("grouped = %v, want 1002", got)
	}
}

func TestStormGuardFoldsABurstOfSingleIncidents(t *testing.T) {
	rec := &notifytest.Recorder{}
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": rec}, withGroups(GroupPolicy{Storm: storm(20)}))

	for i := range 100 {
		h.enqueue(down(fmt.Sprintf("web-%03d", i)))
	}
	waitFor(t, "20 pages", func() bool { return rec.Calls() == 20 })
	h.advance(checks.DefaultGroupWait)
	waitFor(t, "the storm's page", func() bool { return rec.Calls() == 21 })
	if rec.Calls() != 21 {
		t.Fatalf("%d notifications, want 21:\n%s", rec.Calls(), notifytest.Summaries(rec.Delivered()))
	}
	st := rec.Delivered()[20]
	if st.Kind != notify.KindStorm || st.Key != "outpost:storm:critical" || len(st.Members) != 80 ||
		!strings.HasPrefix(st.Summary, "storm on route critical") || !strings.Contains(st.Summary, "80 checks DOWN from 2/3 regions: web-020,") {
		t.Errorf("storm notification: kind %q key %q, %d members, summary %q", st.Kind, st.Key, len(st.Members), st.Summary)
	}
	if got := h.count("oncall", resultFolded); got != 80 {
		t.Errorf("folded = %v, want 80", got)
	}

	for i := range 100 {
		h.enqueue(resolved(fmt.Sprintf("web-%03d", i)))
	}
	waitFor(t, "the single resolves", func() bool { return rec.Calls() == 41 })
	h.advance(time.Minute)
	waitFor(t, "the storm's resolve", func() bool { return rec.Calls() == 42 })
	if last := rec.Delivered()[41]; last.Key != "outpost:storm:critical" || last.Action != notify.ActionResolve {
		t.Errorf("last notification %s %s, want the storm's resolve", last.Action, last.Key)
	}

	// Once the burst is over, an incident pages on its own again.
	h.advance(2 * time.Minute)
	h.enqueue(down("api-1"))
	waitFor(t, "api-1's own page", func() bool { return rec.Calls() == 43 })
	if n := rec.Delivered()[42]; n.Key != down("api-1").Key {
		t.Errorf("after the storm: key %q", n.Key)
	}
}

func TestGroupsSurvivePagerDutyThrottling(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	fake.SetAlways(http.StatusTooManyRequests)
	fake.SetRetryAfter("60")
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())},
		withGroups(GroupPolicy{Grouping: byService(10*time.Second, time.Minute), Storm: storm(20)}))

	services := []string{"a", "b", "c", "d", "e"}
	for _, s := range services {
		for i := range 10 {
			h.enqueue(down(fmt.Sprintf("%s-%d", s, i)))
		}
	}
	h.advance(10 * time.Second)
	// A minute of 429s, the storm going on: some checks recover meanwhile.
	for range 4 {
		h.advance(15 * time.Second)
	}
	for i := range 10 {
		h.enqueue(resolved(fmt.Sprintf("a-%d", i)))
	}
	// Two more minutes of 429s: group a's next flush (its interval)
	// resolves it, its page still undelivered.
	h.advance(time.Minute)
	h.advance(time.Minute)
	if n := len(fake.Events()); n != 0 {
		t.Fatalf("%d events accepted while throttled", n)
	}
	fake.SetAlways(0)
	key := func(s string) string { return "outpost:group:critical:labels.service=" + s }
	paged := func() bool {
		c := perKey(fake.Events())
		for _, s := range services[1:] {
			if c[key(s)]["trigger"] == 0 {
				return false
			}
		}
		return true
	}
	for i := 0; !paged() && i < 60; i++ {
		h.advance(30 * time.Second)
	}
	h.advance(time.Minute)
	counts := perKey(fake.Events())
	for _, s := range services[1:] {
		if counts[key(s)]["trigger"] == 0 || counts[key(s)]["resolve"] != 0 {
			t.Errorf("%s: %v, want its trigger(s) only", key(s), counts[key(s)])
		}
	}
	// Group a recovered before PagerDuty took its page: neither its page
	// nor its resolve is sent late.
	if c := counts[key("a")]; len(c) != 0 {
		t.Errorf("group a, resolved while throttled: events %v, want none", c)
	}
	if got := h.count("oncall", resultSuperseded); got < 2 {
		t.Errorf("superseded = %v, want group a's trigger and resolve", got)
	}
	if got := h.count("oncall", resultRetried); got == 0 {
		t.Error("no retried attempt counted")
	}
}

func TestBudgetSendsNewIncidentsFirst(t *testing.T) {
	rec := &notifytest.Recorder{}
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": rec}, func(o *Options) {
		o.Budgets = map[string]Budget{"oncall": {Key: "k", PerMinute: 4}} // a burst of one, then one per 15s
	})
	a := down("web-a")
	h.enqueue(a)
	waitFor(t, "a's page", func() bool { return rec.Calls() == 1 })
	update := a
	update.Summary = "web-a DOWN from 3/3 regions"
	h.enqueue(update)
	update2 := a
	update2.Summary = "web-a DOWN from 3/3 regions: connection refused"
	h.enqueue(update2)
	h.enqueue(down("web-b"))
	h.advance(0)
	if rec.Calls() != 1 {
		t.Fatalf("sent beyond the budget: %s", notifytest.Summaries(rec.Delivered()))
	}
	h.advance(15 * time.Second)
	waitFor(t, "b's page", func() bool { return rec.Calls() == 2 })
	h.advance(15 * time.Second)
	waitFor(t, "a's update", func() bool { return rec.Calls() == 3 })
	got := rec.Delivered()
	if got[1].Key != down("web-b").Key || got[2].Summary != update2.Summary {
		t.Errorf("order: %s", notifytest.Summaries(got))
	}
	if h.count("oncall", resultSuperseded) != 1 || h.count("oncall", resultHeld) == 0 {
		t.Errorf("superseded %v, held %v", h.count("oncall", resultSuperseded), h.count("oncall", resultHeld))
	}
}

func TestGroupsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	rec := &notifytest.Recorder{}
	pol := withGroups(GroupPolicy{Grouping: byService(10*time.Second, time.Minute)})
	h := startPipe(t, dir, map[string]notify.Notifier{"oncall": rec}, pol)
	for i := range 5 {
		h.enqueue(down(fmt.Sprintf("web-%d", i)))
	}
	h.stop()

	h2 := startPipe(t, dir, map[string]notify.Notifier{"oncall": rec}, pol)
	h2.advance(10 * time.Second)
	waitFor(t, "the group's page", func() bool { return rec.Calls() == 1 })
	if n := rec.Delivered()[0]; len(n.Members) != 5 || n.Key != "outpost:group:critical:labels.service=web" {
		t.Errorf("after a restart: key %q, %d members", n.Key, len(n.Members))
	}
}

func TestGroupResolvedWithinItsWaitSendsNothing(t *testing.T) {
	rec := &notifytest.Recorder{}
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": rec},
		withGroups(GroupPolicy{Grouping: byService(10*time.Second, time.Minute)}))
	h.enqueue(down("web-1"))
	h.enqueue(resolved("web-1"))
	h.advance(10 * time.Second)
	h.advance(time.Minute)
	if rec.Calls() != 0 {
		t.Errorf("sent %s", notifytest.Summaries(rec.Delivered()))
	}
	if g, m := h.p.box.groupsPending("oncall"); g != 0 || m != 0 {
		t.Errorf("%d groups, %d members left", g, m)
	}
}

func TestEnqueueAllKeepsOrderWithinOneWrite(t *testing.T) {
	rec := &notifytest.Recorder{}
	h := newPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": rec},
		withGroups(GroupPolicy{Grouping: byService(10*time.Second, time.Minute), Storm: storm(20)}))
	a := down("solo-a")
	a.Kind = "region_stale" // not a check incident: never grouped
	a.Check = ""
	a2 := a
	a2.Summary = "solo-a DOWN from 3/3 regions"
	batch := []notify.Notification{a, a2, {Key: ""}}
	for i := range 50 {
		batch = append(batch, down(fmt.Sprintf("web-%d", i)))
	}
	err := h.p.EnqueueAll(batch)
	if !errors.Is(err, notify.ErrInvalidNotification) {
		t.Errorf("EnqueueAll = %v, want the invalid notification's error", err)
	}
	h.run()
	waitFor(t, "the trigger and its update", func() bool { return rec.Calls() == 2 })
	if got := rec.Delivered(); got[0].Summary != a.Summary || got[1].Summary != a2.Summary {
		t.Errorf("order: %s", notifytest.Summaries(got))
	}
	h.advance(10 * time.Second)
	waitFor(t, "the group", func() bool { return rec.Calls() == 3 })
	if n := rec.Delivered()[2]; len(n.Members) != 50 {
		t.Errorf("group of %d members, want 50", len(n.Members))
	}
}
