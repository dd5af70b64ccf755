package shape

import (
	"math"
	"time"

	"github.com/outposthq/outpost/checks"
)

// The series model: what a series check's value usually is now, how
// surprising the latest value is for this series, and whether the series
// has settled at a new level. Step is a pure function of (state, value,
// now); the state is a fixed handful of numbers and one small record per
// seasonal slot (SeriesState).
//
// A value x is judged in four steps.
//
//  1. Its deviation from what is usual, in noise bands: z = (x − usual) /
//     band. The usual is the value's seasonal slot (its hour of the day or
//     week: the mean and mean absolute deviation of the values seen
//     there, with shape.half_life) once that slot has been seen on two
//     days; before that, and with seasonality none, the recent level (an
//     exponentially weighted mean and mean absolute deviation of the last
//     values, 8 values' half-life: useful from the first hour). The band
//     never falls below 5% of the series' typical magnitude (a mean of
//     |x|), nor below a fifth of its long-run spread (the mean absolute
//     deviation about a slow mean, with the magnitude's half-life): floors
//     scaled to the series, so that on a series that is mostly 0 a 1 is
//     not a billion times the usual, and a quiet hour of a series that
//     usually moves does not make its ordinary moves many bands out.
//  2. Its surprise, the anomaly likelihood: the share of the series' own
//     recent history (a decayed histogram of z by side and log(1+|z|),
//     with a half-life of a week of values, at least 1000) that deviated
//     at least as far on the same side. A series that is always bursty
//     has large deviations all the time, and one more burst is not news;
//     on a steady series a smaller jump is. The same is done for the
//     drift, the recent average of z (two hours' half-life, at least 8
//     values), so that a sustained move that no single value makes
//     surprising is found too, and for the pair, the mean z of the latest
//     two values, each counted up to three bands: two values in a row
//     beyond the noise can be rare on a series where one such value is
//     not (isolated blips). The surprise is the rarest of the three.
//  3. A change point: when every value for level_shift.for (and at least
//     three values) lies more than three bands from the recent level on
//     the same side, the recent level moves to their mean at once, and
//     if that was surprising the seasonal slots learn afresh, so that
//     after a real level change the usual value follows in minutes, not
//     days.
//  4. Hysteresis: a finding opens when the surprise is rarer than
//     shape.surprise (once in 84h of values by default) and closes once
//     six values in a row are commonplace again (at least 1 in 10 of the
//     history deviated as much).
//
// While a value is learned it is clipped to within three bands of the
// baseline it updates, so that a burst of outliers moves the baseline only
// slowly (the change point above is the fast way).

// Model constants. They have meanings, not per-file fits; docs/config.md
// says how they were chosen.
const (
	// seriesRecentN is the recent level's half-life, in values.
	seriesRecentN = 8
	// seriesLongN is the surprise history's shortest half-life, in
	// values. It is 2/shape.surprise values when that is longer, so that
	// the history can tell how rare a value is: with the default surprise
	// (once in 84h), a week of values.
	seriesLongN = 1000
	// seriesDriftFor is the drift average's half-life, as a duration, so
	// that a sustained move is weighed over the same time at any interval;
	// it is never fewer values than the recent level's (seriesRecentN), so
	// that at a long interval the drift is still an average, not the latest
	// value. Rules without an interval (SeriesRules.Interval 0) take it as
	// seriesDriftN values, which is the same at a 5m interval.
	seriesDriftFor = 2 * time.Hour
	seriesDriftN   = 24
	// seriesFloorShare is the smallest noise band, as a share of the
	// series' typical magnitude, and seriesSpreadShare as a share of its
	// long-run spread: the band is never narrower than either.
	seriesFloorShare  = 0.05
	seriesSpreadShare = 0.2
	// seriesClip is how many bands a value may lie from a baseline before
	// it is clipped while learned, and beyond which it counts towards a
	// level shift.
	seriesClip = 3
	// seriesCloseTail is the surprise under which a value is commonplace,
	// and seriesCalmN how many commonplace values in a row close a finding.
	seriesCloseTail = 0.1
	seriesCalmN     = 6
	// seriesWarmN is the fewest values the model learns before it judges
	// (shape.warmup may ask for more).
	seriesWarmN = 48
	// seriesSlotDays is how many days a seasonal slot must have been seen
	// on before it judges. (A slot's half-life is shape.half_life: see
	// SeriesRules.SlotN.)
	seriesSlotDays = 2
	// seriesPriorN is the weight, in values, of the prior surprise
	// history (see tailShare).
	seriesPriorN = 50
	// seriesShiftMin is the fewest values a level shift needs.
	seriesShiftMin = 3
	// The surprise histograms: histBins bins of histWidth over log(1+|z|),
	// up to |z| of about 3000 (the last bin holds the rest).
	histBins  = 20
	histWidth = 0.4
)

