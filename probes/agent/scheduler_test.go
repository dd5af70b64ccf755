package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

var epoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type schedHarness struct {
	t      *testing.T
	clock  *fakeClock
	s      *Scheduler
	cancel context.CancelFunc
	done   chan struct{}
	parked int
}

func startScheduler(t *testing.T, workers int, jobs []Job) *schedHarness {
	t.Helper()
	clock := newFakeClock(epoch)
	s, err := NewScheduler(clock, workers, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &schedHarness{t: t, clock: clock, s: s, cancel: cancel, done: make(chan struct{})}
	go func() { s.Run(ctx); close(h.done) }()
	h.park() // idle, waiting with no jobs
	t.Cleanup(h.stop)
	s.Set(jobs)
	h.park() // woken by Set, waiting for the first job
	return h
}

// park waits for the scheduler loop to wait on a new timer.
func (h *schedHarness) park() {
	h.parked++
	h.clock.waitCreated(h.t, h.parked)
}

// advance moves time and, if that woke the loop, waits until it has
// dispatched and parked again, and until the runs it dispatched have
// finished or blocked: otherwise, on a loaded machine, a run still under
// way when the fake clock reaches the job's next start is counted as an
// overlap, and the test waits forever for a run that was skipped.
func (h *schedHarness) advance(d time.Duration) {
	if h.clock.Advance(d) > 0 {
		h.park()
		clocktest.WaitIdle(h.t, 30*time.Second)
	}
}

func (h *schedHarness) stop() {
	h.cancel()
	<-h.done
}

func skipped(s *Scheduler, reason string) float64 {
	return testutil.ToFloat64(s.metrics.skipped.WithLabelValues(reason))
}

func TestStartOffsetsAreDeterministicAndEven(t *testing.T) {
	const n, interval = 10000, 10 * time.Second
	buckets := make([]int, 10) // one per second of the interval
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("check-%d/us-east", i)
		p := startOffset(key, interval)
		if p != startOffset(key, interval) {
			t.Fatal("phase is not deterministic")
		}
		if p < 0 || p >= interval {
			t.Fatalf("phase %v outside [0, %v)", p, interval)
		}
		buckets[p/time.Second]++
	}
	for sec, c := range buckets {
		if c < n/10*8/10 || c > n/10*12/10 {
			t.Errorf("second %d has %d starts, want about %d: %v", sec, c, n/10, buckets)
		}
	}
	if startOffset("web/us-east", interval) == startOffset("web/eu-west", interval) {
		t.Error("regions of one check share a phase")
	}
}

func TestSchedulerRunsEachJobOncePerInterval(t *testing.T) {
	defer goleak.VerifyNone(t)
	var mu sync.Mutex
	runs := map[string][]time.Time{}
	done := make(chan struct{}, 100)
	job := func(key string, iv time.Duration) Job {
		return Job{Key: key, Interval: iv, Run: func(_ context.Context, planned time.Time) bool {
			mu.Lock()
			runs[key] = append(runs[key], planned)
			mu.Unlock()
			done <- struct{}{}
			return false
		}}
	}
	h := startScheduler(t, 4, []Job{job("a", 10*time.Second), job("b", 10*time.Second), job("c", 30*time.Second)})
	// Advance one second at a time through a minute: 6 + 6 + 2 runs.
	for i := 0; i < 60; i++ {
		h.advance(time.Second)
	}
	for i := 0; i < 14; i++ {
		<-done
	}
	h.stop()
	mu.Lock()
	defer mu.Unlock()
	for key, want := range map[string]int{"a": 6, "b": 6, "c": 2} {
		if len(runs[key]) != want {
			t.Errorf("%s ran %d times, want %d", key, len(runs[key]), want)
		}
		iv := map[string]time.Duration{"a": 10 * time.Second, "b": 10 * time.Second, "c": 30 * time.Second}[key]
		for i, p := range runs[key] {
			if off := p.Sub(p.Truncate(iv)); off != startOffset(key, iv) {
				t.Errorf("%s run %d planned at offset %v, want its phase %v", key, i, off, startOffset(key, iv))
			}
			if i > 0 && p.Sub(runs[key][i-1]) != iv {
				t.Errorf("%s runs %v apart, want %v", key, p.Sub(runs[key][i-1]), iv)
			}
		}
	}
}

