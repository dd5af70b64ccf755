package shape

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Shape detectors. Each is a pure function of a baseline, a recent window
// and the time, and says in words why it found what it found.

// Detector names, as findings and the configuration call them.
const (
	DetectorTailShift = "tail_shift"
	DetectorSlowRise  = "slow_rise"
	DetectorSpike     = "spike"
	DetectorDrop      = "drop"
	DetectorRecurring = "recurring"
	// DetectorDip and DetectorLevelShift are series detectors too.
	DetectorDip        = "dip"
	DetectorLevelShift = "level_shift"
)

// Finding is one detector's verdict on one (check, region).
type Finding struct {
	Detector string `json:"detector"`
	// Phase is the probe phase that moved most (resolve, connect, tls,
	// processing, transfer), when one accounts for most of the shift.
	Phase string `json:"phase,omitempty"`
	// Ratio is how far the value is from the baseline (2.5 means 2.5×).
	Ratio float64 `json:"ratio"`
	// Due is when a recurring spike is next expected.
	Due time.Time `json:"due,omitzero"`
	// Explanation is one human sentence with the numbers.
	Explanation string `json:"explanation"`
}

// Quantiles are the p50, p90 and p99 of a latency distribution, in seconds.
type Quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// PhaseWindow is one phase's distribution over a window.
type PhaseWindow struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
}

// LatencyWindow is the recent latency of one (check, region): passing
// probes over the shape window, by phase, and the window's p50 at each of
// the latest bucket closes.
type LatencyWindow struct {
	Samples int                               `json:"samples"`
	Total   Quantiles                         `json:"total"`
	Phases  [len(wire.PhaseNames)]PhaseWindow `json:"-"`
	// Trend is the window's p50 at the latest bucket closes, oldest first,
	// one every Step.
	Trend []float64     `json:"-"`
	Step  time.Duration `json:"-"`
}

// LatencyBaseline is what is usual for one (check, region) at one slot.
type LatencyBaseline struct {
	// Warm is whether the slot has learned enough to judge by.
	Warm bool `json:"warm"`
	// Slot names the slot, such as "14:00 UTC".
	Slot          string `json:"slot"`
	P50, P90, P99 Usual
	Phases        [len(wire.PhaseNames)]struct{ P50, P99 Usual }
}

// phaseTitles name the phases for humans.
var phaseTitles = [len(wire.PhaseNames)]string{"DNS lookup", "TCP connect", "TLS handshake", "server processing (to first byte)", "transfer"}

// risingTau is the share of pairs of trend points that must rise, net of
// those that fall, for a climb to count as steady (Kendall's tau).
const risingTau = 0.6

// DetectLatency runs the latency detectors of spec on the recent window
// against the baseline. It returns nil while the baseline is not warm or
// the window holds fewer than spec.MinSamples probes.
func DetectLatency(spec *checks.ShapeSpec, base LatencyBaseline, win LatencyWindow, now time.Time) []Finding {
	if spec == nil || !base.Warm || win.Samples < spec.MinSamples || base.P50.Value <= 0 {
		return nil
	}
	var out []Finding
	if r := spec.TailShift; r != nil {
		if f, ok := tailShift(r, base, win); ok {
			out = append(out, f)
		}
	}
	if r := spec.SlowRise; r != nil {
		if f, ok := slowRise(r, base, win); ok {
			out = append(out, f)
		}
	}
	return out
}

// tailShift: p99 or p90 far above usual, beyond the usual's own noise,
// while p50 is not. A quantile is judged only from a window of
// checks.QuantileSamples probes: p99 from 300, p90 from 30.
func tailShift(r *checks.TailShiftRule, base LatencyBaseline, win LatencyWindow) (Finding, bool) {
	median := win.Total.P50 / base.P50.Value
	if median >= r.MedianRatio {
		return Finding{}, false // the whole distribution moved
	}
	type cand struct {
		name      string
		q         float64
		got, want float64
		usual     Usual
	}
	best, ratio, unjudged := cand{}, 0.0, cand{}
	for _, c := range []cand{{"p99", 0.99, win.Total.P99, base.P99.Value, base.P99}, {"p90", 0.9, win.Total.P90, base.P90.Value, base.P90}} {
		if win.Samples < checks.QuantileSamples(c.q) {
			unjudged = c
			continue
		}
		if c.want <= 0 || !c.usual.beyond(c.got, r.Ratio) || c.got-c.want < r.MinDelta.Seconds() {
			continue
		}
		if q := c.got / c.want; q > ratio {
			best, ratio = c, q
		}
	}
	if ratio == 0 {
		return Finding{}, false
	}
	f := Finding{Detector: DetectorTailShift, Ratio: ratio}
	var b strings.Builder
	fmt.Fprintf(&b, "tail shift: %s %s vs %s usual at %s (%.1f×; %s) while p50 stayed %s (%.1f×)",
		best.name, FormatSeconds(best.got), FormatSeconds(best.want), base.Slot, ratio, noiseTimes(best.usual, best.got),
		FormatSeconds(win.Total.P50), median)
	if unjudged.name != "" {
		fmt.Fprintf(&b, "; %s not judged: %d probes in the window, it needs %d", unjudged.name, win.Samples, checks.QuantileSamples(unjudged.q))
	}
	f.Phase = attribute(&b, base, win, true, best.got-best.want)
	f.Explanation = b.String()
	return f, true
}

