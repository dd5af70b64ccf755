package agent

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// Job is one check in one region, run every Interval.
type Job struct {
	// Key identifies the job across reloads and fixes its phase: the same
	// key and interval always run at the same offset within the interval.
	Key      string
	Interval time.Duration
	// Timeout is the longest a run takes (the check's timeout); with
	// Interval it says how many workers the job needs at most (see
	// AutoWorkers). Zero counts as the whole interval.
	Timeout time.Duration
	// Run does the work. It gets a context that ends when the scheduler
	// stops or the job is removed, and must return by then. It reports
	// whether the agent cut it short: its context ended (cutShort says
	// why) and it dropped what it saw, which says nothing about the
	// target. A job built by Jobs drops a failing result of such a run.
	// The scheduler counts the runs cut short; a run that returned before
	// its context ended was not, whatever happens after.
	Run func(ctx context.Context, planned time.Time) (cut bool)
}

// Scheduler runs jobs on time with bounded concurrency. Start times are
// spread over each interval by a hash of the job key, so ten thousand checks
// do not fire in the same second. A job never overlaps itself. When every
// worker is busy, a due run waits, in the order runs fell due, for the
// next free worker; a job holds at most one waiting run, and a run that
// waits until its job is due again is skipped and counted. So a burst of
// due runs delays some of them a little instead of dropping the same
// ones every interval.
//
// With AutoWorkers the limit follows the jobs: enough workers for every job
// to run its whole timeout on every run, twice over, so that targets that
// hang delay only their own checks and no run is skipped for want of a
// worker.
type Scheduler struct {
	clock   clock.Clock
	wake    chan struct{}
	metrics schedulerMetrics
	auto    bool // the limit follows the jobs (AutoWorkers)

	mu       sync.Mutex
	jobs     map[string]*jobState
	due      jobHeap
	limit    int // most runs at once
	inFlight int
	waiting  []*jobState // runs due while every worker was busy, oldest first
	wg       sync.WaitGroup

	// Skips of the current and the previous healthWindow, for Health.
	skipWindow     time.Time
	skipsNow       int
	skipsPrevious  int
	lastSkipReason string
}

// Why a run was cut short by the agent: the causes of a job context's end.
var (
	// errSchedulerStopped: the scheduler's Run returned (the agent stops).
	errSchedulerStopped = errors.New("the agent stopped")
	// errJobRemoved: Set no longer has the job (a reload removed its check).
	errJobRemoved = errors.New("a reload removed the check")
)

// cutShort reports whether the run with context ctx was cancelled by the
// scheduler (errSchedulerStopped, errJobRemoved) rather than ending on its
// own, and returns the cause.
func cutShort(ctx context.Context) (bool, error) {
	if ctx.Err() == nil {
		return false, nil
	}
	cause := context.Cause(ctx)
	return errors.Is(cause, errSchedulerStopped) || errors.Is(cause, errJobRemoved), cause
}

// healthWindow is the span Health reports skipped runs over.
const healthWindow = time.Minute

// Health says whether runs were skipped lately: how many in the last one
// to two minutes, and the reason of the latest. A scheduler that skips
// runs is not keeping its checks' schedule, however fast the runs it does
// start.
func (s *Scheduler) Health() (skipped int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollSkips(s.clock.Now())
	return s.skipsNow + s.skipsPrevious, s.lastSkipReason
}

// rollSkips moves the skip windows on to now. s.mu is held.
func (s *Scheduler) rollSkips(now time.Time) {
	switch {
	case now.Sub(s.skipWindow) >= 2*healthWindow:
		s.skipWindow, s.skipsNow, s.skipsPrevious = now, 0, 0
	case now.Sub(s.skipWindow) >= healthWindow:
		s.skipWindow, s.skipsNow, s.skipsPrevious = now, 0, s.skipsNow
	}
}

// AutoWorkers, as NewScheduler's workers, sizes the in-flight limit from
// the jobs (neededWorkers) and resizes it at every Set.
const AutoWorkers = 0

// minWorkers is the smallest automatic limit: room for confirmation runs
// and a reload's new jobs before the next Set.
const minWorkers = 16

// neededWorkers is the automatic in-flight limit for jobs: twice the sum
// over jobs of timeout/interval (the workers they keep busy if every run
// lasts its whole timeout), rounded up, and at least minWorkers.
func neededWorkers(jobs []Job) int {
	need := 0.0
	for _, j := range jobs {
		if j.Interval <= 0 {
			continue
		}
		run := j.Timeout
		if run <= 0 || run > j.Interval {
			run = j.Interval
		}
		need += float64(run) / float64(j.Interval)
	}
	return max(minWorkers, int(math.Ceil(2*need)))
}

type jobState struct {
	job     Job
	next    time.Time
	index   int // in the heap; -1 when removed
	running bool
	// waiting: a run fell due while every worker was busy; it starts at
	// the next free worker, late from waitPlanned.
	waiting     bool
	waitPlanned time.Time
	ctx         context.Context
	cancel      context.CancelCauseFunc
}

