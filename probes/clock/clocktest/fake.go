// Package clocktest provides a clock for tests that moves only when the test
// advances it, and WaitIdle, to let the goroutines a step woke finish.
//
// It imports only probes/clock of Outpost's, and only tests import it.
package clocktest

import (
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/clock"
)

// Fake is a clock.Clock whose time changes only through Advance. Timers
// fire during Advance, in the goroutine that calls it. It is safe for
// concurrent use.
type Fake struct {
	mu      sync.Mutex
	cond    *sync.Cond
	now     time.Time
	timers  []*timer
	created int
}

var _ clock.Clock = (*Fake)(nil)

// New returns a fake clock reading start.
func New(start time.Time) *Fake {
	f := &Fake{now: start}
	f.cond = sync.NewCond(&f.mu)
	return f
}

type timer struct {
	f       *Fake
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func (t *timer) C() <-chan time.Time { return t.c }

func (t *timer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the clock has been advanced by d;
// a d of zero or less fires at once.
func (f *Fake) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &timer{f: f, c: make(chan time.Time, 1), at: f.now.Add(d)}
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

// Advance moves the clock by d, fires the timers that came due and returns
// how many fired.
func (f *Fake) Advance(d time.Duration) (fired int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		switch {
		case t.stopped:
		case !t.at.After(f.now):
			t.fired = true
			t.c <- f.now
			fired++
		default:
			kept = append(kept, t)
		}
	}
	clear(f.timers[len(kept):])
	f.timers = kept
	return fired
}

// TimersCreated returns how many timers have been made so far.
func (f *Fake) TimersCreated() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.created
}

// Fataler is the part of testing.TB that WaitTimersCreated needs.
type Fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// WaitTimersCreated blocks until n timers have been made in all: how a test
// knows that a loop has parked on its next timer. It fails the test after
// limit of real time rather than hang.
func (f *Fake) WaitTimersCreated(tb Fataler, n int, limit time.Duration) {
	tb.Helper()
	done := make(chan struct{})
	gaveUp := false // guarded by f.mu
	go func() {
		f.mu.Lock()
		for f.created < n && !gaveUp {
			f.cond.Wait()
		}
		f.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
		f.mu.Lock()
		gaveUp = true
		f.cond.Broadcast()
		f.mu.Unlock()
		<-done
		tb.Fatalf("loop never parked: fewer than %d timers were created within %s", n, limit)
	}
}

// Next returns how far away the earliest pending timer is, and whether
// there is one: a test can advance exactly to it.
func (f *Fake) Next() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Duration
	found := false
	for _, t := range f.timers {
		if d := t.at.Sub(f.now); !t.stopped && !t.fired && (!found || d < next) {
			next, found = d, true
		}
	}
	return next, found
}
