package outbox

import (
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEscalationWhenANotifierKeepsFailing: PagerDuty (here a scripted
// notifier) fails for longer than escalate.after, so the page also goes to
// the escalation notifier, once; PagerDuty still gets it when it recovers.
func TestEscalationWhenANotifierKeepsFailing(t *testing.T) {
	pager, chat := &notifytest.Recorder{}, &notifytest.Recorder{}
	pager.FailNext(1000, true) // down for a long while
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"pager": pager, "chat": chat}, func(o *Options) {
		o.Escalations = map[string]checks.Escalation{"pager": {To: "chat", After: 5 * time.Minute}}
	})
	page := notifytest.PageDown("outpost-0123456789abcdef")
	h.enqueue(page, "pager")

	// Move time through the pager's backoff until the escalation.
	for i := 0; i < 400 && len(chat.Delivered()) == 0; i++ {
		waitFor(t, "the pager worker to wait", func() bool { return pager.Calls() > 0 })
		if d, ok := h.clock.Next(); ok {
			h.clock.Advance(d)
		} else {
			h.clock.Advance(time.Second)
		}
		clocktest.WaitIdle(t, 30*time.Second)
	}
	got := chat.Delivered()
	if len(got) != 1 || got[0].Key != page.Key || !strings.HasPrefix(got[0].Summary, "[escalated: pager failing for ") {
		t.Fatalf("escalated = %s", notifytest.Summaries(got))
	}
	if since := h.clock.Now().Sub(t0); since < 5*time.Minute {
		t.Errorf("escalated after %s, want at least escalate.after (5m)", since)
	}
	// More failures do not escalate the same page again.
	for i := 0; i < 20; i++ {
		if d, ok := h.clock.Next(); ok {
			h.clock.Advance(d)
		}
		clocktest.WaitIdle(t, 30*time.Second)
	}
	if n := len(chat.Delivered()); n != 1 {
		t.Fatalf("%d escalations of one page, want 1", n)
	}

	// The incident resolves while the pager still fails: the escalation
	// target, which has the page, gets the resolve. The pager's trigger
	// may have reached it (its attempts got no answer), so it is not sent
	// late, and the resolve waits for the pager instead.
	h.enqueue(notifytest.ResolveOf(page))
	waitFor(t, "the resolve on the escalation target", func() bool { return len(chat.Delivered()) == 2 })
	if got := chat.Delivered()[1]; got.Action != notify.ActionResolve || got.Key != page.Key {
		t.Errorf("escalation target got %s %s, want the resolve", got.Action, got.Key)
	}
	if got := h.p.Pending("pager"); got != 1 {
		t.Errorf("pager pending = %d, want its resolve only", got)
	}
	if got := h.count("pager", resultSuperseded); got != 1 {
		t.Errorf("pager superseded = %v, want its trigger", got)
	}
}
