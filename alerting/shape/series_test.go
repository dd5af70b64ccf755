package shape

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// seriesCheck is a series check every 5 minutes with the default shape
// settings and extra ones (YAML lines under shape:, indented 6).
func seriesCheck(t testing.TB, extra string) *checks.Check {
	t.Helper()
	conf := "version: 1\nchecks:\n  - id: rps\n    interval: 5m\n    series: {prometheus: {url: 'http://127.0.0.1:9090', query: up}}\n"
	if extra != "" {
		conf += "    shape:\n" + extra
	}
	cfg, err := checks.LoadBytes("s.yaml", []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Checks[0]
}

// seriesRun is what a tracker said about each value of a series.
type seriesRun struct {
	found  [][]Finding
	judged []bool
	step   time.Duration
}

// feedSeries replays values through a tracker for c, one every c.Interval from
// benchStart (a Monday, midnight UTC).
func feedSeries(c *checks.Check, values []float64) seriesRun {
	tr := NewTracker(c)
	run := seriesRun{step: c.Interval}
	for i, v := range values {
		now := benchStart.Add(time.Duration(i) * c.Interval)
		tr.Add(&wire.Result{Check: c.ID, Time: now, OK: true, Observed: wire.Observed{Value: &v}}, now)
		f, _, judged := tr.Findings()
		run.found, run.judged = append(run.found, f), append(run.judged, judged)
	}
	return run
}

// opened lists the indexes where findings went from none to some: where a
// page would open.
func (r seriesRun) opened() []int {
	var out []int
	for i, f := range r.found {
		if len(f) > 0 && (i == 0 || len(r.found[i-1]) == 0) {
			out = append(out, i)
		}
	}
	return out
}

// detectors lists the detectors found at or after from, each once, in
// the order first seen.
func (r seriesRun) detectors(from int) []string {
	var out []string
	for _, fs := range r.found[from:] {
		for _, f := range fs {
			if len(out) == 0 || out[len(out)-1] != f.Detector {
				out = append(out, f.Detector)
			}
		}
	}
	return out
}

// noisy is n values around level with relative noise (uniform ±noise).
func noisy(rng *rand.Rand, n int, level, noise float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = level * (1 + noise*(2*rng.Float64()-1))
	}
	return out
}

func TestSeriesLevelShiftUpAndDown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		to    float64
		first string
	}{{"up", 160, DetectorSpike}, {"down", 50, DetectorDip}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			c := seriesCheck(t, "")
			values := append(noisy(rng, 400, 100, 0.05), noisy(rng, 300, tc.to, 0.05)...)
			run := feedSeries(c, values)
			pages := run.opened()
			if len(pages) != 1 || pages[0] < 400 || pages[0] > 401 {
				t.Fatalf("pages opened at %v, want one at the shift (value 400)", pages)
			}
			if got := run.detectors(400); len(got) != 2 || got[0] != tc.first || got[1] != DetectorLevelShift {
				t.Fatalf("detectors after the shift %v, want [%s level_shift]", got, tc.first)
			}
			// The shift is named once the values stayed for level_shift.for
			// (30m, 7 values at 5m), and the finding then closes: the
			// usual value follows the new level.
			shiftAt := -1
			for i := 400; i < len(values) && shiftAt < 0; i++ {
				if len(run.found[i]) > 0 && run.found[i][0].Detector == DetectorLevelShift {
					shiftAt = i
				}
			}
			if d := time.Duration(shiftAt-400) * run.step; d < 30*time.Minute || d > 45*time.Minute {
				t.Errorf("level shift named %s after it began, want 30m to 45m", d)
			}
			f := run.found[shiftAt][0]
			t.Logf("at the shift: %s\n%s later: %s", run.found[400][0].Explanation, time.Duration(shiftAt-400)*run.step, f.Explanation)
			if !strings.Contains(f.Explanation, "level shift "+tc.name) || !strings.Contains(f.Explanation, "from about 10") {
				t.Errorf("explanation: %q", f.Explanation)
			}
			if want := tc.to / 100; math.Abs(f.Ratio-want) > 0.1*want {
				t.Errorf("ratio %.2f, want about %.2f", f.Ratio, want)
			}
			for i := 460; i < len(values); i++ {
				if len(run.found[i]) > 0 {
					t.Fatalf("value %d (%s after the shift): still %s", i, time.Duration(i-400)*run.step, run.found[i][0].Explanation)
				}
			}
		})
	}
}

