package shape

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// latencyCheck loads one http check with the given interval and shape
// block.
func latencyCheck(t *testing.T, interval, shape string) *checks.Check {
	t.Helper()
	y := "version: 1\nchecks:\n  - id: c\n    interval: " + interval + "\n    http: {url: \"http://127.0.0.1:1/\"}\n"
	if shape != "" {
		y += "    shape: " + shape + "\n"
	}
	cfg, err := checks.LoadBytes("s.yaml", []byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Checks[0]
}

// feed adds one passing probe of latency d(i) every interval from start
// to end, and returns the tail-shift findings seen at any bucket close,
// and the highest window p99 seen.
func feed(tr *Tracker, c *checks.Check, start, end time.Time, d func(i int) float64) (found []Finding, maxP99 float64) {
	i := 0
	for now := start; now.Before(end); now = now.Add(c.Interval) {
		r := wire.Result{V: 1, Check: c.ID, OK: true, Duration: d(i)}
		r.Phases.Processing = r.Duration
		tr.Add(&r, now)
		fs, _, _ := tr.Findings()
		for _, f := range fs {
			if f.Detector == DetectorTailShift && (len(found) == 0 || found[len(found)-1].Explanation != f.Explanation) {
				found = append(found, f)
			}
		}
		maxP99 = max(maxP99, tr.win.Total.P99)
		i++
	}
	return found, maxP99
}

// steady is a fast service on loopback: 1 ms at p50, log-normal noise.
func steady(rng *rand.Rand, p50, sigma float64) float64 {
	return p50 * math.Exp(sigma*rng.NormFloat64())
}

// A scheduler stall (one probe of 40–80 ms on a 1 ms service, or two in
// one window) is not a service-wide tail shift: with 30 probes a window,
// p99 is not judged at all (it would be the second-largest probe) and p90
// is the fourth-largest.
func TestTailShiftIgnoresSchedulerStalls(t *testing.T) {
	c := latencyCheck(t, "30s", "")
	tr := NewTracker(c)
	rng := rand.New(rand.NewPCG(1, 1))
	start := benchStart
	warm := start.Add(2 * day)
	if f, _ := feed(tr, c, start, warm, func(int) float64 { return steady(rng, 0.001, 0.2) }); len(f) > 0 {
		t.Fatalf("steady traffic found %s", f[0].Explanation)
	}
	stalls := map[int]bool{20: true, 200: true, 203: true} // one alone, then two in one window
	found, maxP99 := feed(tr, c, warm, warm.Add(3*time.Hour), func(i int) float64 {
		if stalls[i] {
			return 0.040 + 0.040*rng.Float64()
		}
		return steady(rng, 0.001, 0.2)
	})
	if len(found) > 0 {
		t.Fatalf("a stall was taken for a tail shift: %s", found[0].Explanation)
	}
	if maxP99 < 0.030 {
		t.Fatalf("no window's p99 showed the stalls (max %v): the test proves nothing", maxP99)
	}
}

// A real tail shift, p99 from about 20 ms to 80 ms, is found when the
// window has the samples for p99 (a 1s interval: 900 probes a window),
// and named as p99; with 90 probes a window (10s) the same shift gives no
// p99 verdict, although the window's p99 shows it, and p90 did not move.
func TestTailShiftNeedsTheSamplesForP99(t *testing.T) {
	for _, tc := range []struct {
		interval string
		want     bool
	}{{"1s", true}, {"10s", false}} {
		t.Run(tc.interval, func(t *testing.T) {
			c := latencyCheck(t, tc.interval, "{seasonality: none}")
			tr := NewTracker(c)
			rng := rand.New(rand.NewPCG(2, 2))
			start := benchStart
			warm := start.Add(4 * time.Hour)
			if f, _ := feed(tr, c, start, warm, func(int) float64 { return steady(rng, 0.010, 0.3) }); len(f) > 0 {
				t.Fatalf("steady traffic found %s", f[0].Explanation)
			}
			usual := tr.Status(warm).Latency.Usual.P99
			if usual < 0.015 || usual > 0.025 {
				t.Fatalf("usual p99 %v, want about 20 ms", usual)
			}
			found, maxP99 := feed(tr, c, warm, warm.Add(time.Hour), func(int) float64 {
				if rng.IntN(100) < 3 {
					return 0.080 * (0.9 + 0.2*rng.Float64())
				}
				return steady(rng, 0.010, 0.3)
			})
			if maxP99 < 3*usual {
				t.Fatalf("the window's p99 reached only %v: the test proves nothing", maxP99)
			}
			if !tc.want {
				if len(found) > 0 {
					t.Fatalf("%d probes a window judged p99: %s", tr.win.Samples, found[0].Explanation)
				}
				return
			}
			if len(found) == 0 {
				t.Fatalf("p99 %v -> %v over %d probes a window: not found", usual, maxP99, tr.win.Samples)
			}
			if e := found[0].Explanation; !strings.HasPrefix(e, "tail shift: p99 ") || strings.Contains(e, "not judged") {
				t.Errorf("want the p99 named: %s", e)
			}
		})
	}
}