type schedulerMetrics struct {
	skipped  *prometheus.CounterVec
	cut      *prometheus.CounterVec
	lateness prometheus.Histogram
	running  prometheus.Gauge
	jobs     prometheus.Gauge
	workers  prometheus.Gauge
}

// NewScheduler returns a scheduler running at most workers jobs at once
// (AutoWorkers: as many as the jobs need), with its metrics registered in
// reg.
func NewScheduler(clock clock.Clock, workers int, reg prometheus.Registerer) (*Scheduler, error) {
	s := &Scheduler{
		clock: clock,
		auto:  workers <= AutoWorkers,
		limit: max(workers, 1),
		wake:  make(chan struct{}, 1),
		jobs:  map[string]*jobState{},
		metrics: schedulerMetrics{
			skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "outpost_scheduler_skipped_total",
				Help: "Runs skipped: overlap (the previous run of the job was still going), saturated (every worker busy) or behind (the scheduler fell a whole interval behind).",
			}, []string{"reason"}),
			cut: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "outpost_scheduler_runs_cut_short_total",
				Help: "Runs the agent cancelled while they ran, whose failing results were dropped, not shipped, since they say nothing about the target: stop (the agent stopped) or removed (a reload removed their check). A run that still passed, or finished first, is not counted.",
			}, []string{"reason"}),
			lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "outpost_scheduler_lateness_seconds",
				Help: "Actual minus planned start time of job runs. A skipped run counts as late by its whole interval, so skips show here too.",
				Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5,
					10, 30, 60, 300},
			}),
			running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_scheduler_running", Help: "Job runs in progress."}),
			jobs:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_scheduler_jobs", Help: "Jobs scheduled."}),
			workers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "outpost_scheduler_workers", Help: "Most job runs in progress at once: the in-flight limit."}),
		},
	}
	if s.auto {
		s.limit = minWorkers
	}
	s.metrics.workers.Set(float64(s.limit))
	for _, c := range []prometheus.Collector{s.metrics.skipped, s.metrics.cut, s.metrics.lateness, s.metrics.running, s.metrics.jobs, s.metrics.workers} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{"overlap", "saturated", "behind"} {
		s.metrics.skipped.WithLabelValues(r)
	}
	for _, r := range []string{"stop", "removed"} {
		s.metrics.cut.WithLabelValues(r)
	}
	return s, nil
}

// startOffset returns the offset within interval at which key runs.
func startOffset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// nextRun returns the first time at or after now that sits at key's start
// offset on the interval grid counted from the Unix epoch.
func nextRun(key string, interval time.Duration, now time.Time) time.Time {
	base := now.Truncate(interval).Add(startOffset(key, interval))
	if base.Before(now) {
		base = base.Add(interval)
	}
	return base
}

// Set replaces the scheduled jobs. Jobs whose key and interval are unchanged
// keep their place; removed jobs are cancelled (errJobRemoved); new jobs
// start at their phase. A run in progress of a job that stays finishes
// under the definition it started with: a reload never cuts it short.
func (s *Scheduler) Set(jobs []Job) {
	now := s.clock.Now()
	s.mu.Lock()
	keep := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		keep[j.Key] = true
		if st, ok := s.jobs[j.Key]; ok {
			st.job.Run, st.job.Timeout = j.Run, j.Timeout
			if st.job.Interval == j.Interval {
				continue
			}
			st.job.Interval = j.Interval
			st.next = nextRun(j.Key, j.Interval, now)
			heap.Fix(&s.due, st.index)
			continue
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		st := &jobState{job: j, next: nextRun(j.Key, j.Interval, now), ctx: ctx, cancel: cancel}
		s.jobs[j.Key] = st
		heap.Push(&s.due, st)
	}
	for key, st := range s.jobs {
		if !keep[key] {
			st.cancel(errJobRemoved)
			heap.Remove(&s.due, st.index)
			delete(s.jobs, key)
		}
	}
	s.metrics.jobs.Set(float64(len(s.jobs)))
	if s.auto {
		all := make([]Job, 0, len(s.jobs))
		for _, st := range s.jobs {
			all = append(all, st.job)
		}
		s.limit = neededWorkers(all)
		s.metrics.workers.Set(float64(s.limit))
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dispatches jobs until ctx ends, then cancels the runs in progress
// (errSchedulerStopped) and waits for them.
func (s *Scheduler) Run(ctx context.Context) {
	defer func() {
		s.mu.Lock()
		for _, st := range s.jobs {
			st.cancel(errSchedulerStopped)
		}
		s.mu.Unlock()
		s.wg.Wait()
	}()
	for {
		s.mu.Lock()
		wait := time.Hour
		if len(s.due) > 0 {
			wait = s.due[0].next.Sub(s.clock.Now())
		}
		s.mu.Unlock()
		if wait > 0 {
			t := s.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.wake:
				t.Stop()
				continue
			case <-t.C():
			}
		} else if ctx.Err() != nil {
			return
		}
		s.dispatchDue()
	}
}

// dispatchDue starts every job whose time has come.
func (s *Scheduler) dispatchDue() {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.due) > 0 && !s.due[0].next.After(now) {
		st := s.due[0]
		planned := st.next
		st.next = planned.Add(st.job.Interval)
		if !st.next.After(now) {
			// A whole interval or more behind (a suspended host, a clock
			// jump): count the missed runs once and rejoin the grid.
			missed := now.Sub(planned) / st.job.Interval
			s.skip("behind", int(missed), st.job.Interval)
			planned = planned.Add(missed * st.job.Interval)
			st.next = planned.Add(st.job.Interval)
		}
		heap.Fix(&s.due, 0)
		if st.running {
			s.skip("overlap", 1, st.job.Interval)
			continue
		}
		if s.inFlight >= s.limit {
			if st.waiting {
				// Its earlier run waited a whole interval: that one is lost.
				s.skip("saturated", 1, st.job.Interval)
			} else {
				st.waiting = true
				s.waiting = append(s.waiting, st)
			}
			st.waitPlanned = planned
			continue
		}
		s.start(st, planned, now)
	}
}