func TestSeriesDipAndDrop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := seriesCheck(t, "")
	values := noisy(rng, 400, 100, 0.05)
	values = append(values, 55, 52, 58)
	values = append(values, noisy(rng, 100, 100, 0.05)...)
	values = append(values, 3, 2, 4)
	values = append(values, noisy(rng, 100, 100, 0.05)...)
	run := feedSeries(c, values)
	pages := run.opened()
	if len(pages) != 2 || pages[0] != 400 || pages[1] != 503 {
		t.Fatalf("pages opened at %v, want [400 503]", pages)
	}
	dip, drop := run.found[400][0], run.found[503][0]
	if dip.Detector != DetectorDip || !strings.Contains(dip.Explanation, "dip: 55 is 55% of the usual 99.8 for 09:00 UTC") || !strings.Contains(dip.Explanation, "bands out") {
		t.Errorf("dip: %+v", dip)
	}
	if drop.Detector != DetectorDrop || !strings.Contains(drop.Explanation, "% of the usual") || !strings.Contains(drop.Explanation, "(threshold 10%)") {
		t.Errorf("drop: %+v", drop)
	}
	if n := len(run.found[len(values)-1]); n != 0 {
		t.Errorf("still open at the end: %+v", run.found[len(values)-1])
	}
}

// A count that is mostly 0 and sometimes 1 to 3 is not a spike at every
// 1 (the old baseline floored logs at 1e-9: "1 is 919165775× the usual");
// a burst of 40 is.
func TestSeriesNearZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := seriesCheck(t, "")
	values := make([]float64, 3000)
	for i := range values {
		// Poisson-like: 0 most of the time.
		for p := rng.Float64(); p < 0.25 && values[i] < 3; p = rng.Float64() {
			values[i]++
		}
	}
	values[2500], values[2501] = 40, 35
	run := feedSeries(c, values)
	pages := run.opened()
	if len(pages) != 1 || pages[0] != 2500 {
		t.Fatalf("pages opened at %v, want [2500] only", pages)
	}
	f := run.found[2500][0]
	if f.Detector != DetectorSpike || !strings.Contains(f.Explanation, "spike: 40 is") {
		t.Errorf("finding %+v", f)
	}
}

// A noisy, bursty series (log-normal noise, bursts of 2–4× on 2% of the
// values) has no anomaly, and gets no finding in a week once its history
// holds a day. Its values are independent draws, so now and then one is
// higher than any in the history by chance, and pages: with this seed at
// value 208 (the first day, a history of 200 values: 4.9× the recent
// level) and at value 3487 (day 12: 5.5×, higher than any in about 2000
// values). See docs/config.md.
func TestSeriesBurstyWithoutAnomaly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := seriesCheck(t, "")
	values := make([]float64, 288+2016) // a day and a week at 5m
	for i := range values {
		v := 50 * math.Exp(0.4*rng.NormFloat64())
		if rng.Float64() < 0.02 {
			v *= 2 + 2*rng.Float64()
		}
		values[i] = v
	}
	run := feedSeries(c, values)
	for _, p := range run.opened() {
		if p >= 288 {
			t.Fatalf("page at value %d on a series without anomaly: %s", p, run.found[p][0].Explanation)
		}
	}
}

// Before warm-up (48 values, or shape.warmup's worth if more) the model
// judges nothing; right after it, a history that short makes only a large
// deviation rare.
func TestSeriesWarmUp(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	c := seriesCheck(t, "      warmup: 5h\n") // 60 values at 5m
	values := noisy(rng, 80, 100, 0.05)
	values[30] = 1000 // during warm-up: not judged, but learned
	values[61] = 112  // just warm: about 2 bands out, not rare yet
	values[66] = 600  // 100 bands out, but the history saw larger
	values[70] = 5000 // larger than any seen: rare
	run := feedSeries(c, values)
	for i := range 60 {
		if run.judged[i] || len(run.found[i]) > 0 {
			t.Fatalf("value %d judged during warm-up: %+v", i, run.found[i])
		}
	}
	if !run.judged[60] {
		t.Fatal("value 60 not judged after 5h of warm-up")
	}
	if pages := run.opened(); len(pages) != 1 || pages[0] != 70 {
		t.Fatalf("pages opened at %v, want [70]", pages)
	}
}