// SeriesState is a series tracker's learned state, what Saved carries.
// Its memory is fixed: 616 bytes, plus 20 bytes per seasonal slot (24
// daily, 168 weekly).
type SeriesState struct {
	// N is how many values were learned.
	N uint32
	// Mean and Dev are the recent level and its mean absolute deviation.
	Mean, Dev float64
	// Mag is the series' typical magnitude, a slow mean of |x|.
	Mag float64
	// LongMean and LongDev are the series' long-run level and spread: a
	// slow mean of x and mean absolute deviation about it, learned like
	// Mag. (A state saved without them starts them from the recent level.)
	LongMean, LongDev float64
	// Drift is the recent average of the signed deviation z.
	Drift float64
	// Hist and DriftHist are the decayed distributions of z and of the
	// drift, by side (0 above the usual, 1 below) and size: log(1+|z|) and
	// of log(1+|Drift|), in bins of histWidth.
	Hist, DriftHist [2][histBins]float32
	// PairHist is the decayed distribution of the pair, the mean z of the
	// latest two values each clipped to seriesClip bands, like Hist; Prev
	// is the latest value's clipped z, the pair's other half. (A state
	// saved without them starts the pair's history empty: its prior
	// judges until it fills.)
	PairHist [2][histBins]float32
	Prev     float32
	// HistInc is the weight the next value gets in them.
	HistInc float64
	// Run counts the latest values beyond seriesClip bands on one side
	// (positive above, negative below), since RunStart (Unix seconds);
	// RunSum is their sum.
	Run      int32
	RunStart int64
	RunSum   float64
	// RunFrom is the recent level when the run began.
	RunFrom float64
	// Open is whether the surprise opened a finding that has not closed;
	// Calm counts the commonplace values in a row since.
	Open bool
	Calm int32
	// Slots are the seasonal baseline, one per slot of the day or week.
	Slots []SeasonSlot
}

// SeasonSlot is one slot of the seasonal baseline: the mean of the values
// seen in it and their mean absolute deviation.
type SeasonSlot struct {
	Mean, Dev float32
	// N is how many values the slot learned, Days on how many days, Day
	// the latest (Unix days).
	N    uint32
	Days uint16
	Day  uint32
}

// seasonSlotBytes and seriesStateBytes are the memory stated above.
const (
	seasonSlotBytes  = 20
	seriesStateBytes = 616
)

func newSeriesState(slots int) SeriesState {
	return SeriesState{Slots: make([]SeasonSlot, slots)}
}

// SeriesVerdict is what the model says about one value.
type SeriesVerdict struct {
	Value float64
	// Usual is the value expected, and Band the noise band (mean absolute
	// deviation, floored), of the baseline that explained the value best.
	Usual, Band float64
	// Seasonal is whether that baseline is the value's seasonal slot
	// (else the recent level).
	Seasonal bool
	// Z is the value's deviation in bands (signed).
	Z float64
	// Tail is the share of the series' recent history that deviated at
	// least as much (0: none did); Drift whether it is the drift's, Pair
	// whether the pair's.
	Tail        float64
	Drift, Pair bool
	// History is how many values' worth the surprise history holds.
	History float64
	// DriftZ is the drift, the recent average of z; PairZ the pair, the
	// mean z of this value and the one before, each clipped to three
	// bands.
	DriftZ, PairZ float64
	// Run is how many values in a row lie beyond the noise on this
	// value's side (negative: below), for RunFor.
	Run    int
	RunFor time.Duration
	// Shift is set when this value completed a level shift: the recent
	// level moved from ShiftFrom to ShiftTo.
	Shift              bool
	ShiftFrom, ShiftTo float64
	// Open is whether a finding is open after this value.
	Open bool
	// Warm is whether the model judged this value.
	Warm bool
}

