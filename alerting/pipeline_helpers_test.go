package alerting

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// testRoutingKey looks like a real integration key: 32 characters.
const testRoutingKey = "R0UT1NGKEY0123456789abcdefABCDEF"

// pipe is a running pipeline with its clock, logs and metrics.
type pipe struct {
	t     testing.TB
	p     *Pipeline
	clock *clocktest.Fake
	reg   *prometheus.Registry
	logs  *syncBuffer
	dir   string

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type pipeOption func(*PipelineOptions)

// newPipe opens a pipeline on dir with notifiers; it does not run it.
func newPipe(t testing.TB, dir string, notifiers map[string]Notifier, opts ...pipeOption) *pipe {
	t.Helper()
	h := &pipe{t: t, clock: clocktest.New(t0), reg: prometheus.NewRegistry(), logs: &syncBuffer{}, dir: dir}
	o := PipelineOptions{Notifiers: notifiers, Dir: dir, Clock: h.clock, Logger: slogTo(h.logs), Registerer: h.reg}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := NewPipeline(o)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	h.p = p
	t.Cleanup(h.stop)
	return h
}

// startPipe is newPipe, running.
func startPipe(t testing.TB, dir string, notifiers map[string]Notifier, opts ...pipeOption) *pipe {
	t.Helper()
	h := newPipe(t, dir, notifiers, opts...)
	h.run()
	return h
}

func (h *pipe) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.p.Run(ctx) }()
}

// stop cancels Run, waits for it and closes the pipeline; it is idempotent.
func (h *pipe) stop() {
	h.t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	if h.cancel != nil {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			h.t.Fatal("Run did not return after cancel")
		}
	}
	if err := h.p.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
}

func (h *pipe) enqueue(n Notification, to ...string) {
	h.t.Helper()
	if err := h.p.Enqueue(n, to); err != nil {
		h.t.Fatalf("Enqueue(%s %s): %v", n.Action, n.Key, err)
	}
}

func (h *pipe) count(notifier, result string) float64 {
	return testutil.ToFloat64(h.p.metrics.result(notifier, result))
}

func (h *pipe) pendingGauge(notifier string) float64 {
	return testutil.ToFloat64(h.p.metrics.pending[notifier])
}

// waitFor polls cond until it holds, failing after 10s of real time.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	pollUntil(t, 10*time.Second, 2*time.Millisecond, what, cond)
}

// pollUntil polls cond every poll until it holds, failing after limit of
// real time. It waits for real peers (goroutines, servers), never through
// an interval of Outpost's own, which runs on a fake clock.
func pollUntil(t testing.TB, limit, poll time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(poll)
	}
}

// recordNotifier records what it is given and answers from a script.
type recordNotifier struct {
	mu  sync.Mutex
	got []Notification
	// script holds the answers to the next calls; when empty, success.
	script []scripted
	calls  int
}

type scripted struct {
	retry bool
	err   error
}

func (r *recordNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.script) > 0 {
		s := r.script[0]
		r.script = r.script[1:]
		if s.err != nil {
			return s.retry, s.err
		}
	}
	r.got = append(r.got, n)
	return false, nil
}

func (r *recordNotifier) failNext(n int, retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.script = append(r.script, scripted{retry: retry, err: errors.New("scripted failure")})
	}
}

func (r *recordNotifier) delivered() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

func (r *recordNotifier) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// summaries lists "action key summary" for each notification.
func summaries(ns []Notification) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Action+" "+n.Key+" "+n.Summary)
	}
	return strings.Join(out, "\n")
}

func newTestPagerDuty(t testing.TB, url string) *PagerDutyNotifier {
	t.Helper()
	pd, err := NewPagerDutyNotifier(&checks.PagerDutyNotifier{RoutingKey: checks.NewSecret(testRoutingKey), URL: url}, NotifierOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pd.CloseIdleConnections)
	return pd
}

// pageDown is a trigger with evidence from two regions.
func pageDown(key string) Notification {
	return Notification{
		Kind: "check_down", Action: ActionTrigger, Key: key, Route: RouteCritical, Severity: SeverityCritical,
		Summary: "web-home DOWN in 2 of 3 regions: status 503, want 200", Check: "web-home", Source: "evaluator-eu",
		Group: "web", Class: "http", Link: "https://status.example.com/checks/web-home", Time: t0,
		Details: map[string]string{"quorum": "2/3"},
		Evidence: []RegionEvidence{
			{Region: "us-east", State: "FAILING", Reason: "status 503, want 200", StatusCode: 503,
				ResolvedIPs: []string{"203.0.113.10"}, ConnectedAddr: "203.0.113.10:443",
				DNSAnswers: map[string][]string{"system": {"203.0.113.10"}},
				Phases:     map[string]float64{"resolve": 0.002, "connect": 0.011, "total": 0.120}},
			{Region: "eu-west", State: "FAILING", Reason: "connect: connection refused",
				ResolvedIPs: []string{"198.51.100.7"}, Phases: map[string]float64{"resolve": 0.004, "total": 0.015}},
			{Region: "ap-south", State: "OK", StatusCode: 200, ConnectedAddr: "203.0.113.10:443"},
		},
	}
}

func resolveOf(n Notification) Notification {
	return Notification{Kind: "check_up", Action: ActionResolve, Key: n.Key, Route: n.Route, Severity: SeverityInfo,
		Summary: "web-home OK again", Check: n.Check, Source: n.Source, Link: n.Link, Time: t0.Add(10 * time.Minute)}
}
