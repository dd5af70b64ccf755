package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// Bounds of the transition log: in a storm, when a shared dependency takes
// hundreds of checks down at once, the log says so in a few lines.
const (
	// transitionWindow is the period the line budget covers.
	transitionWindow = time.Minute
	// transitionBurst is how many transition lines a window may hold;
	// the rest are counted and summed up in one line.
	transitionBurst = 20
)

// TransitionLog logs the first result of each check and every change
// between passing and failing: state changes, not every result. At most
// transitionBurst lines a minute name a check; past that, the changes are
// counted and one summary line ("312 checks started failing, 4 recovered
// in the last minute") follows when the minute ends. It is safe for
// concurrent use.
type TransitionLog struct {
	log   *slog.Logger
	clock clock.Clock

	mu          sync.Mutex
	last        map[string]bool // by job key: passing
	windowStart time.Time
	lines       int
	held        transitionCounts
}

// transitionCounts counts the changes held back in a window.
type transitionCounts struct{ failing, recovered, passing int }

func (c transitionCounts) total() int { return c.failing + c.recovered + c.passing }

// NewTransitionLog returns a transition log writing to log, its minutes
// read from clk (nil: the wall clock).
func NewTransitionLog(log *slog.Logger, clk clock.Clock) *TransitionLog {
	if clk == nil {
		clk = clock.Real{}
	}
	return &TransitionLog{log: log, clock: clk, last: map[string]bool{}}
}

// Observe notes r and logs it if it is a change and the minute's budget
// allows.
func (t *TransitionLog) Observe(r wire.Result) {
	key := JobKey(r.Check, r.Region)
	now := t.clock.Now()
	t.mu.Lock()
	prev, seen := t.last[key]
	t.last[key] = r.OK
	if seen && prev == r.OK {
		t.mu.Unlock()
		return
	}
	summary := t.roll(now)
	log := t.lines < transitionBurst
	if log {
		t.lines++
	} else {
		switch {
		case !r.OK:
			t.held.failing++
		case seen:
			t.held.recovered++
		default:
			t.held.passing++
		}
	}
	t.mu.Unlock()
	summary()
	if !log {
		return
	}
	attrs := []any{"check", r.Check, "region", r.Region, "latency", FormatLatency(r.Duration), "reason", r.Reason}
	switch {
	case r.OK && !seen:
		t.log.Info("check passing", attrs...)
	case r.OK:
		t.log.Info("check recovered", attrs...)
	default:
		t.log.Warn("check failing", attrs...)
	}
}

// Forget drops what is known of checks no longer scheduled, keeping the
// keys in keep, so that the memory follows the configuration.
func (t *TransitionLog) Forget(keep map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key := range t.last {
		if !keep[key] {
			delete(t.last, key)
		}
	}
}

// Run writes the summary of each minute that held lines back when the
// minute ends, until ctx ends; without it a summary waits for the next
// change.
func (t *TransitionLog) Run(ctx context.Context) {
	for {
		timer := t.clock.NewTimer(transitionWindow)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		t.mu.Lock()
		summary := t.roll(t.clock.Now())
		t.mu.Unlock()
		summary()
	}
}

// roll starts a new window when the current one is over, and returns what
// logs the old one's summary (a no-op when nothing was held back). t.mu is
// held; the returned function is called without it.
func (t *TransitionLog) roll(now time.Time) func() {
	if now.Sub(t.windowStart) < transitionWindow {
		return func() {}
	}
	held, start := t.held, t.windowStart
	t.windowStart, t.lines, t.held = now, 0, transitionCounts{}
	if held.total() == 0 {
		return func() {}
	}
	return func() {
		t.log.Warn("more checks changed state than are logged one by one",
			"started_failing", held.failing, "recovered", held.recovered, "first_passing", held.passing,
			"since", start.UTC().Format(time.TimeOnly))
	}
}

// FormatLatency writes a probe's duration in seconds for people: "413µs",
// "8.8ms", "1.25s".
func FormatLatency(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