// noiseTimes says how far v lies from u in u's own spread (the mean
// absolute deviation of its log): "14 times its usual spread of ±10%".
func noiseTimes(u Usual, v float64) string {
	spread := max(u.Spread, minSpread)
	return fmt.Sprintf("%.0f times its usual spread of ±%.0f%%", (logOf(v)-logOf(u.Value))/spread, 100*(math.Exp(spread)-1))
}

// slowRise: p50 well above usual, and either climbing steadily over the
// rule's span or high throughout it.
func slowRise(r *checks.SlowRiseRule, base LatencyBaseline, win LatencyWindow) (Finding, bool) {
	n := r.Points(win.Step)
	if n == 0 || len(win.Trend) < n {
		return Finding{}, false
	}
	if win.Samples < checks.QuantileSamples(0.5) {
		return Finding{}, false
	}
	t := win.Trend[len(win.Trend)-n:]
	last, usual := t[n-1], base.P50.Value
	if !base.P50.beyond(last, r.Ratio) || last-usual < r.MinDelta.Seconds() {
		return Finding{}, false
	}
	ratio := last / usual
	f := Finding{Detector: DetectorSlowRise, Ratio: ratio}
	var b strings.Builder
	span := time.Duration(n-1) * win.Step
	switch {
	case kendallTau(t) >= risingTau && t[0] < last:
		fmt.Fprintf(&b, "slow rise: p50 climbed from %s to %s over %s (+%s/min), %.1f× the %s usual at %s (%s)",
			FormatSeconds(t[0]), FormatSeconds(last), span, FormatSeconds((last-t[0])/span.Minutes()), ratio, FormatSeconds(usual), base.Slot, noiseTimes(base.P50, last))
	case allAbove(t, r.Ratio*usual):
		fmt.Fprintf(&b, "slow rise: p50 has stayed above %.1f× the %s usual at %s for %s, now %s (%.1f×; %s)",
			r.Ratio, FormatSeconds(usual), base.Slot, span, FormatSeconds(last), ratio, noiseTimes(base.P50, last))
	default:
		return Finding{}, false
	}
	f.Phase = attribute(&b, base, win, false, last-usual)
	f.Explanation = b.String()
	return f, true
}

// attribute names the phase that moved most, when it accounts for at
// least half of the shift delta, and appends it to b. tail picks the
// phases' p99, else their p50.
func attribute(b *strings.Builder, base LatencyBaseline, win LatencyWindow, tail bool, delta float64) string {
	bestI, bestD := -1, 0.0
	for i, p := range win.Phases {
		if p.Samples == 0 {
			continue
		}
		got, usual := p.P50, base.Phases[i].P50.Value
		if tail {
			got, usual = p.P99, base.Phases[i].P99.Value
		}
		if d := got - usual; d > bestD {
			bestI, bestD = i, d
		}
	}
	if bestI < 0 || delta <= 0 || bestD < delta/2 {
		if bestI >= 0 {
			b.WriteString("; no single phase accounts for most of it")
		}
		return ""
	}
	fmt.Fprintf(b, "; mostly %s (+%s)", phaseTitles[bestI], FormatSeconds(bestD))
	return wire.PhaseNames[bestI]
}

// kendallTau is Kendall's rank correlation of xs with time: +1 when every
// later point is higher than every earlier one.
func kendallTau(xs []float64) float64 {
	n := len(xs)
	if n < 2 {
		return 0
	}
	s := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			switch {
			case xs[j] > xs[i]:
				s++
			case xs[j] < xs[i]:
				s--
			}
		}
	}
	return float64(s) / float64(n*(n-1)/2)
}