func TestSchedulerNeverOverlapsAJob(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	h := startScheduler(t, 4, []Job{{Key: "slow", Interval: 10 * time.Second, Run: func(ctx context.Context, _ time.Time) bool {
		started <- struct{}{}
		select {
		case <-release:
			return false
		case <-ctx.Done():
			return true
		}
	}}})
	h.advance(10 * time.Second) // first run starts and hangs
	<-started
	for i := 0; i < 3; i++ {
		h.advance(10 * time.Second)
	}
	if got := skipped(h.s, "overlap"); got != 3 {
		t.Errorf("overlap skips = %v, want 3", got)
	}
	if len(started) != 0 {
		t.Error("a second run started while the first was still going")
	}
	close(release)
}

func TestSchedulerSkipsWhenSaturated(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	ran := map[string]int{}
	var jobs []Job
	for i := 0; i < 5; i++ {
		key := fmt.Sprintf("hang-%d", i)
		jobs = append(jobs, Job{Key: key, Interval: 10 * time.Second, Run: func(ctx context.Context, _ time.Time) bool {
			mu.Lock()
			ran[key]++
			mu.Unlock()
			select {
			case <-release:
				return false
			case <-ctx.Done():
				return true
			}
		}})
	}
	h := startScheduler(t, 2, jobs)
	for i := 0; i < 10; i++ {
		h.advance(time.Second)
	}
	// Two workers: two jobs run, the other three wait for a worker.
	if got := skipped(h.s, "saturated"); got != 0 {
		t.Errorf("saturated skips = %v, want 0 while the runs wait", got)
	}
	if got := testutil.ToFloat64(h.s.metrics.running); got != 2 {
		t.Errorf("running = %v, want 2", got)
	}
	// A whole interval later the waiting runs are due again: their first
	// runs are lost, counted once each, and one run per job still waits.
	for i := 0; i < 10; i++ {
		h.advance(time.Second)
	}
	if got := skipped(h.s, "saturated"); got != 3 {
		t.Errorf("saturated skips = %v, want 3", got)
	}
	h.s.mu.Lock()
	waiting := len(h.s.waiting)
	h.s.mu.Unlock()
	if waiting != 3 {
		t.Errorf("%d runs waiting, want 3", waiting)
	}
	// Health counts every skip: the three lost waiting runs and the two
	// running jobs' overlaps.
	if n, _ := h.s.Health(); n != 5 {
		t.Errorf("Health = %d skipped, want 5", n)
	}
	close(release)
	// Two quiet minutes later the agent is healthy again.
	for range 13 {
		h.advance(10 * time.Second)
	}
	if n, _ := h.s.Health(); n != 0 {
		t.Errorf("Health = %d skipped after two quiet minutes", n)
	}
}

