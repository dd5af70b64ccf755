package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// reachedAt is a reporter whose evaluators last answered at a set time.
type reachedAt struct {
	mu sync.Mutex
	at time.Time
}

func (r *reachedAt) LastReached() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.at }
func (r *reachedAt) AnswerDue() time.Time   { return time.Time{} }
func (r *reachedAt) set(t time.Time)        { r.mu.Lock(); r.at = t; r.mu.Unlock() }

// pages records what the watcher pages.
type pages struct {
	mu   sync.Mutex
	lost []bool
}

func (p *pages) PageEvaluators(_ context.Context, lost bool, _, _ time.Time) {
	p.mu.Lock()
	p.lost = append(p.lost, lost)
	p.mu.Unlock()
}

func (p *pages) all() []bool { p.mu.Lock(); defer p.mu.Unlock(); return append([]bool(nil), p.lost...) }

// TestWatchEvaluatorsPagesOnceEachWay: silence past lost_after pages once,
// however long it lasts; an answer resolves once.
func TestWatchEvaluatorsPagesOnceEachWay(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	clk := clocktest.New(t0)
	r := &reachedAt{at: t0}
	p := &pages{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); WatchEvaluators(ctx, r, p, clk, time.Minute, 10*time.Second) }()
	t.Cleanup(func() { cancel(); <-done })

	step := func(n int) {
		for range n {
			clocktest.WaitIdle(t, 30*time.Second)
			clk.Advance(10 * time.Second)
		}
		clocktest.WaitIdle(t, 30*time.Second)
	}
	step(6) // one minute: not yet lost
	if got := p.all(); len(got) != 0 {
		t.Fatalf("paged %v within lost_after", got)
	}
	step(30) // five more minutes of silence
	if got := p.all(); len(got) != 1 || !got[0] {
		t.Fatalf("pages %v, want one trigger", got)
	}
	r.set(clk.Now())
	step(3)
	if got := p.all(); len(got) != 2 || got[1] {
		t.Fatalf("pages %v, want the trigger then one resolve", got)
	}
}