func ewAlpha(n float64) float64 { return 1 - math.Exp2(-1/n) }

// alphaRecent is the recent level's fixed weight per value.
var alphaRecent = ewAlpha(seriesRecentN)

// surpriseBin is the histogram bin of a deviation of a bands.
func surpriseBin(a float64) int { return min(int(math.Log1p(a)/histWidth), histBins-1) }

// tailShare is the share of h's weight on side in bin and above, with a
// prior of up to seriesPriorN values of Gaussian noise (the mean absolute
// deviation is 0.8σ): while the history is short, "unseen so far" is not
// yet rare. The prior fades as the history fills. inc is the weight the
// next value will get (the weights grow instead of decaying: see learnHists)
// and alpha the decay per value.
func tailShare(h *[2][histBins]float32, side, bin int, inc, alpha float64) (share, values float64) {
	var tail, total float64
	inc = max(inc, 1)
	for sd := range h {
		for i, w := range h[sd] {
			total += float64(w)
			if sd == side && i >= bin {
				tail += float64(w)
			}
		}
	}
	tail, total = tail/inc, total/inc          // in values
	pn := seriesPriorN * max(0, 1-alpha*total) // alpha×total tends to 1 as history fills
	if pn < 1e-3 {
		return tail / max(total, 1e-12), total // the prior no longer counts
	}
	k := math.Expm1(float64(bin) * histWidth) // the bin's lower edge, in bands
	prior := math.Erfc(0.8*k/math.Sqrt2) / 2  // one side of Gaussian noise: a band is 0.8σ
	return (tail + pn*prior) / (total + pn), total
}

// learnHists adds the value's bins to the histograms. Rather than decay
// every bin by (1−alpha) per value, each value weighs 1/(1−alpha) times
// the one before (HistInc), and the bins are scaled down now and then:
// the shares are the same, and learning costs three additions.
func (s *SeriesState) learnHists(side, bin, dside, dbin, pside, pbin int, alpha float64) {
	if s.HistInc <= 0 {
		s.HistInc = 1
	}
	s.Hist[side][bin] += float32(s.HistInc)
	s.DriftHist[dside][dbin] += float32(s.HistInc)
	s.PairHist[pside][pbin] += float32(s.HistInc)
	s.HistInc /= 1 - alpha
	if s.HistInc > 1e20 {
		for _, h := range []*[2][histBins]float32{&s.Hist, &s.DriftHist, &s.PairHist} {
			for sd := range h {
				for i := range h[sd] {
					h[sd][i] = float32(float64(h[sd][i]) / s.HistInc)
				}
			}
		}
		s.HistInc = 1
	}
}

// sideOf is the histogram side of z.
func sideOf(z float64) int {
	if z < 0 {
		return 1
	}
	return 0
}

// SeriesRules are the configured parts of the model.
type SeriesRules struct {
	// OpenTail is the surprise that opens a finding (shape.surprise).
	OpenTail float64
	// ShiftFor is how long values must stay beyond the noise on one side
	// to be a level shift (level_shift.for; 0: never).
	ShiftFor time.Duration
	// WarmN is how many values the model learns before it judges: at
	// least seriesWarmN.
	WarmN int
	// SlotN is a seasonal slot's half-life in values: shape.half_life
	// over the seasonal period, times the values a slot gets per visit.
	SlotN float64
	// Interval is the series' interval, which turns the drift's half-life
	// (seriesDriftFor) into values; 0 gives it seriesDriftN values.
	Interval time.Duration
	// alphaLong, alphaSlot and alphaDrift are the weights per value of the
	// surprise history, of a slot and of the drift, computed once by
	// seriesRules.
	alphaLong, alphaSlot, alphaDrift float64
}