// TestSchedulerDelaysRatherThanDropsABurst: more runs fall due at one
// instant than there are workers, every interval. Each still runs once per
// interval: the ones beyond the limit wait for a worker, and not the same
// ones are dropped every time.
func TestSchedulerDelaysRatherThanDropsABurst(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	ran := map[string]int{}
	var jobs []Job
	for i := range 6 {
		key := fmt.Sprintf("burst-%d", i)
		jobs = append(jobs, Job{Key: key, Interval: 10 * time.Second, Run: func(ctx context.Context, _ time.Time) bool {
			select {
			case <-gate:
			case <-ctx.Done():
				return true
			}
			mu.Lock()
			ran[key]++
			mu.Unlock()
			return false
		}})
	}
	h := startScheduler(t, 2, jobs)
	for range 3 {
		h.advance(10 * time.Second) // every job due at once
		for {
			clocktest.WaitIdle(t, 30*time.Second)
			h.s.mu.Lock()
			busy := h.s.inFlight > 0 || len(h.s.waiting) > 0
			h.s.mu.Unlock()
			if !busy {
				break
			}
			gate <- struct{}{}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, j := range jobs {
		if ran[j.Key] != 3 {
			t.Errorf("%s ran %d times in 3 intervals, want 3 (runs: %v)", j.Key, ran[j.Key], ran)
		}
	}
	if got := skipped(h.s, "saturated"); got != 0 {
		t.Errorf("saturated skips = %v, want 0", got)
	}
}

func TestSchedulerReloadKeepsPhasesAndStopsRemovedJobs(t *testing.T) {
	removedCtx := make(chan context.Context, 1)
	counts := make(chan string, 100)
	mk := func(key string) Job {
		return Job{Key: key, Interval: 10 * time.Second, Run: func(ctx context.Context, _ time.Time) bool {
			if key == "gone" {
				removedCtx <- ctx
				<-ctx.Done()
				return true
			}
			counts <- key
			return false
		}}
	}
	h := startScheduler(t, 8, []Job{mk("kept"), mk("gone")})
	nextBefore := h.s.jobs["kept"].next
	for i := 0; i < 10; i++ {
		h.advance(time.Second)
	}
	ctx := <-removedCtx
	<-counts // "kept" ran once

	h.s.Set([]Job{mk("kept"), mk("new")})
	h.park()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("removed job's run was not cancelled")
	}
	if got := h.s.jobs["kept"].next; got != nextBefore.Add(10*time.Second) {
		t.Errorf("kept job next run = %v, want %v (phase kept)", got, nextBefore.Add(10*time.Second))
	}
	if _, ok := h.s.jobs["gone"]; ok {
		t.Error("removed job is still scheduled")
	}
	for i := 0; i < 10; i++ {
		h.advance(time.Second)
	}
	seen := map[string]int{}
	for len(seen) < 2 {
		seen[<-counts]++
	}
	if seen["kept"] != 1 || seen["new"] != 1 {
		t.Errorf("after reload runs = %v, want one each of kept and new", seen)
	}
}

func TestSchedulerCatchesUpAfterAClockJump(t *testing.T) {
	runs := make(chan time.Time, 10)
	h := startScheduler(t, 2, []Job{{Key: "j", Interval: 10 * time.Second, Run: func(_ context.Context, p time.Time) bool { runs <- p; return false }}})
	h.advance(65 * time.Second) // suspended host wakes up
	<-runs
	if got := skipped(h.s, "behind"); got < 5 {
		t.Errorf("behind skips = %v, want the missed runs counted (>= 5)", got)
	}
	if len(runs) != 0 {
		t.Error("missed runs were replayed in a burst")
	}
}

// TestSchedulerRunNowRunsBackToBack: a confirmation asks for as many runs
// as the check's rule needs; they run one after the other, marked as
// confirmations, and the count is bounded.
func TestSchedulerRunNowRunsBackToBack(t *testing.T) {
	defer goleak.VerifyNone(t)
	var mu sync.Mutex
	var confirmations int
	done := make(chan struct{}, 100)
	h := startScheduler(t, 4, []Job{{Key: "a", Interval: time.Hour, Run: func(ctx context.Context, _ time.Time) bool {
		mu.Lock()
		if isConfirmation(ctx) {
			confirmations++
		}
		mu.Unlock()
		done <- struct{}{}
		return false
	}}})
	if !h.s.RunNow("a", 3) {
		t.Fatal("RunNow refused an idle job")
	}
	for range 3 {
		<-done
	}
	clocktest.WaitIdle(t, 10*time.Second)
	if !h.s.RunNow("a", 1000) {
		t.Fatal("RunNow refused an idle job")
	}
	for range wire.MaxConfirmRuns {
		<-done
	}
	clocktest.WaitIdle(t, 10*time.Second)
	h.stop()
	mu.Lock()
	defer mu.Unlock()
	if confirmations != 3+wire.MaxConfirmRuns {
		t.Errorf("%d confirmation runs, want 3 then the bound, %d", confirmations, wire.MaxConfirmRuns)
	}
}
