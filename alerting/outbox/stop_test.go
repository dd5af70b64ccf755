package outbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// hanging is a destination that never answers: each attempt waits for its
// context to end.
type hanging struct{ calls atomic.Int32 }

func (h *hanging) Notify(ctx context.Context, _ notify.Notification) (bool, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return true, ctx.Err()
}

// TestStopCutsAHangingAttempt: a destination that hangs cannot hold up a
// stop for the attempt's whole deadline (an hour here): the attempt is cut
// StopGrace after the stop, and its notification stays in the outbox, to
// be delivered after the next start.
func TestStopCutsAHangingAttempt(t *testing.T) {
	dir := t.TempDir()
	dest := &hanging{}
	h := startPipe(t, dir, map[string]notify.Notifier{"oncall": dest}, func(o *Options) {
		o.AttemptTimeout = time.Hour
		o.StopGrace = 10 * time.Millisecond
	})
	h.enqueue(notifytest.PageDown("outpost:check:web"))
	waitFor(t, "the attempt under way", func() bool { return dest.calls.Load() == 1 })
	h.stop() // fails the test if Run has not returned within 10s

	rec := &notifytest.Recorder{}
	startPipe(t, dir, map[string]notify.Notifier{"oncall": rec})
	waitFor(t, "the cut notification delivered after the restart", func() bool { return rec.Calls() == 1 })
	if got := rec.Delivered()[0].Key; got != "outpost:check:web" {
		t.Fatalf("delivered %q", got)
	}
}
