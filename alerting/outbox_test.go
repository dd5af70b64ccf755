package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEvaluatorThroughPipeline: the pipeline is the evaluator's notify.Notifier;
// stale regions become meta triggers in the outbox and reach notifiers.
func TestEvaluatorThroughPipeline(t *testing.T) {
	rec := &notifytest.Recorder{}
	clk := clocktest.New(t0)
	pipe, err := outbox.Open(outbox.Options{Notifiers: map[string]notify.Notifier{"log": rec}, Dir: t.TempDir(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); pipe.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; pipe.Close() })
	ev, err := New(loadTestConfig(t), Options{Clock: clk, Notifier: pipe})
	if err != nil {
		t.Fatal(err)
	}
	ev.tick(context.Background(), t0.Add(time.Minute))
	ev.tick(context.Background(), t0.Add(2*time.Minute)) // meta.for later
	waitFor(t, "the meta page", func() bool { return len(rec.Delivered()) == 1 })
	for _, n := range rec.Delivered() {
		if n.Kind != notify.KindMonitoring || n.Action != notify.ActionTrigger || n.Route != notify.RouteMeta || !strings.HasPrefix(n.Summary, "monitoring blind: 3/3 regions silent") {
			t.Errorf("notification %+v", n)
		}
	}
}