func allAbove(xs []float64, v float64) bool {
	for _, x := range xs {
		if x < v {
			return false
		}
	}
	return true
}

// DetectSeries turns the model's verdict on the latest value into
// findings, by the rules of spec: which detector (spike, drop, dip, level
// shift) a surprising value is, with each rule's own conditions. A
// spike.max_ratio that is set is a rule of its own besides: a value at
// least that many times the usual and more than three noise bands above
// it, for spike.points values in a row, is a spike however often such
// spikes came lately. prev are the findings before this value: while the
// model keeps a finding open its detector stays (an incident is not
// reopened under another name), except that a completed level shift takes
// over. now is the value's time, which names the seasonal slot in
// explanations ("Tue 09:00 UTC").
func DetectSeries(spec *checks.ShapeSpec, v SeriesVerdict, prev []Finding, now time.Time) []Finding {
	if spec == nil || !v.Warm {
		return nil
	}
	held := func(points int) bool { return points <= 1 || abs(v.Run) >= points }
	if r := spec.Spike; r != nil && r.MaxRatio > 0 && v.Usual > 0 && v.Value >= r.MaxRatio*v.Usual && v.Z > seriesClip && held(r.Points) && v.Run > 0 {
		return []Finding{seriesFinding(DetectorSpike, v, spec, now)}
	}
	if !v.Open {
		return nil
	}
	if v.Shift && spec.LevelShift != nil {
		return []Finding{levelShiftFinding(v)}
	}
	if len(prev) > 0 {
		if prev[0].Detector == DetectorLevelShift {
			return prev[:1] // the shift's numbers stand until it closes
		}
		return []Finding{seriesFinding(prev[0].Detector, v, spec, now)}
	}
	if v.Tail >= spec.Surprise {
		return nil // open, but only a surprising value says what it is
	}
	switch {
	case v.Z > 0:
		if r := spec.Spike; r != nil && r.MaxRatio == 0 && held(r.Points) && v.Run >= 0 {
			return []Finding{seriesFinding(DetectorSpike, v, spec, now)}
		}
	case v.Z < 0:
		if r := spec.Drop; r != nil && held(r.Points) && v.Run <= 0 && v.Usual > 0 && v.Value <= r.MinRatio*v.Usual {
			return []Finding{seriesFinding(DetectorDrop, v, spec, now)}
		}
		if r := spec.Dip; r != nil && held(r.Points) && v.Run <= 0 {
			return []Finding{seriesFinding(DetectorDip, v, spec, now)}
		}
	}
	return nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// seriesFinding explains v as detector's finding, such as "spike: 37 is
// 7.2× the usual 5.1 for Tue 09:00 UTC (noise ±0.8, so 40 bands out);
// rarer than 1 in 1000 of its recent values; 3 points in a row".
func seriesFinding(detector string, v SeriesVerdict, spec *checks.ShapeSpec, now time.Time) Finding {
	f := Finding{Detector: detector, Ratio: ratioOf(v.Value, v.Usual)}
	var b strings.Builder
	b.WriteString(detector + ": " + formatValue(v.Value) + " is ")
	switch {
	case v.Usual <= 0 || f.Ratio == 0:
		fmt.Fprintf(&b, "%s %s", formatValue(math.Abs(v.Value-v.Usual)), map[bool]string{true: "above", false: "below"}[v.Z > 0])
		b.WriteString(" ")
	case detector == DetectorSpike:
		fmt.Fprintf(&b, "%.1f× ", f.Ratio)
	default:
		fmt.Fprintf(&b, "%.0f%% of ", 100*f.Ratio)
	}
	if v.Seasonal {
		fmt.Fprintf(&b, "the usual %s for %s", formatValue(v.Usual), slotName(spec, now))
	} else {
		fmt.Fprintf(&b, "the usual %s (the recent level)", formatValue(v.Usual))
	}
	fmt.Fprintf(&b, " (noise ±%s, so %.1f bands out)", formatValue(v.Band), math.Abs(v.Z))
	what := "a deviation this large"
	switch {
	case v.Drift:
		what = fmt.Sprintf("a drift this large (the recent average is %.1f bands %s)", math.Abs(v.DriftZ), map[bool]string{true: "high", false: "low"}[v.DriftZ > 0])
	case v.Pair:
		what = fmt.Sprintf("two values in a row this far out (on average %.1f bands %s, each counted up to %d)", math.Abs(v.PairZ), map[bool]string{true: "high", false: "low"}[v.PairZ > 0], seriesClip)
	}
	if v.Tail*v.History < 1 {
		fmt.Fprintf(&b, "; %s is unseen in its recent history (about %.0f values)", what, v.History)
	} else {
		fmt.Fprintf(&b, "; %s is rarer than 1 in %.0f of its recent values", what, 1/v.Tail)
	}
	if n := abs(v.Run); n > 1 {
		fmt.Fprintf(&b, "; %d points in a row over %s", n, v.RunFor.Round(time.Second))
	}
	switch detector {
	case DetectorSpike:
		if r := spec.Spike; r != nil && r.MaxRatio > 0 {
			fmt.Fprintf(&b, " (threshold %g×)", r.MaxRatio)
		}
	case DetectorDrop:
		if r := spec.Drop; r != nil {
			fmt.Fprintf(&b, " (threshold %g%%)", 100*r.MinRatio)
		}
	}
	f.Explanation = b.String()
	return f
}

func levelShiftFinding(v SeriesVerdict) Finding {
	f := Finding{Detector: DetectorLevelShift, Ratio: ratioOf(v.ShiftTo, v.ShiftFrom)}
	dir := "up"
	if v.ShiftTo < v.ShiftFrom {
		dir = "down"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "level shift %s: the value moved from about %s to %s", dir, formatValue(v.ShiftFrom), formatValue(v.ShiftTo))
	if f.Ratio > 0 {
		fmt.Fprintf(&b, " (%.2g×)", f.Ratio)
	}
	fmt.Fprintf(&b, " and stayed beyond the noise for %s (%d points); the usual value now follows the new level", v.RunFor.Round(time.Second), abs(v.Run))
	f.Explanation = b.String()
	return f
}

// ratioOf is v/usual, or 0 when usual is not positive or v negative.
func ratioOf(v, usual float64) float64 {
	if usual <= 0 || v < 0 {
		return 0
	}
	return v / usual
}

// Bump is a stretch of a series above half the spike threshold: when it
// peaked and how high, as a multiple of the usual value.
type Bump struct {
	Peak  time.Time `json:"peak"`
	Ratio float64   `json:"ratio"`
}

const day = 24 * time.Hour

// ForecastSpike warns of a spike that is due: some bump in the past day
// has a twin within r.Tolerance of the same time of day on each of the r.Days
// days before now's next occurrence of it, the latest of them peaked at r.Near
// of the threshold or more, and that time of day is at most r.Lead away
// (or passed less than r.Tolerance ago). bumps are oldest first.
func ForecastSpike(r *checks.RecurringRule, threshold float64, bumps []Bump, now time.Time) (Finding, bool) {
	if r == nil || threshold <= 0 {
		return Finding{}, false
	}
	for i := len(bumps) - 1; i >= 0; i-- {
		b := bumps[i]
		due := b.Peak.Add(day)
		if now.Sub(b.Peak) > day+r.Tolerance {
			break // older bumps are due even earlier
		}
		if due.Sub(now) > r.Lead || now.Sub(due) > r.Tolerance {
			continue
		}
		if b.Ratio < r.Near*threshold {
			continue
		}
		seen := 1
		for d := 2; d <= r.Days; d++ {
			if !bumpNear(bumps, due.Add(-time.Duration(d)*day), r.Tolerance) {
				break
			}
			seen++
		}
		if seen < r.Days {
			continue
		}
		f := Finding{Detector: DetectorRecurring, Ratio: b.Ratio, Due: due}
		when := "in " + due.Sub(now).Round(time.Minute).String()
		if !due.After(now) {
			when = "now"
		}
		f.Explanation = fmt.Sprintf("spike expected: one came at about %s on each of the last %d day(s), the latest at %.1f× the usual (%.0f%% of the %g× threshold); the next is due at %s, %s",
			b.Peak.UTC().Format("15:04 UTC"), seen, b.Ratio, 100*b.Ratio/threshold, threshold, due.UTC().Format("15:04 UTC"), when)
		return f, true
	}
	return Finding{}, false
}

// bumpNear reports whether some bump peaked within tol of t.
func bumpNear(bumps []Bump, t time.Time, tol time.Duration) bool {
	for _, b := range bumps {
		if d := b.Peak.Sub(t); d >= -tol && d <= tol {
			return true
		}
	}
	return false
}

// formatValue prints a series value briefly: whole numbers from 100 to a
// million, else three significant digits.
func formatValue(v float64) string {
	if a := math.Abs(v); a >= 100 && a < 1e6 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
