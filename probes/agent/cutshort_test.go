package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/wire"
)

// hangingTarget is an HTTP target that never answers: each request it
// receives is announced on arrived and held until the client gives up.
func hangingTarget(t *testing.T) (url string, arrived chan struct{}) {
	t.Helper()
	arrived = make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		arrived <- struct{}{}
		<-req.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, arrived
}

// hangingJobs returns the job of one HTTP check against url with timeout,
// and where its results go.
func hangingJobs(t *testing.T, url string, timeout time.Duration) ([]Job, chan wire.Result) {
	t.Helper()
	cfg, err := checks.LoadBytes("hang.yaml", fmt.Appendf(nil, `version: 1
regions: [us-east]
checks:
  - id: hang
    interval: 1m
    timeout: %s
    http: {url: %q}
`, timeout, url+"/"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan wire.Result, 10)
	jobs, err := Jobs(cfg, "us-east", probes.Options{}, func(r wire.Result) { results <- r })
	if err != nil {
		t.Fatal(err)
	}
	return jobs, results
}

// startRun moves the fake clock to the job's first run and waits until its
// request has reached the target.
func startRun(t *testing.T, h *schedHarness, key string, arrived chan struct{}) {
	t.Helper()
	h.s.mu.Lock()
	d := h.s.jobs[key].next.Sub(h.clock.Now())
	h.s.mu.Unlock()
	h.advance(d)
	select {
	case <-arrived:
	case <-time.After(repWait):
		t.Fatal("the run never reached the target")
	}
}

func cutShortRuns(s *Scheduler, reason string) float64 {
	return testutil.ToFloat64(s.metrics.cut.WithLabelValues(reason))
}

// A probe the agent cancels, because it stops or because a reload removed
// its check, is not a result: nothing is shipped, and the run is counted.
func TestRunsCutShortByTheAgentAreNotResults(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		cut          func(h *schedHarness)
	}{
		{"agent stops", "stop", func(h *schedHarness) { h.stop() }},
		{"reload removes the check", "removed", func(h *schedHarness) { h.s.Set(nil); h.stop() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, arrived := hangingTarget(t)
			jobs, results := hangingJobs(t, url, 30*time.Second)
			h := startScheduler(t, 4, jobs)
			startRun(t, h, jobs[0].Key, arrived)

			tc.cut(h) // returns once the run has returned
			select {
			case r := <-results:
				t.Fatalf("a run cut short by the agent shipped a result: ok=%v %q", r.OK, r.Reason)
			default:
			}
			if got := cutShortRuns(h.s, tc.reason); got != 1 {
				t.Errorf("runs_cut_short_total{reason=%q} = %v, want 1", tc.reason, got)
			}
		})
	}
}

// The probe's own timeout is a finding about the target: it is shipped.
func TestATimeoutIsStillAFailure(t *testing.T) {
	url, arrived := hangingTarget(t)
	jobs, results := hangingJobs(t, url, 200*time.Millisecond)
	h := startScheduler(t, 4, jobs)
	startRun(t, h, jobs[0].Key, arrived)
	select {
	case r := <-results:
		if r.OK || !strings.HasPrefix(r.Reason, "timed out after 200ms") {
			t.Fatalf("result ok=%v %q, want a timeout failure", r.OK, r.Reason)
		}
	case <-time.After(repWait):
		t.Fatal("no result from a run that timed out")
	}
	h.stop()
	for _, reason := range []string{"stop", "removed"} {
		if got := cutShortRuns(h.s, reason); got != 0 {
			t.Errorf("runs_cut_short_total{reason=%q} = %v after a genuine timeout", reason, got)
		}
	}
}

// A run confirming a failure for an evaluator is cut short the same way.
func TestConfirmationRunCutShortIsNotAResult(t *testing.T) {
	url, arrived := hangingTarget(t)
	jobs, results := hangingJobs(t, url, 30*time.Second)
	h := startScheduler(t, 4, jobs)
	if !h.s.RunNow(jobs[0].Key, 2) {
		t.Fatal("RunNow did not start the run")
	}
	select {
	case <-arrived:
	case <-time.After(repWait):
		t.Fatal("the run never reached the target")
	}
	h.stop()
	if len(results) != 0 {
		r := <-results
		t.Fatalf("a confirmation run cut short shipped ok=%v %q", r.OK, r.Reason)
	}
	if got := cutShortRuns(h.s, "stop"); got != 1 {
		t.Errorf("runs_cut_short_total{reason=stop} = %v, want 1", got)
	}
}

// The scheduler counts the runs that say they were cut short, not every
// run whose context ended: one that kept its result as the agent stopped
// (a passing probe, or one that returned just before) was not cut short.
func TestOnlyRunsThatDroppedTheirResultAreCutShort(t *testing.T) {
	started := make(chan struct{}, 2)
	job := func(key string, dropped bool) Job {
		return Job{Key: key, Interval: time.Minute, Run: func(ctx context.Context, _ time.Time) bool {
			started <- struct{}{}
			<-ctx.Done()
			return dropped
		}}
	}
	h := startScheduler(t, 4, []Job{job("kept", false), job("dropped", true)})
	h.advance(time.Minute)
	for range 2 {
		select {
		case <-started:
		case <-time.After(repWait):
			t.Fatal("the runs never started")
		}
	}
	h.stop()
	if got := cutShortRuns(h.s, "stop"); got != 1 {
		t.Errorf("runs_cut_short_total{reason=\"stop\"} = %v, want 1: only the run that dropped its result", got)
	}
}
