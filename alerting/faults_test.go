package alerting

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

// brokenOutbox is a recording pipeline whose disk fails: Notify cannot
// record anything, DeliverNow delivers.
type brokenOutbox struct {
	mu     sync.Mutex
	direct []notify.Notification
}

func (b *brokenOutbox) Notify(context.Context, notify.Notification) (bool, error) {
	return true, errors.New("write outbox.db: no space left on device")
}

func (b *brokenOutbox) DeliverNow(_ context.Context, n notify.Notification) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.direct = append(b.direct, n)
	return nil
}

func (b *brokenOutbox) delivered() []notify.Notification {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]notify.Notification(nil), b.direct...)
}

// TestEvaluatorPagesAboutItsOwnDisk: the data dir refuses the write check
// and the outbox cannot record. The evaluator says both in Health, pages
// under its own name directly to the notifiers (the outbox being on the
// failing disk), once, and resolves a minute after the disk works again.
func TestEvaluatorPagesAboutItsOwnDisk(t *testing.T) {
	dir := t.TempDir()
	box := &brokenOutbox{}
	f := newFixture(t, withDataDir(dir), func(o *Options) { o.Notifier = box; o.Name = "eval-a" })
	// A directory where the write check writes its file: the write
	// fails for any user, root included.
	blocker := filepath.Join(dir, writeCheckFile)
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(d time.Duration) {
		f.clock.Advance(d)
		f.ev.tick(ctx, f.clock.Now())
		f.ev.dirCheck.wg.Wait()
	}
	step(time.Second) // the check runs and fails
	step(time.Second) // the page goes out; the region pages fail to record
	h := f.ev.Health()
	if !strings.Contains(h, "cannot write its data dir "+dir+": ") || !strings.Contains(h, "is a directory") {
		t.Fatalf("Health = %q", h)
	}
	if !strings.Contains(h, "cannot record notifications in its outbox: write outbox.db: no space left on device") {
		t.Errorf("Health = %q, want the outbox too", h)
	}
	pages := func(action string) (out []notify.Notification) {
		for _, n := range box.delivered() {
			if n.Kind == notify.KindEvaluatorFault && n.Action == action {
				out = append(out, n)
			}
		}
		return out
	}
	got := pages(notify.ActionTrigger)
	if len(got) == 0 || got[0].Key != "outpost:evaluator-fault:eval-a:data_dir" || got[0].Route != "meta" ||
		!strings.HasPrefix(got[0].Summary, "evaluator eval-a cannot write its data dir "+dir+": ") {
		t.Fatalf("pages delivered directly: %+v", got)
	}
	for range 10 {
		step(10 * time.Second)
	}
	if n := len(pages(notify.ActionTrigger)); n != 2 { // data_dir, then outbox
		t.Errorf("%d fault pages after 100s of one fault each, want 2", n)
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		step(10 * time.Second)
	}
	res := pages(notify.ActionResolve)
	if len(res) != 1 || res[0].Key != "outpost:evaluator-fault:eval-a:data_dir" || !strings.HasPrefix(res[0].Summary, "evaluator eval-a writes its data dir again") {
		t.Fatalf("resolves: %+v", res)
	}
	if h := f.ev.Health(); strings.Contains(h, "data dir") {
		t.Errorf("Health = %q after the data dir recovered", h)
	}
}
