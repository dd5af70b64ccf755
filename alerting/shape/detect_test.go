package shape

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
)

// latencySpec is a loaded check's shape spec with the defaults.
func latencySpec(t *testing.T, extra string) *checks.ShapeSpec {
	t.Helper()
	cfg, err := checks.LoadBytes("s.yaml", []byte("version: 1\nchecks:\n  - id: c\n    http: {url: \"http://127.0.0.1:1/\"}\n"+extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Checks[0].Shape
}

func usual(v float64) Usual { return Usual{Value: v, Spread: 0.1} }

func warmBase() LatencyBaseline {
	b := LatencyBaseline{Warm: true, Slot: "14:00 UTC", P50: usual(0.040), P90: usual(0.050), P99: usual(0.060)}
	for i := range b.Phases {
		b.Phases[i].P50, b.Phases[i].P99 = usual(0.005), usual(0.008)
	}
	return b
}

func latWindow(p50, p90, p99 float64) LatencyWindow {
	w := LatencyWindow{Samples: 30, Total: Quantiles{p50, p90, p99}, Step: 5 * time.Minute}
	for i := range w.Phases {
		w.Phases[i] = PhaseWindow{Samples: 30, P50: 0.005, P99: 0.008}
	}
	return w
}

func TestDetectLatencyTailShift(t *testing.T) {
	spec := latencySpec(t, "")
	now := time.Date(2030, 1, 1, 14, 0, 0, 0, time.UTC)
	with := func(w LatencyWindow, n int) LatencyWindow { w.Samples = n; return w }
	for _, tc := range []struct {
		name string
		win  LatencyWindow
		want bool
	}{
		{"normal", latWindow(0.041, 0.052, 0.065), false},
		{"p99 3x, p50 steady, 300 probes", with(latWindow(0.040, 0.05, 0.180), 300), true},
		{"p99 3x, p50 steady, 299 probes: too few for p99", with(latWindow(0.040, 0.05, 0.180), 299), false},
		{"p99 3x, p50 steady, 30 probes", latWindow(0.040, 0.05, 0.180), false},
		{"p99 2.5x: under the ratio", with(latWindow(0.040, 0.05, 0.150), 300), false},
		{"p90 and p99 far up, p50 steady", latWindow(0.042, 0.300, 0.400), true},
		{"p90 far up, 29 probes: too few for p90", with(latWindow(0.042, 0.300, 0.400), 29), false},
		{"everything up: not a tail shift", latWindow(0.080, 0.300, 0.400), false},
	} {
		s := *spec
		s.MinSamples = 20 // below what p90 needs: the detector's own rule decides
		got := DetectLatency(&s, warmBase(), tc.win, now)
		found := len(got) > 0 && got[0].Detector == DetectorTailShift
		if found != tc.want {
			t.Errorf("%s: found %v, want %v (%+v)", tc.name, found, tc.want, got)
		}
	}
	// Not warm, or too few samples: no verdict whatever the numbers.
	cold := warmBase()
	cold.Warm = false
	if got := DetectLatency(spec, cold, latWindow(0.04, 0.3, 0.4), now); got != nil {
		t.Errorf("cold baseline gave %+v", got)
	}
	few := latWindow(0.04, 0.3, 0.4)
	few.Samples = spec.MinSamples - 1
	if got := DetectLatency(spec, warmBase(), few, now); got != nil {
		t.Errorf("%d samples gave %+v", few.Samples, got)
	}
}

// The finding says which quantile it judged, how far beyond its noise,
// and why not p99.
func TestDetectLatencyTailShiftSaysWhichQuantile(t *testing.T) {
	spec := latencySpec(t, "")
	got := DetectLatency(spec, warmBase(), latWindow(0.042, 0.300, 0.400), time.Time{})
	want := "tail shift: p90 300 ms vs 50 ms usual at 14:00 UTC (6.0×; 18 times its usual spread of ±11%) while p50 stayed 42 ms (1.1×); p99 not judged: 30 probes in the window, it needs 300"
	if len(got) != 1 || !strings.HasPrefix(got[0].Explanation, want) {
		t.Fatalf("got %+v\nwant %q", got, want)
	}
	w := latWindow(0.042, 0.300, 0.400)
	w.Samples = 300
	got = DetectLatency(spec, warmBase(), w, time.Time{})
	if len(got) != 1 || !strings.HasPrefix(got[0].Explanation, "tail shift: p99 400 ms vs 60 ms usual") || strings.Contains(got[0].Explanation, "not judged") {
		t.Fatalf("with 300 probes: %+v", got)
	}
}

// A tail shift must stand out from the quantile's own noise, and clear a
// small absolute floor (1 ms), not a fixed 5 ms that would hide row 4 of
// SCENARIOS.md at its real scale (0.3 ms to 5 ms).
func TestDetectLatencyTailShiftIsNoiseRelative(t *testing.T) {
	spec := latencySpec(t, "")
	noisy := warmBase()
	noisy.P90.Spread = 0.5 // p90 usually wanders ±65%
	if got := DetectLatency(spec, noisy, latWindow(0.042, 0.180, 0.06), time.Time{}); got != nil {
		t.Errorf("3.6× a p90 that wanders ±65%% (2.6 spreads) gave %+v", got)
	}
	if got := DetectLatency(spec, warmBase(), latWindow(0.042, 0.180, 0.06), time.Time{}); len(got) != 1 {
		t.Errorf("3.6× a p90 that wanders ±11%% gave nothing")
	}
	fast := warmBase()
	fast.P50, fast.P90, fast.P99 = usual(0.0002), usual(0.0003), usual(0.0005)
	for _, tc := range []struct {
		p90  float64
		want bool
	}{{0.0012, false}, {0.005, true}} {
		got := DetectLatency(spec, fast, latWindow(0.0002, tc.p90, tc.p90), time.Time{})
		if (len(got) == 1) != tc.want {
			t.Errorf("p90 0.3 ms -> %v s: %+v, want found %v", tc.p90, got, tc.want)
		}
	}
}

func TestDetectLatencyTailShiftNamesThePhase(t *testing.T) {
	spec := latencySpec(t, "")
	w := latWindow(0.042, 0.3, 0.4)
	w.Phases[2].P99 = 0.35 // tls
	got := DetectLatency(spec, warmBase(), w, time.Time{})
	if len(got) != 1 || got[0].Phase != "tls" || !strings.Contains(got[0].Explanation, "mostly TLS handshake") {
		t.Fatalf("got %+v", got)
	}
	// Spread over phases: none named.
	w = latWindow(0.042, 0.3, 0.4)
	for i := range w.Phases {
		w.Phases[i].P99 = 0.08
	}
	got = DetectLatency(spec, warmBase(), w, time.Time{})
	if len(got) != 1 || got[0].Phase != "" || !strings.Contains(got[0].Explanation, "no single phase") {
		t.Fatalf("got %+v", got)
	}
}

func TestDetectLatencySlowRise(t *testing.T) {
	spec := latencySpec(t, "    shape: {tail_shift: false}\n")
	rising := latWindow(0.1, 0.12, 0.13)
	rising.Trend = []float64{0.045, 0.055, 0.07, 0.1}
	got := DetectLatency(spec, warmBase(), rising, time.Time{})
	if len(got) != 1 || got[0].Detector != DetectorSlowRise || !strings.Contains(got[0].Explanation, "climbed from 45 ms to 100 ms over 15m0s") {
		t.Fatalf("rising: %+v", got)
	}
	// High throughout without a trend also counts; a zig-zag that ends
	// high does not.
	flat := rising
	flat.Trend = []float64{0.1, 0.09, 0.1, 0.1}
	if got := DetectLatency(spec, warmBase(), flat, time.Time{}); len(got) != 1 || !strings.Contains(got[0].Explanation, "has stayed above 1.5×") {
		t.Fatalf("flat high: %+v", got)
	}
	zig := rising
	zig.Trend = []float64{0.1, 0.04, 0.1, 0.04, 0.1}
	if got := DetectLatency(spec, warmBase(), zig, time.Time{}); got != nil {
		t.Fatalf("zig-zag: %+v", got)
	}
	short := rising
	short.Trend = rising.Trend[1:]
	if got := DetectLatency(spec, warmBase(), short, time.Time{}); got != nil {
		t.Fatalf("a trend shorter than slow_rise.for gave %+v", got)
	}
}

func TestKendallTau(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, 1},
		{[]float64{4, 3, 2, 1}, -1},
		{[]float64{1, 1, 1}, 0},
		{[]float64{1}, 0},
		{[]float64{1, 3, 2, 4}, 4.0 / 6},
	} {
		if got := kendallTau(tc.xs); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("kendallTau(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestForecastSpike(t *testing.T) {
	r := &checks.RecurringRule{Lead: 15 * time.Minute, Days: 2, Near: 0.75, Tolerance: 10 * time.Minute}
	at := func(d int, hm string) time.Time {
		t0, _ := time.Parse("15:04", hm)
		return benchStart.Add(time.Duration(d)*day + time.Duration(t0.Hour())*time.Hour + time.Duration(t0.Minute())*time.Minute)
	}
	bumps := []Bump{{at(1, "09:02"), 3.2}, {at(2, "08:58"), 3.4}}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{at(3, "08:40"), false}, // too early
		{at(3, "08:44"), true},  // 14 minutes ahead of 08:58
		{at(3, "09:05"), true},  // due, within tolerance
		{at(3, "09:10"), false}, // passed
	} {
		f, ok := ForecastSpike(r, 4, bumps, tc.now)
		if ok != tc.want {
			t.Errorf("at %s: got %v %+v, want %v", tc.now.Format("15:04"), ok, f, tc.want)
		}
		if ok && !f.Due.Equal(at(3, "08:58")) {
			t.Errorf("due %s, want 08:58", f.Due)
		}
	}
	// The latest bump must come near the threshold, and the pattern must
	// hold on every one of Days days.
	if _, ok := ForecastSpike(r, 4, []Bump{{at(1, "09:02"), 3.2}, {at(2, "08:58"), 2.1}}, at(3, "08:50")); ok {
		t.Error("latest bump 2.1× of 4× is not near")
	}
	if _, ok := ForecastSpike(r, 4, []Bump{{at(0, "09:00"), 3.2}, {at(2, "08:58"), 3.4}}, at(3, "08:50")); ok {
		t.Error("a day without a bump breaks the pattern")
	}
	if _, ok := ForecastSpike(r, 4, []Bump{{at(1, "11:30"), 3.2}, {at(2, "08:58"), 3.4}}, at(3, "08:50")); ok {
		t.Error("a bump at another time of day is not the same spike")
	}
}

func TestBaselineLearnsRobustlyAndDecays(t *testing.T) {
	b := newBaseline(1, 1, 24*time.Hour, 3)
	now := benchStart
	for range 100 {
		b.learn(0, now, []float64{0.1})
		now = now.Add(time.Minute)
	}
	u, warm := b.usual(0)
	if !warm || math.Abs(u[0].Value-0.1) > 1e-6 {
		t.Fatalf("usual %+v warm %v, want 0.1", u[0], warm)
	}
	// One wild value is clipped: the baseline barely moves.
	b.learn(0, now, []float64{100})
	if u, _ := b.usual(0); u[0].Value > 0.11 {
		t.Errorf("one outlier moved the baseline to %v", u[0].Value)
	}
	// A lasting change is learned, faster after a long silence (decay).
	now = now.Add(10 * 24 * time.Hour)
	for range 50 {
		b.learn(0, now, []float64{0.2})
		now = now.Add(time.Minute)
	}
	if u, _ := b.usual(0); u[0].Value < 0.18 {
		t.Errorf("after a 10-day gap and 50 values of 0.2, usual is %v", u[0].Value)
	}
	// NaN leaves a statistic alone.
	before, _ := b.usual(0)
	b.learn(0, now, []float64{math.NaN()})
	if after, _ := b.usual(0); after[0] != before[0] {
		t.Errorf("NaN changed the baseline: %+v -> %+v", before[0], after[0])
	}
}
