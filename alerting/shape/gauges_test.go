package shape

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// TestGaugesAreStatus: what metrics read of a tracker (Gauges) is what
// Status reports, cold and warm, for latency and series trackers.
func TestGaugesAreStatus(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	cfg, err := checks.LoadBytes("s.yaml", []byte("version: 1\nchecks:\n  - {id: rps, interval: 1m, series: {prometheus: {url: 'http://127.0.0.1:9090', query: up}}, shape: {spike: {max_ratio: 4}, seasonality: none}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    *checks.Check
	}{{"latency", latencyCheck(t, "30s", "{warmup: 1h, seasonality: none}")}, {"series", cfg.Checks[0]}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.c)
			rng := rand.New(rand.NewPCG(1, 2))
			sawWarm := false
			for i, now := 0, start; now.Before(start.Add(3 * time.Hour)); i, now = i+1, now.Add(tc.c.Interval) {
				r := wire.Result{V: 1, Check: tc.c.ID, OK: tc.c.Series == nil || i%13 != 0, Duration: steady(rng, 0.05, 0.2)}
				if tc.c.Series != nil {
					r.Observed.Value = new(100 * steady(rng, 1, 0.1))
				}
				tr.Add(&r, now)
				st := tr.Status(now)
				g, dets := tr.Gauges(now, nil)
				sawWarm = sawWarm || g.Warm
				if g.Warm != st.Warm || g.Series != tr.Series() || len(dets) != len(st.Findings)+b2i(st.Forecast != nil) {
					t.Fatalf("%v: gauges %+v (%v), status %+v", now, g, dets, st)
				}
				if g.Series {
					if g.HasValue != (st.Value != nil) || (st.Value != nil && g.Value != *st.Value) || g.Usual != st.Usual.Value {
						t.Fatalf("%v: gauges %+v, status value %v usual %v", now, g, st.Value, st.Usual)
					}
					continue
				}
				if l := st.Latency; g.Samples != l.Samples || g.Latency != l.Quantiles || g.UsualLatency != l.Usual {
					t.Fatalf("%v: gauges %+v, status %+v", now, g, l)
				}
			}
			if !sawWarm {
				t.Fatal("the tracker never warmed: the test compared cold trackers only")
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