// driftAlpha is the drift's weight per value: see seriesDriftFor.
func (r *SeriesRules) driftAlpha() float64 {
	if r.alphaDrift != 0 {
		return r.alphaDrift
	}
	n := float64(seriesDriftN)
	if r.Interval > 0 {
		n = max(float64(seriesDriftFor)/float64(r.Interval), seriesRecentN)
	}
	return ewAlpha(n)
}

// seriesRules are spec's rules for the model, at interval.
func seriesRules(spec *checks.ShapeSpec, interval time.Duration) SeriesRules {
	r := SeriesRules{OpenTail: spec.Surprise, WarmN: max(seriesWarmN, warmValues(spec.Warmup, interval)), Interval: interval}
	if spec.LevelShift != nil {
		r.ShiftFor = spec.LevelShift.For
	}
	period := 24 * time.Hour
	if spec.Seasonality == checks.SeasonWeekly {
		period = 7 * 24 * time.Hour
	}
	if interval > 0 {
		r.SlotN = float64(spec.HalfLife) / float64(period) * max(float64(time.Hour)/float64(interval), 1)
	}
	r.alphaLong = ewAlpha(max(seriesLongN, 2/max(r.OpenTail, 1e-6)))
	r.alphaSlot = ewAlpha(max(r.SlotN, 1))
	r.alphaDrift = r.driftAlpha()
	return r
}

func (r *SeriesRules) slotAlpha() float64 {
	if r.alphaSlot == 0 {
		return ewAlpha(max(r.SlotN, 1))
	}
	return r.alphaSlot
}

