package outbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// waitNextTimer waits until the earliest pending timer of h's clock is
// want away: the reminder loop has parked on it.
func waitNextTimer(t *testing.T, h *pipe, want time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a timer %s away", want), func() bool { d, ok := h.clock.Next(); return ok && d == want })
}

// TestReminders: an open incident is sent again to a notifier with a
// repeat interval (chat, 1h) at that interval, not before, marked as a
// reminder, and never to one without (oncall, as before repeat existed);
// after the resolve, never again.
func TestReminders(t *testing.T) {
	chat, oncall := &notifytest.Recorder{}, &notifytest.Recorder{}
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"chat": chat, "oncall": oncall},
		func(o *Options) { o.Repeat = map[string]time.Duration{"chat": time.Hour} })
	down := notifytest.PageDown("incident-a")
	h.enqueue(down)
	waitFor(t, "the trigger delivered", func() bool { return len(chat.Delivered()) == 1 && len(oncall.Delivered()) == 1 })

	waitNextTimer(t, h, time.Hour)
	h.clock.Advance(59 * time.Minute)
	waitNextTimer(t, h, time.Minute)
	if n := len(chat.Delivered()); n != 1 {
		t.Fatalf("chat got %d notifications 59m in, want the trigger only", n)
	}
	h.clock.Advance(time.Minute)
	waitFor(t, "chat's first reminder", func() bool { return len(chat.Delivered()) == 2 })
	r := chat.Delivered()[1]
	if r.Action != notify.ActionTrigger || r.Key != down.Key || r.Summary != down.Summary || r.Details[notify.DetailReminder] != "true" ||
		r.Details[notify.DetailFirstSent] != t0.Format(time.RFC3339) || !r.Time.Equal(t0.Add(time.Hour)) || len(r.Evidence) != len(down.Evidence) {
		t.Errorf("reminder %+v", r)
	}
	// Each hour for chat.
	for hour := 2; hour <= 4; hour++ {
		waitNextTimer(t, h, time.Hour)
		h.clock.Advance(time.Hour)
		waitFor(t, fmt.Sprintf("chat's reminder at %dh", hour), func() bool { return len(chat.Delivered()) == hour+1 })
	}
	if got := len(oncall.Delivered()); got != 1 {
		t.Errorf("oncall (no repeat) got %d notifications in 4h, want the trigger alone", got)
	}
	waitFor(t, "chat's deliveries counted", func() bool { return h.count("chat", resultDelivered) == 5 })

	h.enqueue(notifytest.ResolveOf(down))
	waitFor(t, "the resolve delivered", func() bool { return len(chat.Delivered()) == 6 && len(oncall.Delivered()) == 2 })
	waitFor(t, "no reminder timer left", func() bool { _, ok := h.clock.Next(); return !ok })
	h.clock.Advance(24 * time.Hour)
	h.enqueue(notify.Notification{Kind: "note", Key: "other", Summary: "a notice", Route: notify.RouteWarning}, "chat")
	waitFor(t, "the notice delivered", func() bool { return len(chat.Delivered()) == 7 })
	if got := notifytest.Summaries(chat.Delivered()[6:]); got != " other a notice" {
		t.Errorf("after the resolve chat got %q", got)
	}
	if _, ok := h.clock.Next(); ok {
		t.Error("a reminder is scheduled after the resolve (or for a notice)")
	}
}

// TestRemindersSurviveRestart: the open trigger is on disk, so a restarted
// outbox goes on reminding, at the interval from the last delivery.
func TestRemindersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	rec := &notifytest.Recorder{}
	opt := func(o *Options) { o.Repeat = map[string]time.Duration{"chat": 30 * time.Minute} }
	h := startPipe(t, dir, map[string]notify.Notifier{"chat": rec}, opt)
	h.enqueue(notifytest.PageDown("incident-a"))
	waitFor(t, "the trigger delivered", func() bool { return len(rec.Delivered()) == 1 })
	h.stop()

	rec2 := &notifytest.Recorder{}
	h2 := startPipe(t, dir, map[string]notify.Notifier{"chat": rec2}, opt)
	waitNextTimer(t, h2, 30*time.Minute)
	h2.clock.Advance(30 * time.Minute)
	waitFor(t, "the reminder after the restart", func() bool { return len(rec2.Delivered()) == 1 })
	if r := rec2.Delivered()[0]; r.Key != "incident-a" || r.Details[notify.DetailReminder] != "true" {
		t.Errorf("reminder %+v", r)
	}
}

// TestNoReminderWhileUndelivered: a trigger the notifier has not taken
// yet (it keeps failing) is retried, not reminded of on top.
func TestNoReminderWhileUndelivered(t *testing.T) {
	rec := &notifytest.Recorder{}
	rec.FailNext(1000, true)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"chat": rec},
		func(o *Options) {
			o.Repeat = map[string]time.Duration{"chat": time.Minute}
			o.BackoffMin, o.BackoffMax = time.Hour, time.Hour
		})
	h.enqueue(notifytest.PageDown("incident-a"))
	waitFor(t, "a failed attempt", func() bool { return rec.Calls() >= 1 })
	h.clock.WaitTimersCreated(t, 1, 10*time.Second) // the backoff
	if next := h.p.box.nextReminder(); !next.IsZero() {
		t.Errorf("a reminder is due at %s for a trigger still queued", next)
	}
	added, err := h.p.box.remindDue(t0.Add(10 * time.Minute))
	if err != nil || len(added) != 0 {
		t.Errorf("remindDue = (%+v, %v), want nothing: the trigger is still queued", added, err)
	}
	if got := h.p.Pending("chat"); got != 1 {
		t.Errorf("pending %d, want the trigger alone (no reminder queued behind it)", got)
	}
}
