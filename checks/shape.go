package checks

import (
	"math"
	"reflect"
	"slices"
	"time"

	"gopkg.in/yaml.v3"
)

// ShapeSpec tunes the detectors that watch a check's shape rather than its
// pass/fail: the latency distribution of http, tcp, tls and dns checks,
// and the value of series checks. Every check of those types has one after
// Load, filled with defaults; "shape: false" turns every detector off, and
// "tail_shift: false" (and so on) turns one off.
//
// Findings are warnings (the DEGRADED route) unless Page promotes them.
type ShapeSpec struct {
	// Off is set by "shape: false".
	Off bool `yaml:"-"`
	// Page sends findings to the critical route instead of warning.
	Page bool `yaml:"page"`
	// Window is the recent stretch of latency compared with the baseline.
	// Default max(15m, min_samples × interval). Latency checks only.
	Window time.Duration `yaml:"window"`
	// MinSamples is the fewest probes a window must hold for a verdict.
	// Default 30, what p90 needs (see QuantileSamples). Latency checks
	// only.
	MinSamples int `yaml:"min_samples"`
	// Seasonality is how the baseline is sliced: daily (one slot per hour
	// of the day, the default), weekly (per hour of the week) or none.
	Seasonality string `yaml:"seasonality"`
	// HalfLife is how fast the baseline forgets: data this old weighs half
	// as much as today's. Default 168h (a week). For series checks it is
	// the seasonal slots' memory.
	HalfLife time.Duration `yaml:"half_life"`
	// Warmup is how much data a baseline slot needs before any detector
	// gives a verdict from it. Default 1h. A series check judges after
	// Warmup of values and at least 48 values.
	Warmup time.Duration `yaml:"warmup"`

	// Surprise is how rare a series value's deviation must be, as a share
	// of the series' own recent history, before a finding opens: 0.001
	// (the default) means no more than one value in a thousand deviated
	// as much lately. Series checks only.
	Surprise float64 `yaml:"surprise"`

	TailShift  *TailShiftRule  `yaml:"tail_shift"`
	SlowRise   *SlowRiseRule   `yaml:"slow_rise"`
	Spike      *SpikeRule      `yaml:"spike"`
	Drop       *DropRule       `yaml:"drop"`
	Dip        *DipRule        `yaml:"dip"`
	LevelShift *LevelShiftRule `yaml:"level_shift"`
	Recurring  *RecurringRule  `yaml:"recurring"`
	Src        Source
}

// Seasonality values.
const (
	SeasonDaily  = "daily"
	SeasonWeekly = "weekly"
	SeasonNone   = "none"
)

// seasonalities are the values seasonality may take.
var seasonalities = []string{SeasonDaily, SeasonWeekly, SeasonNone}

// Shape defaults.
const (
	DefaultShapeWindow     = 15 * time.Minute
	DefaultShapeMinSamples = 30
	DefaultShapeHalfLife   = 7 * 24 * time.Hour
	DefaultShapeWarmup     = time.Hour
)

// TailShiftRule finds a tail that moved while the median did not: the
// window's p90 or p99 at least Ratio times the baseline's, beyond the
// baseline's own noise for that quantile, and MinDelta above it, with the
// p50 below MedianRatio times its baseline. Each quantile is judged only
// from a window of QuantileSamples probes.
type TailShiftRule struct {
	Off         bool          `yaml:"-"`
	Ratio       float64       `yaml:"ratio"`
	MedianRatio float64       `yaml:"median_ratio"`
	MinDelta    time.Duration `yaml:"min_delta"`
	Src         Source
}

// SlowRiseRule finds a median that climbs: over the last For the window's
// p50 rose steadily to at least Ratio times the baseline, beyond its
// noise, and MinDelta above it, or stayed at that height throughout.
type SlowRiseRule struct {
	Off      bool          `yaml:"-"`
	Ratio    float64       `yaml:"ratio"`
	For      time.Duration `yaml:"for"`
	MinDelta time.Duration `yaml:"min_delta"`
	Src      Source
}

// SpikeRule finds a series value surprisingly high (see
// ShapeSpec.Surprise) for Points values in a row; or, when MaxRatio is
// set, instead, at least MaxRatio times the usual value and beyond its
// noise, however often such values came.
type SpikeRule struct {
	Off bool `yaml:"-"`
	// MaxRatio is 0 unless set: no floor but the series' own noise.
	MaxRatio float64 `yaml:"max_ratio"`
	Points   int     `yaml:"points"`
	Src      Source
}

// DefaultSurpriseFor is shape.surprise's default at interval: the share
// of values that come once in DefaultSurpriseEvery, within 0.0001 and
// 0.01.
func DefaultSurpriseFor(interval time.Duration) float64 {
	if interval <= 0 {
		interval = time.Minute
	}
	return min(max(float64(interval)/float64(DefaultSurpriseEvery), 1e-4), 1e-2)
}

// Threshold is the ratio to usual that counts as a spike for the
// recurring forecast: MaxRatio, or DefaultSpikeRatio when it is not set.
func (r *SpikeRule) Threshold() float64 {
	if r.MaxRatio > 0 {
		return r.MaxRatio
	}
	return DefaultSpikeRatio
}

// DropRule finds a series value surprisingly low and at most MinRatio
// times the usual value (near zero), for Points values in a row.
type DropRule struct {
	Off      bool    `yaml:"-"`
	MinRatio float64 `yaml:"min_ratio"`
	Points   int     `yaml:"points"`
	Src      Source
}

