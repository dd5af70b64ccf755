package agent

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

func TestNeededWorkers(t *testing.T) {
	job := func(interval, timeout time.Duration) Job { return Job{Interval: interval, Timeout: timeout} }
	many := func(n int, j Job) []Job {
		out := make([]Job, n)
		for i := range out {
			out[i] = j
		}
		return out
	}
	for _, tc := range []struct {
		name string
		jobs []Job
		want int
	}{
		{"none", nil, minWorkers},
		{"a few", many(3, job(30*time.Second, 10*time.Second)), minWorkers},
		{"3000 checks, 5s timeout at 10s", many(3000, job(10*time.Second, 5*time.Second)), 3000},
		{"a timeout longer than the interval counts as the interval", many(100, job(10*time.Second, time.Minute)), 200},
		{"no timeout counts as the interval", many(100, job(10*time.Second, 0)), 200},
		{"mixed", append(many(100, job(time.Minute, 10*time.Second)), many(30, job(10*time.Second, 9*time.Second))...), 88},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := neededWorkers(tc.jobs); got != tc.want {
				t.Errorf("neededWorkers = %d, want %d", got, tc.want)
			}
		})
	}
}

// scheduleRun is what a schedule of hanging and healthy checks did.
type scheduleRun struct {
	healthyRuns, hangingRuns int64
	skipped                  map[string]float64
	lateness                 uint64 // observations
	workers                  float64
}

// runSchedule runs hanging checks (each run waits out its 5s timeout on the
// fake clock, as a probe of a target that never answers does) beside
// healthy ones (each run returns at once), all at a 10s interval, for
// intervals intervals, with the given in-flight limit.
func runSchedule(t *testing.T, workers, hanging, healthy, intervals int) scheduleRun {
	t.Helper()
	clk := clocktest.New(epoch)
	reg := prometheus.NewRegistry()
	s, err := NewScheduler(clk, workers, reg)
	if err != nil {
		t.Fatal(err)
	}
	var out scheduleRun
	var healthyRuns, hangingRuns atomic.Int64
	var jobs []Job
	for i := range hanging {
		jobs = append(jobs, Job{Key: fmt.Sprintf("hang-%d", i), Interval: 10 * time.Second, Timeout: 5 * time.Second,
			Run: func(ctx context.Context, _ time.Time) bool {
				hangingRuns.Add(1)
				timeout := clk.NewTimer(5 * time.Second)
				defer timeout.Stop()
				select {
				case <-timeout.C():
					return false
				case <-ctx.Done():
					return true
				}
			}})
	}
	for i := range healthy {
		jobs = append(jobs, Job{Key: fmt.Sprintf("ok-%d", i), Interval: 10 * time.Second, Timeout: 5 * time.Second,
			Run: func(context.Context, time.Time) bool { healthyRuns.Add(1); return false }})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	s.Set(jobs)
	for range intervals * 10 {
		clocktest.WaitIdle(t, 30*time.Second)
		clk.Advance(time.Second)
	}
	clocktest.WaitIdle(t, 30*time.Second)
	cancel()
	<-done
	out.healthyRuns, out.hangingRuns = healthyRuns.Load(), hangingRuns.Load()
	out.skipped = map[string]float64{}
	for _, r := range []string{"overlap", "saturated", "behind"} {
		out.skipped[r] = skipped(s, r)
	}
	var m dto.Metric
	if err := s.metrics.lateness.Write(&m); err != nil {
		t.Fatal(err)
	}
	out.lateness = m.GetHistogram().GetSampleCount()
	out.workers = testutil.ToFloat64(s.metrics.workers)
	return out
}

// TestHangingTargetsDelayOnlyThemselves: with the in-flight limit sized
// from the checks (the default), 300 checks whose targets hang until the
// timeout and 300 healthy ones all keep their whole schedule: no run is
// skipped. With a fixed limit below what the hanging checks take, the
// healthy ones are starved, and every skipped run shows in the lateness
// signal, not only in a counter.
func TestHangingTargetsDelayOnlyThemselves(t *testing.T) {
	const intervals = 5
	t.Run("limit from the checks", func(t *testing.T) {
		got := runSchedule(t, AutoWorkers, 300, 300, intervals)
		// Every job starts once per interval: 5 runs each, a 6th for those
		// whose offset falls on the last second.
		if got.healthyRuns < 300*intervals || got.hangingRuns < 300*intervals {
			t.Errorf("runs: healthy %d, hanging %d; want at least %d each", got.healthyRuns, got.hangingRuns, 300*intervals)
		}
		for reason, n := range got.skipped {
			if n != 0 {
				t.Errorf("%v runs skipped (%s), want none", n, reason)
			}
		}
		if got.workers != 600 {
			t.Errorf("outpost_scheduler_workers = %v, want 600 (twice 600 checks × 5s/10s)", got.workers)
		}
	})
	t.Run("a fixed limit below the need", func(t *testing.T) {
		got := runSchedule(t, 100, 300, 300, intervals)
		if got.skipped["saturated"] == 0 || got.healthyRuns >= 300*intervals {
			t.Fatalf("no starvation with 100 workers for 300 hanging checks: healthy ran %d, skipped %v", got.healthyRuns, got.skipped)
		}
		started := uint64(got.healthyRuns + got.hangingRuns)
		var skips float64
		for _, n := range got.skipped {
			skips += n
		}
		if got.lateness != started+uint64(skips) {
			t.Errorf("lateness holds %d observations, want %d started + %v skipped", got.lateness, started, skips)
		}
	})
}

// TestThreeThousandHangingChecksSkipNothing is the figure: 3,000
// checks whose targets hang until the 5s timeout at a 10s interval, beside
// 1,000 healthy ones, skip no run with the default limit.
func TestThreeThousandHangingChecksSkipNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("4,000 jobs")
	}
	got := runSchedule(t, AutoWorkers, 3000, 1000, 2)
	for reason, n := range got.skipped {
		if n != 0 {
			t.Errorf("%v runs skipped (%s), want none", n, reason)
		}
	}
	if got.healthyRuns < 2*1000 || got.hangingRuns < 2*3000 {
		t.Errorf("runs: healthy %d, hanging %d", got.healthyRuns, got.hangingRuns)
	}
}
