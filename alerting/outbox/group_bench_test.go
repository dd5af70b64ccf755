package outbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// BenchmarkStormEnqueue: 1,000 checks' DOWN triggers and their resolves
// enqueued as fast as the evaluator decides them, one by one or 100 at a
// time, with each notifier stage: every incident on its own (the storm guard off),
// the default storm guard, and grouping by service. Every accepted
// notification is on disk (fsync) before Enqueue returns, in every mode;
// nothing is delivered (the pipeline does not run).
func BenchmarkStormEnqueue(b *testing.B) {
	modes := []struct {
		name string
		pol  GroupPolicy
	}{
		{"single", GroupPolicy{}},
		{"storm-guard", GroupPolicy{Storm: storm(20)}},
		{"grouped", GroupPolicy{Grouping: byService(10*time.Second, time.Minute), Storm: storm(20)}},
	}
	downs := make([]notify.Notification, 1000)
	for i := range downs {
		downs[i] = down(fmt.Sprintf("svc%d-%03d", i%10, i))
	}
	resolves := make([]notify.Notification, len(downs))
	for i, n := range downs {
		resolves[i] = notifytest.ResolveOf(n)
	}
	// batch is how many notifications go in one hand-over: 1 is Enqueue,
	// 100 is EnqueueAll with a batch of results' decisions.
	for _, batch := range []int{1, 100} {
		for _, m := range modes {
			b.Run(fmt.Sprintf("%s/batch=%d", m.name, batch), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					h := newPipe(b, b.TempDir(), map[string]notify.Notifier{"oncall": &notifytest.Recorder{}}, withGroups(m.pol))
					b.StartTimer()
					for _, ns := range [][]notify.Notification{downs, resolves} {
						for i := 0; i < len(ns); i += batch {
							if err := h.p.EnqueueAll(ns[i:min(i+batch, len(ns))]); err != nil {
								b.Fatal(err)
							}
						}
					}
					b.StopTimer()
					h.stop()
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*len(downs))/1e3, "µs/notification")
			})
		}
	}
}
