package outbox

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/pagerduty"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// pipe is a running pipeline with its clock, logs and metrics.
type pipe struct {
	t     testing.TB
	p     *Outbox
	clock *clocktest.Fake
	reg   *prometheus.Registry
	logs  *notifytest.LogBuffer
	dir   string

	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

type pipeOption func(*Options)

// newPipe opens a pipeline on dir with notifiers; it does not run it.
func newPipe(t testing.TB, dir string, notifiers map[string]notify.Notifier, opts ...pipeOption) *pipe {
	t.Helper()
	h := &pipe{t: t, clock: clocktest.New(notifytest.T0), reg: prometheus.NewRegistry(), logs: &notifytest.LogBuffer{}, dir: dir}
	o := Options{Notifiers: notifiers, Dir: dir, Clock: h.clock, Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Registerer: h.reg}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	h.p = p
	t.Cleanup(h.stop)
	return h
}

// startPipe is newPipe, running.
func startPipe(t testing.TB, dir string, notifiers map[string]notify.Notifier, opts ...pipeOption) *pipe {
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

func (h *pipe) enqueue(n notify.Notification, to ...string) {
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

// waitFor waits for the pipeline's goroutines or peers to bring cond about.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	clocktest.WaitFor(t, 10*time.Second, what, cond)
}

var t0 = notifytest.T0

func newTestPagerDuty(t testing.TB, url string) *pagerduty.Notifier {
	t.Helper()
	pd, err := pagerduty.New(&checks.PagerDutyNotifier{RoutingKey: checks.NewSecret(notifytest.RoutingKey), URL: url}, notify.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pd.CloseIdleConnections)
	return pd
}