// Step judges x, seen at now in seasonal slot slot, then learns it.
func (s *SeriesState) Step(x float64, slot int, now time.Time, rules SeriesRules) SeriesVerdict {
	openTail, shiftFor := rules.OpenTail, rules.ShiftFor
	v := SeriesVerdict{Value: x, Usual: x}
	if s.N == 0 {
		s.Mean, s.Dev, s.Mag, s.LongMean, s.N = x, 0, math.Abs(x), x, 1
		s.learnSlot(slot, x, now, 0, rules.slotAlpha())
		return v
	}
	if s.LongMean == 0 && s.LongDev == 0 {
		s.LongMean, s.LongDev = s.Mean, s.Dev // a state saved without them
	}
	floor := max(seriesFloorShare*s.Mag, seriesSpreadShare*s.LongDev, 1e-12)
	band := max(s.Dev, floor)
	v.Usual, v.Band = s.Mean, band
	v.Z = (x - s.Mean) / band
	if slot >= 0 && slot < len(s.Slots) && s.Slots[slot].Days >= seriesSlotDays {
		sl := s.Slots[slot]
		sband := max(float64(sl.Dev), floor)
		v.Usual, v.Band, v.Z, v.Seasonal = float64(sl.Mean), sband, (x-float64(sl.Mean))/sband, true
	}
	s.learnSlot(slot, x, now, floor, rules.slotAlpha())

	// Surprise, of the value, the drift and the pair, against the history.
	long := rules.alphaLong
	if long == 0 {
		long = ewAlpha(max(seriesLongN, 2/max(openTail, 1e-6)))
	}
	s.Drift += rules.driftAlpha() * (max(min(v.Z, 10), -10) - s.Drift)
	v.DriftZ = s.Drift
	side, bin := sideOf(v.Z), surpriseBin(math.Abs(v.Z))
	dside, dbin := sideOf(s.Drift), surpriseBin(math.Abs(s.Drift))
	zc := max(min(v.Z, seriesClip), -seriesClip)
	v.PairZ = (zc + float64(s.Prev)) / 2
	s.Prev = float32(zc)
	pside, pbin := sideOf(v.PairZ), surpriseBin(math.Abs(v.PairZ))
	v.Warm = int(s.N) >= max(rules.WarmN, seriesWarmN)
	if v.Warm {
		v.Tail, v.History = tailShare(&s.Hist, side, bin, s.HistInc, long)
		if t, _ := tailShare(&s.DriftHist, dside, dbin, s.HistInc, long); t < v.Tail {
			v.Tail, v.Drift = t, true
		}
		if t, _ := tailShare(&s.PairHist, pside, pbin, s.HistInc, long); t < v.Tail {
			v.Tail, v.Drift, v.Pair = t, false, true
		}
	}
	s.learnHists(side, bin, dside, dbin, pside, pbin, long)

	// The recent level: a change point, or a clipped update.
	z := (x - s.Mean) / band
	step := int32(0)
	if z > seriesClip {
		step = 1
	} else if z < -seriesClip {
		step = -1
	}
	switch {
	case step == 0:
		s.Run, s.RunSum = 0, 0
	case s.Run != 0 && (step > 0) == (s.Run > 0):
		s.Run += step
		s.RunSum += x
	default:
		s.Run, s.RunStart, s.RunSum, s.RunFrom = step, now.Unix(), x, s.Mean
	}
	v.Run = int(s.Run)
	if s.Run != 0 {
		v.RunFor = now.Sub(time.Unix(s.RunStart, 0))
	}
	if n := abs32(s.Run); shiftFor > 0 && n >= seriesShiftMin && v.RunFor >= shiftFor {
		to := s.RunSum / float64(n)
		v.Shift, v.ShiftFrom, v.ShiftTo = true, s.RunFrom, to
		// Uncertain for a while after a change: at least a sixth of the
		// jump, so that the values around the new level are not news.
		s.Dev = max(s.Dev, math.Abs(to-s.Mean)/seriesClip/2)
		s.Mean = to
		s.Run, s.RunSum = 0, 0
		if v.Warm && (s.Open || v.Tail < openTail) {
			// A surprising shift: the seasonal slots learned the old
			// level, and learn the new one afresh.
			clear(s.Slots)
		}
	} else {
		xc := min(max(x, s.Mean-seriesClip*band), s.Mean+seriesClip*band)
		d := xc - s.Mean
		a := alphaRecent
		s.Mean += a * d
		s.Dev += a * (math.Abs(d) - s.Dev)
	}
	slow := max(long, 1/float64(s.N+1)) // a plain mean at first
	s.Mag += slow * (math.Abs(x) - s.Mag)
	d := x - s.LongMean
	s.LongMean += slow * d
	s.LongDev += slow * (math.Abs(d) - s.LongDev)
	if s.N < math.MaxUint32 {
		s.N++
	}

	// Hysteresis.
	if v.Warm {
		switch {
		case v.Tail < openTail:
			s.Open, s.Calm = true, 0
		case s.Open && v.Tail >= seriesCloseTail:
			s.Calm++
			if s.Calm >= seriesCalmN {
				s.Open, s.Calm = false, 0
			}
		case s.Open:
			s.Calm = 0
		}
	}
	v.Open = s.Open
	return v
}

// learnSlot learns x into its seasonal slot.
func (s *SeriesState) learnSlot(slot int, x float64, now time.Time, floor, slotAlpha float64) {
	if slot < 0 || slot >= len(s.Slots) {
		return
	}
	sl := &s.Slots[slot]
	day := uint32(now.Unix() / 86400)
	if sl.N == 0 {
		*sl = SeasonSlot{Mean: float32(x), N: 1, Days: 1, Day: day}
		return
	}
	if day != sl.Day {
		sl.Day = day
		if sl.Days < math.MaxUint16 {
			sl.Days++
		}
	}
	if sl.N < math.MaxUint32 {
		sl.N++
	}
	a := max(1/float64(sl.N), slotAlpha)
	mean, band := float64(sl.Mean), max(float64(sl.Dev), floor)
	if sl.Days > seriesSlotDays {
		x = min(max(x, mean-seriesClip*band), mean+seriesClip*band)
	}
	d := x - mean
	sl.Mean = float32(mean + a*d)
	sl.Dev = float32(float64(sl.Dev) + a*(math.Abs(d)-float64(sl.Dev)))
}

func abs32(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