// DipRule finds a series value surprisingly low but not near zero (above
// the drop's MinRatio), for Points values in a row.
type DipRule struct {
	Off    bool `yaml:"-"`
	Points int  `yaml:"points"`
	Src    Source
}

// LevelShiftRule finds a series that moved to a new level and stayed:
// every value for at least For (and three values) beyond the noise on the
// same side. The usual value then follows the new level at once.
type LevelShiftRule struct {
	Off bool          `yaml:"-"`
	For time.Duration `yaml:"for"`
	Src Source
}

// RecurringRule warns Lead ahead of a spike that is due: the series rose
// past half the spike threshold within Tolerance of the same time of day
// on each of the previous Days days, and the latest of those rises reached
// Near times the threshold.
type RecurringRule struct {
	Off       bool          `yaml:"-"`
	Lead      time.Duration `yaml:"lead"`
	Days      int           `yaml:"days"`
	Near      float64       `yaml:"near"`
	Tolerance time.Duration `yaml:"tolerance"`
	Src       Source
}

// Detector defaults.
const (
	DefaultTailRatio       = 3.0
	DefaultTailMedianRatio = 1.5
	DefaultTailMinDelta    = time.Millisecond
	DefaultRiseRatio       = 1.5
	DefaultRiseFor         = 15 * time.Minute
	DefaultRiseMinDelta    = time.Millisecond
	DefaultSpikeRatio      = 4.0 // the recurring forecast's threshold when spike.max_ratio is not set
	DefaultSpikePoints     = 1
	DefaultDropRatio       = 0.1
	DefaultDropPoints      = 1
	DefaultDipPoints       = 1
	DefaultLevelShiftFor   = 30 * time.Minute
	// DefaultSurpriseEvery is how rarely, by default, a deviation may
	// have come lately to be a surprise: once in 84h (3.5 days), which is
	// 1 value in 1000 at a 5m interval. See DefaultSurpriseFor.
	DefaultSurpriseEvery = 84 * time.Hour
	DefaultRecurringLead = 15 * time.Minute
	DefaultRecurringDays = 2
	DefaultRecurringNear = 0.75
	DefaultRecurringTol  = 10 * time.Minute
)

// SamplesBeyond is how many probes of a window must lie beyond a
// quantile, on average, for the window to judge by it: fewer, and a stall
// or two of the scheduler is the quantile (p99 of 100 probes is the
// second-largest of them).
const SamplesBeyond = 3

// QuantileSamples is the fewest probes a window needs to judge by its
// quantile q: SamplesBeyond / (1 − q), so 6 for p50, 30 for p90 and 300
// for p99.
func QuantileSamples(q float64) int {
	return int(math.Ceil(SamplesBeyond/(1-q) - 1e-9))
}

// ShapeBuckets is how many buckets a latency window is cut into; findings
// are re-evaluated as each closes, every Window/ShapeBuckets.
const ShapeBuckets = 3

// maxTrendBuckets bounds the history the slow-rise detector keeps.
const maxTrendBuckets = 48

// Bucket returns the length of one bucket of the latency window.
func (s *ShapeSpec) Bucket() time.Duration { return s.Window / ShapeBuckets }

// TrendBuckets is how many window medians the slow-rise detector keeps:
// enough to span For.
func (s *ShapeSpec) TrendBuckets() int {
	if s.SlowRise == nil {
		return 0
	}
	return s.SlowRise.Points(s.Bucket())
}

// Points is how many trend points, one every step, span For: its two
// ends and every step between. 0 for a step that is not positive.
func (r *SlowRiseRule) Points(step time.Duration) int {
	if step <= 0 {
		return 0
	}
	return int((r.For+step-1)/step) + 1
}

// Slots returns how many baseline slots the seasonality makes.
func (s *ShapeSpec) Slots() int {
	switch s.Seasonality {
	case SeasonWeekly:
		return 7 * 24
	case SeasonNone:
		return 1
	}
	return 24
}

// Slot returns the baseline slot of t (taken in UTC).
func (s *ShapeSpec) Slot(t time.Time) int {
	t = t.UTC()
	switch s.Seasonality {
	case SeasonWeekly:
		return int(t.Weekday())*24 + t.Hour()
	case SeasonNone:
		return 0
	}
	return t.Hour()
}

// offWords turn a switchable block off: "shape: false", "spike: off".
var offWords = append(slices.Clone(falseWords), "off")

// decodeSwitchable decodes v, a pointer to a struct with an Off field and
// a Src, from n: a mapping as usual, or "false" (or "off"), which sets
// *off. It is how the shape block and each detector are switched off.
func decodeSwitchable(d *decoder, n *yaml.Node, path string, v any, off *bool) {
	rv := reflect.ValueOf(v).Elem()
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.decodeStruct(n, rv, path)
		return
	}
	s, ok := d.scalar(n, path, "a mapping, or false to turn it off")
	if !ok {
		return
	}
	switch {
	case slices.Contains(offWords, s.Value):
		*off = true
		// Keep a Source so that validation can point at the key.
		rv.FieldByName("Src").Set(reflect.ValueOf(Source{Pos: d.pos(n), keys: map[string]Pos{}, env: map[string]bool{}}))
	default:
		d.errAt(n, path, "expected a mapping, or false to turn it off; got %s", s.Show)
	}
}

func (s *ShapeSpec) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, s, &s.Off)
}

func (r *TailShiftRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *SlowRiseRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *SpikeRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *DropRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *DipRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *LevelShiftRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}

func (r *RecurringRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	decodeSwitchable(d, n, path, r, &r.Off)
}
