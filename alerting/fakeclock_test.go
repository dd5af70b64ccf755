package alerting

import (
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes"
)

// fakeClock is a Clock that moves only when a test advances it. It is a
// copy of the one in probes/fakeclock_test.go, which no other package can
// import.
type fakeClock struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	timers  []*fakeTimer
	created int // timers created so far, to wait for a loop to park
}

func newFakeClock(start time.Time) *fakeClock {
	f := &fakeClock{now: start}
	f.cond = sync.NewCond(&f.mu)
	return f
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) probes.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: f.now.Add(d)}
	if d <= 0 {
		t.fired = true
		t.c <- f.now
	} else {
		f.timers = append(f.timers, t)
	}
	f.created++
	f.cond.Broadcast()
	return t
}

// Advance moves the clock, fires the timers that came due and returns how
// many fired.
func (f *fakeClock) Advance(d time.Duration) (fired int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.stopped {
			continue
		}
		if !t.at.After(f.now) {
			t.fired = true
			t.c <- f.now
			fired++
			continue
		}
		kept = append(kept, t)
	}
	f.timers = kept
	return fired
}

// waitCreated blocks until n timers have been created in all, which is how
// a test knows the loop under test has parked again. It fails the test
// rather than hang if that never happens.
func (f *fakeClock) waitCreated(t *testing.T, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		f.mu.Lock()
		for f.created < n {
			f.cond.Wait()
		}
		f.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("loop never parked: %d timers created, want %d", f.timersCreated(), n)
	}
}

func (f *fakeClock) timersCreated() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}
