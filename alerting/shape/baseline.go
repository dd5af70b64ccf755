package shape

import (
	"math"
	"time"

	"github.com/outposthq/outpost/checks"
)

// A baseline is what normal looks like for one (check, region): for each
// slot of the day or week, a handful of statistics (latency quantiles, a
// series value), each kept as a decayed mean and mean absolute deviation
// of its logarithm. Logarithms make ratios additive, so "3× the usual" is
// the same distance at 10 ms and at 1 s.
//
// It is robust in the Huber sense: once a slot is warm, a new value is
// clipped to within baselineClip deviations of the slot's mean before it
// is learned, so an incident moves the baseline only slowly, and a burst
// of outliers cannot drag it. Old values fade with the configured half
// life. Memory is fixed at creation: slots × stats × 8 bytes, plus 16
// bytes per slot.

const (
	// baselineClip is how many deviations a new value may lie from a warm
	// slot's mean before it is clipped.
	baselineClip = 3
	// minSpread is the smallest deviation assumed, in log units (about
	// 5%): a perfectly steady series must not make every wobble an outlier.
	minSpread = 0.05
	// noiseK is how many deviations a value must lie above the mean to be
	// beyond noise, on top of a detector's ratio.
	noiseK = 3
	// minLogValue floors logarithms: latencies under 1 µs and series
	// values under 1e-9 count as those.
	minLogValue = 1e-9
)

// Moment is one statistic of one slot, in log space: the learned state
// that Saved carries.
type Moment struct {
	Mean, Dev float32
}

// SlotMeta is the bookkeeping of one slot, as Saved carries it.
type SlotMeta struct {
	// Weight is the decayed number of values learned.
	Weight float32
	// N is how many values were learned, undecayed, for the warm-up rule.
	N uint32
	// Updated is when the slot last learned, in Unix seconds.
	Updated int64
}

// baseline holds slots × stats moments.
type baseline struct {
	stats    int
	meta     []SlotMeta
	moments  []Moment
	halfLife time.Duration
	// warmN is how many values a slot needs before it gives verdicts.
	warmN uint32
}

func newBaseline(slots, stats int, halfLife time.Duration, warmN int) *baseline {
	return &baseline{
		stats:    stats,
		meta:     make([]SlotMeta, slots),
		moments:  make([]Moment, slots*stats),
		halfLife: halfLife,
		warmN:    uint32(max(warmN, 3)),
	}
}

// warmValues converts a warm-up duration into a number of values, one
// learned every step.
func warmValues(warmup, step time.Duration) int {
	if step <= 0 {
		return 3
	}
	return int((warmup + step - 1) / step)
}

func logOf(v float64) float64 { return math.Log(max(v, minLogValue)) }

// learn adds one value per statistic to slot at now. vals[i] is NaN for a
// statistic without a value this time (a phase not seen), which is left
// as it is.
func (b *baseline) learn(slot int, now time.Time, vals []float64) {
	m := &b.meta[slot]
	w := float64(m.Weight)
	if m.Updated != 0 && b.halfLife > 0 {
		age := now.Sub(time.Unix(m.Updated, 0))
		if age > 0 {
			w *= math.Exp2(-float64(age) / float64(b.halfLife))
		}
	}
	warm := m.N >= b.warmN
	w++
	ms := b.moments[slot*b.stats : (slot+1)*b.stats]
	for i, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		x := logOf(v)
		mo := &ms[i]
		mean, dev := float64(mo.Mean), float64(mo.Dev)
		if m.N == 0 || (mean == 0 && dev == 0) {
			mo.Mean, mo.Dev = float32(x), float32(minSpread)
			continue
		}
		if warm {
			limit := baselineClip * max(dev, minSpread)
			x = min(max(x, mean-limit), mean+limit)
		}
		d := x - mean
		mean += d / w
		dev += (math.Abs(d) - dev) / w
		mo.Mean, mo.Dev = float32(mean), float32(max(dev, 1e-6)) // never the unset 0
	}
	m.Weight = float32(w)
	m.N++
	m.Updated = now.Unix()
}

// Usual is one statistic's baseline for a slot: its typical value
// (exp of the mean log, the geometric mean) and its spread (mean absolute
// deviation of the log; 0.1 is about ±10%).
type Usual struct {
	Value  float64 `json:"value"`
	Spread float64 `json:"spread"`
}

// beyond reports whether v lies above u by at least ratio and beyond its
// noise.
func (u Usual) beyond(v, ratio float64) bool {
	if u.Value <= 0 || v < ratio*u.Value {
		return false
	}
	return logOf(v)-logOf(u.Value) > noiseK*max(u.Spread, minSpread)
}

// usual returns the baseline of slot: one Usual per statistic, and
// whether the slot is warm.
func (b *baseline) usual(slot int) ([]Usual, bool) {
	m := b.meta[slot]
	out := make([]Usual, b.stats)
	for i, mo := range b.moments[slot*b.stats : (slot+1)*b.stats] {
		if m.N == 0 || (mo.Mean == 0 && mo.Dev == 0) {
			continue
		}
		out[i] = Usual{Value: math.Exp(float64(mo.Mean)), Spread: float64(mo.Dev)}
	}
	return out, m.N >= b.warmN
}

func (b *baseline) usualValue(slot, stat int) (float64, bool) {
	mo, m := b.moments[slot*b.stats+stat], b.meta[slot]
	if m.N == 0 || (mo.Mean == 0 && mo.Dev == 0) {
		return 0, m.N >= b.warmN
	}
	return math.Exp(float64(mo.Mean)), m.N >= b.warmN
}

// bytes is the baseline's memory.
func (b *baseline) bytes() int {
	return 64 + len(b.meta)*16 + len(b.moments)*8
}

// slotName names a slot of spec's seasonality for explanations, such as
// "14:00 UTC" or "Tue 14:00 UTC".
func slotName(spec *checks.ShapeSpec, t time.Time) string {
	t = t.UTC()
	switch spec.Seasonality {
	case checks.SeasonWeekly:
		return t.Format("Mon 15:00 UTC")
	case checks.SeasonNone:
		return "any time"
	}
	return t.Format("15:00 UTC")
}
