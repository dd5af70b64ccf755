package alerting

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// stuckNotifier blocks every notification about one check until released,
// as a notifier whose destination hangs would; it records the others.
type stuckNotifier struct {
	notifytest.Recorder
	check    string
	entered  chan struct{} // closed when the first stuck call begins
	release  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	stuckFor []notify.Notification
}

func (s *stuckNotifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	if n.Check != s.check {
		return s.Recorder.Notify(ctx, n)
	}
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return true, ctx.Err()
	}
	s.mu.Lock()
	s.stuckFor = append(s.stuckFor, n)
	s.mu.Unlock()
	return false, nil
}

func (s *stuckNotifier) delivered(check string) []notify.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []notify.Notification
	for _, n := range append(s.Recorder.Delivered(), s.stuckFor...) {
		if n.Check == check {
			out = append(out, n)
		}
	}
	return out
}

// TestNoLockHeldWhileNotifying: while the notification of one check hangs
// in its notifier, ingest, decisions and pages for other checks, another
// batch for the stuck check, a liveness tick and the status snapshot all go
// on; once the notifier answers, the stuck page is delivered once, and in
// order with what its check decided meanwhile.
func TestNoLockHeldWhileNotifying(t *testing.T) {
	stuck := &stuckNotifier{check: "api", entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixture(t, func(o *Options) { o.Notifier = stuck })
	released := false
	t.Cleanup(func() {
		if !released {
			close(stuck.release)
		}
	})
	seq := uint64(0)
	apply := func(region string, results ...wire.Result) error {
		seq++
		return f.ev.Apply(f.batch(region, seq, results...))
	}
	failures := func(check string, n int) []wire.Result {
		rs := make([]wire.Result, n)
		for i := range rs {
			rs[i] = result(check, "", false)
		}
		return rs
	}
	withRegion := func(region string, rs []wire.Result) []wire.Result {
		for i := range rs {
			rs[i].Region = region
		}
		return rs
	}

	// api (us-east only, ratio 0.5 over 20) goes DOWN; its page hangs.
	applied := make(chan error, 1)
	go func() { applied <- apply("us-east", withRegion("us-east", failures("api", 10))...) }()
	select {
	case <-stuck.entered:
	case err := <-applied:
		t.Fatalf("the api page was not sent (Apply returned %v)", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the api page never reached the notifier")
	}

	// Everything else goes on while it hangs. Each step runs on its own
	// goroutine so that a breach fails the test instead of hanging it.
	done := func(what string, step func()) {
		t.Helper()
		finished := make(chan struct{})
		go func() { defer close(finished); step() }()
		clocktest.WaitFor(t, 10*time.Second, what+" while a notification hangs", func() bool {
			select {
			case <-finished:
				return true
			default:
				return false
			}
		})
	}
	done("web DOWN from two regions, paged", func() {
		for _, region := range []string{"us-east", "eu-west"} {
			if err := apply(region, withRegion(region, failures("web", 3))...); err != nil {
				t.Error(err)
			}
		}
	})
	if got := stuck.delivered("web"); len(got) != 1 || !strings.Contains(got[0].Summary, "web DOWN") {
		t.Errorf("web pages = %s, want the one DOWN page", notifytest.Summaries(got))
	}
	done("another batch for api", func() {
		if err := apply("us-east", withRegion("us-east", failures("api", 1))...); err != nil {
			t.Error(err)
		}
	})
	done("a liveness tick", func() { f.ev.tick(context.Background(), f.clock.Now().Add(time.Second)) })
	done("the status snapshot", func() { f.ev.Snapshot() })

	close(stuck.release)
	released = true
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	got := stuck.delivered("api")
	if len(got) != 1 || got[0].Action != notify.ActionTrigger || !strings.Contains(got[0].Summary, "api DOWN") {
		t.Errorf("api pages = %s, want the one DOWN trigger", notifytest.Summaries(got))
	}
}

// TestDeciderQueueIsBoundedAndKeepsTheEndState: however often a check's
// incident flips while its notifier hangs, at most a trigger and a resolve
// per incident wait, and the last one queued is the state the destination
// ends in.
func TestDeciderQueueIsBoundedAndKeepsTheEndState(t *testing.T) {
	cd := &checkDecider{}
	trigger := notifytest.PageDown("outpost-k")
	resolve := notifytest.ResolveOf(trigger)
	other := notifytest.PageDown("outpost-other")
	for range 50 {
		cd.queue(trigger)
		cd.queue(other)
		cd.queue(resolve)
	}
	if len(cd.outgoing) != 3 {
		t.Fatalf("%d queued after 150 flips, want 3: %s", len(cd.outgoing), notifytest.Summaries(cd.outgoing))
	}
	if last := cd.outgoing[len(cd.outgoing)-1]; last.Key != trigger.Key || last.Action != notify.ActionResolve {
		t.Errorf("last queued = %s %s, want the resolve of %s", last.Action, last.Key, trigger.Key)
	}
	cd.queue(trigger)
	if last := cd.outgoing[len(cd.outgoing)-1]; last.Action != notify.ActionTrigger || len(cd.outgoing) != 3 {
		t.Errorf("after a new trigger: %s", notifytest.Summaries(cd.outgoing))
	}
}
