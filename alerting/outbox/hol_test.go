package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// eventsOf lists the fake's events as "action key", in order.
func eventsOf(fake *notifytest.FakePagerDuty) string {
	var out []string
	for _, ev := range fake.Events() {
		out = append(out, ev.EventAction+" "+ev.DedupKey)
	}
	return strings.Join(out, ", ")
}

// TestOneIncidentFailingDoesNotHoldUpAnother: PagerDuty answers 500 to one
// incident's events only. That incident's resolve keeps failing, in its own
// backoff; another incident's trigger, queued behind it, is delivered at
// once (the fake clock does not move); the failing incident's later events
// wait behind its resolve, in order, and go once PagerDuty takes them.
func TestOneIncidentFailingDoesNotHoldUpAnother(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	a, b := notifytest.PageDown("incident-a"), notifytest.PageDown("incident-b")
	h.enqueue(a, "oncall")
	waitFor(t, "a's trigger", func() bool { return len(fake.Events()) == 1 })

	fake.FailKey(a.Key, http.StatusInternalServerError)
	h.enqueue(notifytest.ResolveOf(a), "oncall")
	// Let a's resolve fail a few times, its backoff growing.
	for range 4 {
		h.advance(0)
		d, ok := h.clock.Next()
		if !ok {
			t.Fatal("no backoff timer for a's failing resolve")
		}
		h.advance(d)
	}
	if got := h.count("oncall", resultRetried); got < 4 {
		t.Fatalf("retried = %v, want a's resolve retried at least 4 times", got)
	}
	reopened := a
	reopened.Time = a.Time.Add(time.Hour) // a opens again while its resolve is still failing
	h.enqueue(reopened, "oncall")

	at := h.clock.Now()
	h.enqueue(b, "oncall")
	waitFor(t, "b's trigger", func() bool { return strings.Contains(eventsOf(fake), "trigger incident-b") })
	h.advance(0)
	if now := h.clock.Now(); !now.Equal(at) {
		t.Fatalf("b delivered after the clock moved %s", now.Sub(at))
	}
	if got, want := eventsOf(fake), "trigger incident-a, trigger incident-b"; got != want {
		t.Fatalf("events %s, want %s: a's failing resolve holds back only a's own events", got, want)
	}

	// b's delivery made a's resolve due once; failing again, a keeps to its
	// own backoff: more deliveries do not retry it each time.
	retried := h.count("oncall", resultRetried)
	for i := range 5 {
		h.enqueue(notifytest.PageDown(fmt.Sprintf("incident-c%d", i)), "oncall")
	}
	waitFor(t, "the five other triggers", func() bool { return len(fake.Events()) == 7 })
	h.advance(0)
	if got := h.count("oncall", resultRetried); got != retried {
		t.Errorf("a's resolve retried %v times while other incidents were delivered, want 0", got-retried)
	}

	fake.FailKey(a.Key, 0)
	for i := 0; i < 20 && len(fake.Events()) < 9; i++ {
		if d, ok := h.clock.Next(); ok {
			h.advance(d)
		} else {
			h.advance(time.Second)
		}
	}
	evs := fake.Events()
	if len(evs) != 9 {
		t.Fatalf("events %s, want a's resolve and its new trigger after the others", eventsOf(fake))
	}
	if got := evs[7].EventAction + " " + evs[8].EventAction; evs[7].DedupKey != a.Key || evs[8].DedupKey != a.Key || got != "resolve trigger" {
		t.Errorf("a's events after recovery: %s, want its resolve, then its new trigger", eventsOf(fake))
	}
	if bad := fake.InvalidReasons(); len(bad) > 0 {
		t.Errorf("the fake refused events: %v", bad)
	}
}

// TestThrottlingPausesTheWholeNotifier: a 429 throttles the integration,
// not the incident, so every incident waits for its Retry-After.
func TestThrottlingPausesTheWholeNotifier(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	fake.SetAlways(http.StatusTooManyRequests)
	fake.SetRetryAfter("60")
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h.enqueue(notifytest.PageDown("incident-a"), "oncall")
	waitFor(t, "a's throttled attempt", func() bool { return h.count("oncall", resultRetried) == 1 })
	fake.SetAlways(0)
	h.enqueue(notifytest.PageDown("incident-b"), "oncall")
	h.advance(59 * time.Second)
	if n := fake.RequestCount(); n != 1 {
		t.Fatalf("%d requests within the Retry-After of a 429, want 1", n)
	}
	h.advance(time.Second)
	waitFor(t, "both triggers after the pause", func() bool { return len(fake.Events()) == 2 })
	if got, want := eventsOf(fake), "trigger incident-a, trigger incident-b"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
}

