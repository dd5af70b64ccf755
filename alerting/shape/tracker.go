package shape

import (
	"math"
	"slices"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Shape tracking: what the evaluator keeps per (check, region) to see a
// shape change. Trackers live next to windows and are guarded by their
// region's mutex.

// Latency baseline statistics: the window's p50, p90 and p99, then each
// phase's p50 and p99.
const (
	statP50 = iota
	statP90
	statP99
	statPhases
	numLatencyStats = statPhases + 2*len(wire.PhaseNames)
)

// Tracker is one (check, region)'s shape state: latency buckets
// for http, tcp, tls and dns checks, recent values for series checks,
// both with their baseline and current findings.
type Tracker struct {
	spec   *checks.ShapeSpec
	base   slotStats
	series bool

	// Latency: a ring of ShapeBuckets closed buckets and the open one.
	bucketLen time.Duration
	bucketEnd time.Time // end of the open bucket; zero before the first
	buckets   [checks.ShapeBuckets + 1]latencyBucket
	open      int       // index of the open bucket
	closed    int       // closed buckets held, up to ShapeBuckets
	trend     []float64 // window p50 at each close, oldest first
	win       LatencyWindow

	// Series: the model (nil for latency trackers, which it would only
	// make larger) and the recent bumps.
	ser   *seriesPart
	bump  Bump // the bump in progress; zero Peak when none
	bumps []Bump

	findings []Finding
	forecast *Finding
	// judged is whether the latest findings come from a verdict: a warm
	// baseline slot and, for latency, a window with min_samples probes.
	// A tracker that has not judged (after a start, a gap, or while the
	// hour's slot is cold) says nothing either way, and an open shape
	// incident is neither resolved nor paged again on its account.
	judged bool
}

// seriesPart is a series tracker's model, its verdict on the latest
// value, and the rules it was built with.
type seriesPart struct {
	model   SeriesState
	verdict SeriesVerdict
	last    float64
	hasLast bool
	rules   SeriesRules
}

// seriesPartBytes is unsafe.Sizeof(seriesPart{}), which a test holds it
// to: the model's fixed part, the verdict and the rules.
const seriesPartBytes = 824

// maxBumps bounds the bumps kept: MaxRecurringDays of a few a day.
const maxBumps = 4 * checks.MaxRecurringDays

func NewTracker(c *checks.Check) *Tracker {
	s := c.Shape
	if s == nil {
		return nil
	}
	t := &Tracker{spec: s, series: c.Series != nil}
	if t.series {
		slots := s.Slots()
		if s.Seasonality == checks.SeasonNone {
			slots = 0 // the recent level alone
		}
		t.ser = &seriesPart{model: newSeriesState(slots), rules: seriesRules(s, c.Interval)}
		return t
	}
	t.bucketLen = s.Bucket()
	t.base = newPackedBaseline(s.Slots(), numLatencyStats, s.HalfLife, warmValues(s.Warmup, t.bucketLen))
	t.trend = make([]float64, 0, max(s.TrendBuckets(), 1))
	return t
}

// add feeds one result received at now. It reports whether the tracker's
// findings changed, so that the check is decided again.
func (t *Tracker) Add(r *wire.Result, now time.Time) bool {
	if t.series {
		return t.addValue(r, now)
	}
	changed := false
	// Close every bucket that ended; a gap of several buckets closes
	// empty ones, and a gap longer than the window starts afresh.
	if t.bucketEnd.IsZero() || now.Sub(t.bucketEnd) > time.Duration(len(t.buckets))*t.bucketLen {
		t.reset(now)
	}
	for !now.Before(t.bucketEnd) {
		changed = t.closeBucket(t.bucketEnd) || changed
	}
	if r.OK {
		t.buckets[t.open].add(r)
	}
	return changed
}

// reset empties the window and starts a bucket at now.
func (t *Tracker) reset(now time.Time) {
	for i := range t.buckets {
		t.buckets[i].clear()
	}
	t.closed, t.trend = 0, t.trend[:0]
	t.bucketEnd = now.Add(t.bucketLen)
	t.judged = false
}

// closeBucket closes the open bucket at end: the window of the closed
// buckets is measured, judged against the baseline, then learned.
func (t *Tracker) closeBucket(end time.Time) bool {
	t.open = (t.open + 1) % len(t.buckets)
	t.buckets[t.open].clear()
	t.closed = min(t.closed+1, checks.ShapeBuckets)
	t.bucketEnd = end.Add(t.bucketLen)

	t.win = t.measure()
	if t.win.Samples == 0 {
		t.trend = t.trend[:0] // a gap breaks a trend
	} else {
		if len(t.trend) == cap(t.trend) {
			t.trend = slices.Delete(t.trend, 0, 1)
		}
		t.trend = append(t.trend, t.win.Total.P50)
	}
	t.win.Trend, t.win.Step = t.trend, t.bucketLen

	slot := t.spec.Slot(end)
	base := t.latencyBaseline(slot, end)
	found := DetectLatency(t.spec, base, t.win, end)
	t.judged = base.Warm && t.win.Samples >= t.spec.MinSamples
	if t.win.Samples >= t.spec.MinSamples {
		t.base.learn(slot, end, t.win.stats())
	}
	return t.setFindings(found)
}

// measure reads the window's quantiles from the closed buckets.
func (t *Tracker) measure() LatencyWindow {
	var w LatencyWindow
	var bins []counted
	gather := func(value int) []counted {
		bins = bins[:0]
		for i := 1; i <= t.closed; i++ {
			bins = t.buckets[(t.open-i+len(t.buckets))%len(t.buckets)].gather(value, bins)
		}
		return bins
	}
	q, n := quantiles(gather(0), 0.5, 0.9, 0.99)
	if w.Samples = n; n == 0 {
		return w
	}
	w.Total = Quantiles{P50: q[0], P90: q[1], P99: q[2]}
	for i := range w.Phases {
		if q, n := quantiles(gather(1+i), 0.5, 0.99); n > 0 {
			w.Phases[i] = PhaseWindow{Samples: n, P50: q[0], P99: q[1]}
		}
	}
	return w
}

// stats are the window's values in baseline order; NaN for phases unseen.
func (w LatencyWindow) stats() []float64 {
	v := make([]float64, numLatencyStats)
	v[statP50], v[statP90], v[statP99] = w.Total.P50, w.Total.P90, w.Total.P99
	for i, p := range w.Phases {
		v[statPhases+2*i], v[statPhases+2*i+1] = math.NaN(), math.NaN()
		if p.Samples > 0 {
			v[statPhases+2*i], v[statPhases+2*i+1] = p.P50, p.P99
		}
	}
	return v
}

func (t *Tracker) latencyBaseline(slot int, now time.Time) LatencyBaseline {
	u, warm := t.base.usual(slot)
	b := LatencyBaseline{Warm: warm, Slot: slotName(t.spec, now), P50: u[statP50], P90: u[statP90], P99: u[statP99]}
	for i := range b.Phases {
		b.Phases[i].P50, b.Phases[i].P99 = u[statPhases+2*i], u[statPhases+2*i+1]
	}
	return b
}

// addValue feeds a series result: judged by the series model (see
// SeriesState), then learned; and checked for a spike due.
func (t *Tracker) addValue(r *wire.Result, now time.Time) bool {
	if !r.OK || r.Observed.Value == nil || math.IsNaN(*r.Observed.Value) || math.IsInf(*r.Observed.Value, 0) {
		return t.setForecast(now)
	}
	v := *r.Observed.Value
	p := t.ser
	p.last, p.hasLast = v, true
	p.verdict = p.model.Step(v, t.spec.Slot(now), now, p.rules)
	found := DetectSeries(t.spec, p.verdict, t.findings, now)
	changed := t.setFindings(found) || p.verdict.Warm != t.judged
	t.judged = p.verdict.Warm
	if p.verdict.Warm && p.verdict.Usual > 0 {
		t.trackBump(v/p.verdict.Usual, now)
	}
	return t.setForecast(now) || changed
}

// trackBump records stretches above half the spike threshold.
func (t *Tracker) trackBump(ratio float64, now time.Time) {
	if t.spec.Spike == nil {
		return
	}
	if ratio >= t.spec.Spike.Threshold()/2 {
		if t.bump.Peak.IsZero() || ratio > t.bump.Ratio {
			t.bump = Bump{Peak: now, Ratio: ratio}
		}
		return
	}
	if t.bump.Peak.IsZero() {
		return
	}
	t.bumps = append(t.bumps, t.bump)
	t.bump = Bump{}
	cut := now.Add(-time.Duration(checks.MaxRecurringDays+1) * day)
	t.bumps = slices.DeleteFunc(t.bumps, func(b Bump) bool { return b.Peak.Before(cut) })
	if len(t.bumps) > maxBumps {
		t.bumps = slices.Delete(t.bumps, 0, len(t.bumps)-maxBumps)
	}
}

func (t *Tracker) setForecast(now time.Time) bool {
	var next *Finding
	if t.spec.Recurring != nil && t.spec.Spike != nil {
		if f, ok := ForecastSpike(t.spec.Recurring, t.spec.Spike.Threshold(), t.bumps, now); ok {
			next = &f
		}
	}
	changed := (next == nil) != (t.forecast == nil) || (next != nil && !next.Due.Equal(t.forecast.Due))
	t.forecast = next
	return changed
}

// setFindings replaces the findings and reports whether the set of
// detectors (and phases) found changed; new numbers alone are no change.
func (t *Tracker) setFindings(found []Finding) bool {
	same := len(found) == len(t.findings)
	for i := 0; same && i < len(found); i++ {
		same = found[i].Detector == t.findings[i].Detector && found[i].Phase == t.findings[i].Phase
	}
	t.findings = found
	return !same
}

// trackerBytes is what a Tracker itself takes: 600 bytes, in a 640-byte
// allocation (a test holds it to unsafe.Sizeof).
const trackerBytes = 640

// Bytes estimates the tracker's memory: itself, the baseline, and what
// the window's buckets hold.
func (t *Tracker) Bytes() int {
	if t.series {
		return trackerBytes + seriesPartBytes + seasonSlotBytes*cap(t.ser.model.Slots) + 24*cap(t.bumps)
	}
	n := trackerBytes + t.base.bytes() + 8*cap(t.trend)
	for i := range t.buckets {
		n += t.buckets[i].bytes()
	}
	return n
}

// Findings returns copies of the current findings and forecast, and
// whether the findings come from a verdict (see Tracker.judged).
func (t *Tracker) Findings() (found []Finding, forecast *Finding, judged bool) {
	if t.forecast != nil {
		f := *t.forecast
		forecast = &f
	}
	return slices.Clone(t.findings), forecast, t.judged
}

// Series reports whether the tracker follows a series value rather than
// latencies.
func (t *Tracker) Series() bool { return t.series }

// Saved is a tracker's learned state, what survives a restart: the
// baseline of every slot and, for a series, the model and the recent
// spikes. It holds no window: a restarted tracker measures afresh.
type Saved struct {
	Series  bool
	Stats   int
	Meta    []SlotMeta
	Moments []Moment
	Bumps   []Bump
	// Model is a series tracker's model. Series states saved before it
	// existed have none (they held a log-space baseline in Meta and
	// Moments) and are not restored: the model warms up again.
	Model *SeriesState
}

// Save returns a copy of the tracker's learned state.
func (t *Tracker) Save() Saved {
	if t.series {
		m := t.ser.model
		m.Slots = slices.Clone(m.Slots)
		return Saved{Series: true, Bumps: slices.Clone(t.bumps), Model: &m}
	}
	meta, moments := t.base.save()
	return Saved{Series: t.series, Stats: t.base.numStats(), Meta: meta, Moments: moments, Bumps: slices.Clone(t.bumps)}
}

// Restore copies s into the tracker and reports whether it could: a state
// of other dimensions (another seasonality, another check type) is not
// restored.
func (t *Tracker) Restore(s Saved) bool {
	if t.series || s.Series {
		if !t.series || !s.Series || s.Model == nil || len(s.Model.Slots) != len(t.ser.model.Slots) {
			return false
		}
		slots := t.ser.model.Slots
		copy(slots, s.Model.Slots)
		t.ser.model = *s.Model
		t.ser.model.Slots = slots
		if len(s.Bumps) <= maxBumps {
			t.bumps = slices.Clone(s.Bumps)
		}
		return true
	}
	if t.series != s.Series || t.base.numStats() != s.Stats || !t.base.restore(s.Meta, s.Moments) {
		return false
	}
	if t.series && len(s.Bumps) <= maxBumps {
		t.bumps = slices.Clone(s.Bumps)
	}
	return true
}