// A daily pattern (a square wave: 20 at night, 80 by day) is learned by
// the seasonal slots: after two days its jumps are usual, and a day that
// stays flat is not.
func TestSeriesSeasonal(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	c := seriesCheck(t, "")
	var values []float64
	for d := range 6 {
		for h := range 24 {
			level := 20.0
			if h >= 9 && h < 18 && d != 5 {
				level = 80
			}
			values = append(values, noisy(rng, 12, level, 0.02)...)
		}
	}
	run := feedSeries(c, values)
	pages := run.opened()
	dayFive := 5*24*12 + 9*12
	// The first values of the flat day are as far from the 09:00 slot as
	// the jumps of the first days, before the slots were warm, were from
	// the recent level; the drift that follows is not.
	if len(pages) == 0 || pages[len(pages)-1] < dayFive || pages[len(pages)-1] > dayFive+24 {
		t.Fatalf("pages opened at %v, want the last within 2h of the flat day's 09:00 (value %d)", pages, dayFive)
	}
	if testing.Verbose() {
		t.Logf("pages at %v, flat day at %d", pages, dayFive)
	}
	if f := run.found[pages[len(pages)-1]][0]; f.Detector != DetectorDip || !strings.Contains(f.Explanation, "for 09:00 UTC") {
		t.Errorf("flat day: %+v", f)
	}
	for _, p := range pages[:len(pages)-1] {
		if p >= 3*24*12 {
			t.Errorf("page at value %d (day %d): the daily pattern should be usual by day 3", p, p/(24*12))
		}
	}
}

func TestSeriesStateSurvivesSaveRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	c := seriesCheck(t, "")
	values := noisy(rng, 500, 100, 0.05)
	a := NewTracker(c)
	for i, v := range values {
		now := benchStart.Add(time.Duration(i) * c.Interval)
		a.Add(&wire.Result{OK: true, Observed: wire.Observed{Value: &v}}, now)
	}
	saved := a.Save()
	b := NewTracker(c)
	if !b.Restore(saved) {
		t.Fatal("a series tracker's own state was not restored")
	}
	now := benchStart.Add(500 * c.Interval)
	v := 300.0
	for _, tr := range []*Tracker{a, b} {
		tr.Add(&wire.Result{OK: true, Observed: wire.Observed{Value: &v}}, now)
	}
	fa, _, _ := a.Findings()
	fb, _, _ := b.Findings()
	if len(fa) != 1 || len(fb) != 1 || fa[0].Explanation != fb[0].Explanation {
		t.Fatalf("after restore: %+v, want as before: %+v", fb, fa)
	}
	// A state saved before the series model existed (a log baseline in
	// Meta and Moments, no Model) is set aside: the model warms up again.
	old := Saved{Series: true, Stats: 1, Meta: make([]SlotMeta, 24), Moments: make([]Moment, 24)}
	if NewTracker(c).Restore(old) {
		t.Error("an old-format series state was restored")
	}
	// A state saved before the long-run spread (LongMean, LongDev) was
	// kept starts it from the recent level: the same value still pages.
	m := *saved.Model
	m.LongMean, m.LongDev = 0, 0
	m.Slots = slices.Clone(m.Slots)
	c2 := NewTracker(c)
	if !c2.Restore(Saved{Series: true, Bumps: saved.Bumps, Model: &m}) {
		t.Fatal("a state saved without the long-run spread was not restored")
	}
	c2.Add(&wire.Result{OK: true, Observed: wire.Observed{Value: &v}}, now)
	if fc, _, _ := c2.Findings(); len(fc) != 1 || fc[0].Detector != fa[0].Detector {
		t.Fatalf("after restoring a state without the long-run spread: %+v, want %+v", fc, fa)
	}
	weekly := NewTracker(seriesCheck(t, "      seasonality: weekly\n"))
	if weekly.Restore(saved) {
		t.Error("a daily state was restored into a weekly tracker")
	}
}

func TestSeriesExplicitMaxRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	c := seriesCheck(t, "      spike: {max_ratio: 4, points: 2}\n")
	values := noisy(rng, 400, 100, 0.05)
	values = append(values, 300, 320, 100, 100, 100) // 3×: under the threshold
	values = append(values, noisy(rng, 200, 100, 0.05)...)
	values = append(values, 500, 100, 100) // one point: not two
	values = append(values, noisy(rng, 200, 100, 0.05)...)
	values = append(values, 500, 520)
	run := feedSeries(c, values)
	last := len(values) - 1
	if pages := run.opened(); len(pages) != 1 || pages[0] != last {
		t.Fatalf("pages opened at %v, want [%d]: only two points in a row above 4×", pages, last)
	}
	if f := run.found[last][0]; !strings.Contains(f.Explanation, "(threshold 4×)") || !strings.Contains(f.Explanation, "2 points in a row") {
		t.Errorf("explanation: %q", f.Explanation)
	}
}