// TestResolvedBeforeDeliveredIsNotSent: a trigger PagerDuty never accepted
// is not sent late with its resolve once PagerDuty is back; a trigger it
// accepted gets its resolve, however long PagerDuty was down.
func TestResolvedBeforeDeliveredIsNotSent(t *testing.T) {
	t.Run("never delivered", func(t *testing.T) {
		fake := notifytest.NewFakePagerDuty(t)
		fake.SetAlways(http.StatusInternalServerError)
		h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
		a := notifytest.PageDown("incident-a")
		h.enqueue(a, "oncall")
		waitFor(t, "a failed attempt", func() bool { return h.count("oncall", resultRetried) >= 1 })
		h.advance(0)
		h.enqueue(notifytest.ResolveOf(a), "oncall")
		if got := h.p.Pending("oncall"); got != 0 {
			t.Errorf("pending = %d, want 0", got)
		}
		fake.SetAlways(0)
		h.advance(DefaultBackoffMax)
		h.advance(DefaultBackoffMax)
		if evs := eventsOf(fake); evs != "" {
			t.Errorf("sent %s after PagerDuty came back, want nothing", evs)
		}
		if got := h.count("oncall", resultSuperseded); got != 2 {
			t.Errorf("superseded = %v, want 2 (the trigger and its resolve)", got)
		}
		if got := h.pendingGauge("oncall"); got != 0 {
			t.Errorf("pending gauge = %v", got)
		}
		if logs := h.logs.String(); strings.Count(logs, "neither is sent") != 1 || !strings.Contains(logs, "key=incident-a") {
			t.Errorf("want one line saying why, got:\n%s", logs)
		}
		// The resolve said again is not sent; the incident opening again is.
		h.enqueue(notifytest.ResolveOf(a), "oncall")
		if got := h.count("oncall", resultDeduplicated); got != 1 {
			t.Errorf("deduplicated = %v, want 1", got)
		}
		h.enqueue(a, "oncall")
		waitFor(t, "a's new trigger", func() bool { return eventsOf(fake) == "trigger incident-a" })
	})

	t.Run("delivered", func(t *testing.T) {
		fake := notifytest.NewFakePagerDuty(t)
		h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
		a := notifytest.PageDown("incident-a")
		h.enqueue(a, "oncall")
		waitFor(t, "a's trigger", func() bool { return len(fake.Events()) == 1 })
		h.advance(0)
		fake.SetAlways(http.StatusInternalServerError)
		h.enqueue(notifytest.ResolveOf(a), "oncall")
		waitFor(t, "a failed attempt", func() bool { return h.count("oncall", resultRetried) >= 1 })
		h.advance(time.Hour)
		fake.SetAlways(0)
		for i := 0; i < 20 && len(fake.Events()) < 2; i++ {
			h.advance(DefaultBackoffMax)
		}
		if got, want := eventsOf(fake), "trigger incident-a, resolve incident-a"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
		if got := h.count("oncall", resultSuperseded); got != 0 {
			t.Errorf("superseded = %v, want 0", got)
		}
	})

	t.Run("pending before a restart", func(t *testing.T) {
		// It may have been delivered by the attempt the restart cut
		// short: the trigger goes, the resolve is still sent (to
		// PagerDuty, a resolve of an unknown key is a no-op).
		fake := notifytest.NewFakePagerDuty(t)
		fake.SetAlways(http.StatusInternalServerError)
		dir := t.TempDir()
		a := notifytest.PageDown("incident-a")
		h1 := startPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
		h1.enqueue(a, "oncall")
		waitFor(t, "a failed attempt", func() bool { return h1.count("oncall", resultRetried) >= 1 })
		h1.stop()
		fake.SetAlways(0)
		h2 := newPipe(t, dir, map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
		h2.enqueue(notifytest.ResolveOf(a), "oncall")
		h2.run()
		waitFor(t, "the resolve", func() bool { return len(fake.Events()) == 1 })
		h2.advance(0)
		if got, want := eventsOf(fake), "resolve incident-a"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
	})
}

// gated is a notifier whose every attempt waits for the test's answer.
type gated struct {
	calls   chan notify.Notification
	answers chan error
}

func newGated() *gated {
	return &gated{calls: make(chan notify.Notification, 16), answers: make(chan error)}
}

func (g *gated) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	g.calls <- n
	select {
	case err := <-g.answers:
		return err != nil, err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// call waits for the next attempt and returns what it delivers.
func (g *gated) call(t *testing.T) notify.Notification {
	t.Helper()
	select {
	case n := <-g.calls:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt")
		return notify.Notification{}
	}
}

// TestResolveDuringTheTriggersAttempt: the resolve arrives while the
// trigger's attempt is under way, so both are queued; how the attempt ends
// decides. An answer that refuses it (500) means PagerDuty never had it:
// neither goes. No answer (a timeout) means it may have it: the trigger is
// not retried, the resolve goes.
func TestResolveDuringTheTriggersAttempt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  error
		resolve bool
	}{
		{"refused", &notify.DeliveryError{Notifier: "pagerduty", StatusCode: 500}, false},
		{"no answer", errors.New("pagerduty: context deadline exceeded"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGated()
			h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": g})
			a := notifytest.PageDown("incident-a")
			h.enqueue(a, "oncall")
			if n := g.call(t); n.Action != notify.ActionTrigger {
				t.Fatalf("first attempt: %s", n.Action)
			}
			h.enqueue(notifytest.ResolveOf(a), "oncall")
			if got := h.p.Pending("oncall"); got != 2 {
				t.Fatalf("pending = %d with the trigger in flight, want 2", got)
			}
			g.answers <- tc.answer
			h.advance(0)
			want := 0
			if tc.resolve {
				want = 1
			}
			if got := h.p.Pending("oncall"); got != want {
				t.Fatalf("pending = %d after the failed attempt, want %d", got, want)
			}
			if !tc.resolve {
				return
			}
			h.advance(DefaultBackoffMax)
			if n := g.call(t); n.Action != notify.ActionResolve {
				t.Fatalf("next attempt: %s %s, want the resolve", n.Action, n.Key)
			}
			g.answers <- nil
			waitFor(t, "the resolve delivered", func() bool { return h.count("oncall", resultDelivered) == 1 })
			clocktest.WaitIdle(t, 30*time.Second)
			if got := h.p.Pending("oncall"); got != 0 {
				t.Errorf("pending = %d", got)
			}
		})
	}
}
