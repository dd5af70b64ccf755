package shape

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// BenchmarkSeriesAdd is the hot path of a series check: Tracker.Add for
// one value (judged, learned, the recurring forecast checked) on a warm
// tracker with the default shape settings, at a 1m interval.
func BenchmarkSeriesAdd(b *testing.B) {
	cfg, err := checks.LoadBytes("b.yaml", []byte("version: 1\nchecks:\n  - {id: rps, interval: 1m, series: {prometheus: {url: 'http://127.0.0.1:9090', query: up}}}\n"), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := cfg.Checks[0]
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = 100 * math.Exp(0.2*rng.NormFloat64())
	}
	t := NewTracker(c)
	now := benchStart
	rs := make([]wire.Result, len(vals))
	for i := range rs {
		rs[i] = wire.Result{Check: c.ID, OK: true, Observed: wire.Observed{Value: &vals[i]}}
	}
	for i := range 3 * 24 * 60 { // three days: every slot warm
		t.Add(&rs[i%len(rs)], now)
		now = now.Add(c.Interval)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t.Add(&rs[i%len(rs)], now)
		now = now.Add(c.Interval)
	}
}