// start runs st's run planned for planned, at now. s.mu is held.
func (s *Scheduler) start(st *jobState, planned, now time.Time) {
	s.inFlight++
	st.running = true
	s.metrics.running.Inc()
	s.metrics.lateness.Observe(now.Sub(planned).Seconds())
	s.wg.Add(1)
	go s.runJob(st, st.job.Run, planned)
}

// startWaiting starts waiting runs while workers are free. s.mu is held.
func (s *Scheduler) startWaiting() {
	for s.inFlight < s.limit && len(s.waiting) > 0 {
		st := s.waiting[0]
		s.waiting[0] = nil
		s.waiting = s.waiting[1:]
		st.waiting = false
		if s.jobs[st.job.Key] != st || st.running || st.ctx.Err() != nil {
			continue // removed, or started by RunNow meanwhile
		}
		s.start(st, st.waitPlanned, s.clock.Now())
	}
}

// skip counts n runs skipped for reason, each late by a whole interval in
// the lateness histogram: a skipped run is the latest run of all. s.mu is
// held.
func (s *Scheduler) skip(reason string, n int, interval time.Duration) {
	s.metrics.skipped.WithLabelValues(reason).Add(float64(n))
	s.rollSkips(s.clock.Now())
	s.skipsNow += n
	s.lastSkipReason = reason
	for range min(n, maxSkipsObserved) {
		s.metrics.lateness.Observe(interval.Seconds())
	}
}

// maxSkipsObserved bounds the lateness observations of one catch-up after
// a clock jump: the counter has the full count.
const maxSkipsObserved = 10

func (s *Scheduler) runJob(st *jobState, run func(context.Context, time.Time) bool, planned time.Time) {
	defer s.wg.Done()
	// The run says whether it was cut short: checking the context after
	// it returns would also count a run that finished just before the
	// agent stopped.
	if run(st.ctx, planned) {
		reason := "stop"
		if errors.Is(context.Cause(st.ctx), errJobRemoved) {
			reason = "removed"
		}
		s.metrics.cut.WithLabelValues(reason).Inc()
	}
	s.metrics.running.Dec()
	s.mu.Lock()
	s.inFlight--
	st.running = false
	s.startWaiting()
	s.mu.Unlock()
}

// RunNow starts the job with key at once, outside its schedule, runs
// times back to back (at least once, at most wire.MaxConfirmRuns), if it
// exists, is not already running and a worker is free; it reports whether
// it started. The runs' context is marked as a confirmation, so a job
// built by Jobs marks its results (wire.Result.Confirm). The job's regular
// schedule is unchanged; a scheduled run that falls due meanwhile is an
// overlap, as for any run that lasts.
func (s *Scheduler) RunNow(key string, runs int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.jobs[key]
	if !ok || st.running {
		return false
	}
	if s.inFlight >= s.limit {
		s.metrics.skipped.WithLabelValues("saturated").Inc()
		return false
	}
	s.inFlight++
	st.running = true
	s.metrics.running.Inc()
	s.wg.Add(1)
	run := st.job.Run
	runs = min(max(runs, 1), wire.MaxConfirmRuns)
	go s.runJob(st, func(ctx context.Context, planned time.Time) (cut bool) {
		ctx = context.WithValue(ctx, confirmationKey{}, true)
		for i := 0; i < runs && ctx.Err() == nil; i++ {
			cut = run(ctx, planned)
		}
		return cut
	}, s.clock.Now())
	return true
}

type confirmationKey struct{}

// isConfirmation reports whether ctx belongs to a run started by RunNow.
func isConfirmation(ctx context.Context) bool {
	v, _ := ctx.Value(confirmationKey{}).(bool)
	return v
}

// jobHeap orders jobs by next run time.
type jobHeap []*jobState

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *jobHeap) Push(x any) {
	st := x.(*jobState)
	st.index = len(*h)
	*h = append(*h, st)
}
func (h *jobHeap) Pop() any {
	old := *h
	st := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	st.index = -1
	return st
}