// The memory stated for a series (docs/config.md, SeriesState) is what it
// takes: Bytes counts it, and it does not grow with the values fed.
func TestSeriesMemory(t *testing.T) {
	if got := unsafe.Sizeof(SeriesState{}); got != seriesStateBytes || unsafe.Sizeof(SeasonSlot{}) != seasonSlotBytes || unsafe.Sizeof(seriesPart{}) != seriesPartBytes {
		t.Fatalf("SeriesState is %d bytes, SeasonSlot %d and seriesPart %d; the stated %d, %d and %d", got, unsafe.Sizeof(SeasonSlot{}), unsafe.Sizeof(seriesPart{}), seriesStateBytes, seasonSlotBytes, seriesPartBytes)
	}
	rng := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct {
		extra string
		slots int
	}{{"", 24}, {"      seasonality: weekly\n", 168}, {"      seasonality: none\n", 0}} {
		tr := NewTracker(seriesCheck(t, tc.extra))
		before := tr.Bytes()
		for i, v := range noisy(rng, 5000, 100, 0.3) {
			now := benchStart.Add(time.Duration(i) * 5 * time.Minute)
			tr.Add(&wire.Result{OK: true, Observed: wire.Observed{Value: &v}}, now)
		}
		if want := trackerBytes + seriesPartBytes + seasonSlotBytes*tc.slots; tr.Bytes() != before || before != want {
			t.Errorf("%q: %d bytes before, %d after 5000 values; want %d throughout", tc.extra, before, tr.Bytes(), want)
		}
	}
}

// A steady series (100 ± 1, so its band is the floor, 5) with an isolated
// blip of 3.5 bands every 100 values: one blip is commonplace (1 in 100 of
// the values), two in a row are not, and the second of them pages, saying
// so.
func TestSeriesPair(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	c := seriesCheck(t, "      seasonality: none\n")
	values := noisy(rng, 3000, 100, 0.01)
	for i := 50; i < len(values); i += 100 {
		values[i] = 117.5
	}
	values[2520], values[2521] = 117.5, 117.5
	run := feedSeries(c, values)
	pages := run.opened()
	if len(pages) != 1 || pages[0] != 2521 {
		t.Fatalf("pages opened at %v, want [2521] only", pages)
	}
	if f := run.found[2521][0]; f.Detector != DetectorSpike || !strings.Contains(f.Explanation, "two values in a row this far out (on average 3.0 bands high, each counted up to 3)") {
		t.Errorf("finding %+v", f)
	}
}

// A quiet stretch of a series that usually swings does not shrink its
// noise band below a fifth of its long-run spread: the next ordinary
// wobble is not many bands out.
func TestSeriesBandFlooredAtTheLongRunSpread(t *testing.T) {
	rules := seriesRules(seriesCheck(t, "      seasonality: none\n").Shape, 5*time.Minute)
	s := newSeriesState(0)
	now := benchStart
	step := func(x float64) SeriesVerdict {
		now = now.Add(5 * time.Minute)
		return s.Step(x, -1, now, rules)
	}
	// A square wave between 20 and 80, an hour each: a spread of about 30
	// about 50, on a magnitude of 50 (whose 5% floor is 2.5).
	for i := range 2000 {
		x := 20.0
		if i/12%2 == 1 {
			x = 80
		}
		step(x)
	}
	if s.LongDev < 25 {
		t.Fatalf("long-run spread %.1f after a week of a 20↔80 square wave, want about 30", s.LongDev)
	}
	for range 48 { // four quiet hours at 50
		step(50)
	}
	v := step(56)
	if v.Band < seriesSpreadShare*s.LongDev || v.Z > 1.1 {
		t.Fatalf("after a quiet stretch: band %.2f, z %.1f; want the band at least %.2f (a fifth of the long-run spread %.1f), so 56 is about a band out",
			v.Band, v.Z, seriesSpreadShare*s.LongDev, s.LongDev)
	}
}

// The drift's half-life is two hours of values, but never fewer than the
// recent level's 8 values.
func TestSeriesDriftHalfLifeIsADuration(t *testing.T) {
	spec := seriesCheck(t, "").Shape
	for _, tc := range []struct {
		interval time.Duration
		values   float64
	}{
		{time.Minute, 120},
		{5 * time.Minute, 24},
		{15 * time.Minute, 8},
		{time.Hour, 8},
		{0, seriesDriftN}, // rules without an interval
	} {
		r := seriesRules(spec, tc.interval)
		if tc.interval == 0 {
			r = SeriesRules{OpenTail: spec.Surprise}
		}
		if got, want := r.driftAlpha(), ewAlpha(tc.values); math.Abs(got-want) > 1e-12 {
			t.Errorf("interval %v: drift weight %g per value, want %g (a half-life of %v values)", tc.interval, got, want, tc.values)
		}
	}
}
