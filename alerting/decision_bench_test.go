package alerting

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// timingNotifier records when each notification reached it.
type timingNotifier struct {
	mu sync.Mutex
	at []time.Time
}

func (n *timingNotifier) Notify(context.Context, notify.Notification) (bool, error) {
	n.mu.Lock()
	n.at = append(n.at, time.Now())
	n.mu.Unlock()
	return false, nil
}

func (n *timingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.at)
}

func (n *timingNotifier) last() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.at[len(n.at)-1]
}

var benchRegions = []string{"r1", "r2", "r3", "r4", "r5"}

func loadedEvaluator(b testing.TB, nChecks int) (*Evaluator, *timingNotifier, *clocktest.Fake) {
	b.Helper()
	// The load is a snapshot, not a stream: max_result_age keeps it
	// fresh for the benchmarks' simulated hour.
	var y strings.Builder
	fmt.Fprintf(&y, "regions: [%s]\ndefaults: {interval: 30s, max_result_age: 1h, failure: {consecutive: 1}, recovery: {consecutive: 1}}\nchecks:\n", strings.Join(benchRegions, ", "))
	for i := 0; i < nChecks; i++ {
		fmt.Fprintf(&y, "  - {id: c%05d, http: {url: \"https://example.test/%d\"}}\n", i, i)
	}
	cfg, err := checks.LoadBytes("bench.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &timingNotifier{}
	ev, err := New(cfg, Options{Clock: clk, Notifier: notes})
	if err != nil {
		b.Fatal(err)
	}
	// Every check passing in every region, past the warm-up.
	for _, region := range benchRegions {
		for start := 0; start < nChecks; start += wire.MaxBatchResults {
			var res []wire.Result
			for i := start; i < min(start+wire.MaxBatchResults, nChecks); i++ {
				res = append(res, benchResult(fmt.Sprintf("c%05d", i), region, true, clk.Now()))
			}
			applyBatch(b, ev, region, res, clk)
		}
	}
	clk.Advance(2 * time.Minute)
	for _, region := range benchRegions {
		applyBatch(b, ev, region, nil, clk)
	}
	return ev, notes, clk
}

var benchSeq uint64

func applyBatch(b testing.TB, ev *Evaluator, region string, res []wire.Result, clk *clocktest.Fake) {
	benchSeq++
	if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: benchSeq, Created: clk.Now(), Results: res}); err != nil {
		b.Fatal(err)
	}
}

func benchResult(check, region string, ok bool, now time.Time) wire.Result {
	r := wire.Result{V: 1, Check: check, Type: "http", Region: region, Time: now, OK: ok, Duration: 0.05,
		Observed: wire.Observed{StatusCode: 200, ConnectedAddr: "203.0.113.10:443", ResolvedIPs: []string{"203.0.113.10"}}}
	if !ok {
		r.Reason, r.Observed.StatusCode = "status 503, want 200", 503
	}
	return r
}

// BenchmarkDecisionLatency measures, with 10,000 checks × 5 regions
// loaded, the time from the arrival of the result that completes a quorum
// (the third of five regions failing) to the notifier's first attempt. It
// reports p50 and p99 over the iterations, and the heap per (check, region).
func BenchmarkDecisionLatency(b *testing.B) {
	const nChecks = 10000
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ev, notes, clk := loadedEvaluator(b, nChecks)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perState := float64(m1.HeapInuse-m0.HeapInuse) / float64(nChecks*len(benchRegions))

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		check := fmt.Sprintf("c%05d", i%nChecks)
		clk.Advance(time.Second)
		applyBatch(b, ev, "r1", []wire.Result{benchResult(check, "r1", false, clk.Now())}, clk)
		applyBatch(b, ev, "r2", []wire.Result{benchResult(check, "r2", false, clk.Now())}, clk)
		before := notes.count() // r1 and r2 make it DEGRADED: a warning
		start := time.Now()
		applyBatch(b, ev, "r3", []wire.Result{benchResult(check, "r3", false, clk.Now())}, clk)
		if notes.count() <= before {
			b.Fatalf("iteration %d: no page after the quorum-completing result", i)
		}
		lat = append(lat, notes.last().Sub(start))
		b.StopTimer()
		for _, r := range []string{"r1", "r2", "r3"} { // recover for the next round
			applyBatch(b, ev, r, []wire.Result{benchResult(check, r, true, clk.Now())}, clk)
		}
		applyBatch(b, ev, "r4", nil, clk) // heartbeats keep every region live
		applyBatch(b, ev, "r5", nil, clk)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(perState, "heap-B/state")
}
