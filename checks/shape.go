package checks

import (
	"reflect"
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
	// Default 20. Latency checks only.
	MinSamples int `yaml:"min_samples"`
	// Seasonality is how the baseline is sliced: daily (one slot per hour
	// of the day, the default), weekly (per hour of the week) or none.
	Seasonality string `yaml:"seasonality"`
	// HalfLife is how fast the baseline forgets: data this old weighs half
	// as much as today's. Default 168h (a week).
	HalfLife time.Duration `yaml:"half_life"`
	// Warmup is how much data a baseline slot needs before any detector
	// gives a verdict from it. Default 1h.
	Warmup time.Duration `yaml:"warmup"`

	TailShift *TailShiftRule `yaml:"tail_shift"`
	SlowRise  *SlowRiseRule  `yaml:"slow_rise"`
	Spike     *SpikeRule     `yaml:"spike"`
	Drop      *DropRule      `yaml:"drop"`
	Recurring *RecurringRule `yaml:"recurring"`
	Src       Source
}

// Seasonality values.
const (
	SeasonDaily  = "daily"
	SeasonWeekly = "weekly"
	SeasonNone   = "none"
)

// Shape defaults.
const (
	DefaultShapeWindow     = 15 * time.Minute
	DefaultShapeMinSamples = 20
	DefaultShapeHalfLife   = 7 * 24 * time.Hour
	DefaultShapeWarmup     = time.Hour
)

// TailShiftRule finds a tail that moved while the median did not: the
// window's p90 or p99 at least Ratio times the baseline's, and MinDelta
// above it, with the p50 below MedianRatio times its baseline.
type TailShiftRule struct {
	Off         bool          `yaml:"-"`
	Ratio       float64       `yaml:"ratio"`
	MedianRatio float64       `yaml:"median_ratio"`
	MinDelta    time.Duration `yaml:"min_delta"`
	Src         Source
}

// SlowRiseRule finds a median that climbs: over the last For the window's
// p50 rose steadily to at least Ratio times the baseline and MinDelta
// above it, or stayed at that height throughout.
type SlowRiseRule struct {
	Off      bool          `yaml:"-"`
	Ratio    float64       `yaml:"ratio"`
	For      time.Duration `yaml:"for"`
	MinDelta time.Duration `yaml:"min_delta"`
	Src      Source
}

// SpikeRule finds a series value above MaxRatio times what the baseline
// expects at this time, for Points values in a row.
type SpikeRule struct {
	Off      bool    `yaml:"-"`
	MaxRatio float64 `yaml:"max_ratio"`
	Points   int     `yaml:"points"`
	Src      Source
}

// DropRule finds a series value that fell below MinRatio times what the
// baseline expects (near zero), for Points values in a row.
type DropRule struct {
	Off      bool    `yaml:"-"`
	MinRatio float64 `yaml:"min_ratio"`
	Points   int     `yaml:"points"`
	Src      Source
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
	DefaultTailMinDelta    = 5 * time.Millisecond
	DefaultRiseRatio       = 1.5
	DefaultRiseFor         = 15 * time.Minute
	DefaultRiseMinDelta    = 20 * time.Millisecond
	DefaultSpikeRatio      = 4.0
	DefaultSpikePoints     = 2
	DefaultDropRatio       = 0.1
	DefaultDropPoints      = 3
	DefaultRecurringLead   = 15 * time.Minute
	DefaultRecurringDays   = 2
	DefaultRecurringNear   = 0.75
	DefaultRecurringTol    = 10 * time.Minute
)

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
	if s.SlowRise == nil || s.Bucket() <= 0 {
		return 0
	}
	return int((s.SlowRise.For+s.Bucket()-1)/s.Bucket()) + 1
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

// off records "key: false"; it is how a detector or the whole shape block
// is switched off.
func decodeSwitch(d *decoder, n *yaml.Node, path string, v reflect.Value, off *bool) bool {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return false
	}
	s, ok := d.scalar(n, path, "a mapping, or false to turn it off")
	if !ok {
		return true
	}
	switch s.Value {
	case "false", "False", "FALSE", "off":
		*off = true
		// Keep a Source so that validation can point at the key.
		if f := v.FieldByName("Src"); f.IsValid() {
			f.Set(reflect.ValueOf(Source{Pos: d.pos(n), keys: map[string]Pos{}, env: map[string]bool{}}))
		}
	default:
		d.errAt(n, path, "expected a mapping, or false to turn it off; got %s", s.Show)
	}
	return true
}

func (s *ShapeSpec) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(s).Elem(), &s.Off) {
		d.decodeStruct(n, reflect.ValueOf(s).Elem(), path)
	}
}

func (r *TailShiftRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(r).Elem(), &r.Off) {
		d.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	}
}

func (r *SlowRiseRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(r).Elem(), &r.Off) {
		d.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	}
}

func (r *SpikeRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(r).Elem(), &r.Off) {
		d.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	}
}

func (r *DropRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(r).Elem(), &r.Off) {
		d.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	}
}

func (r *RecurringRule) decodeNode(d *decoder, n *yaml.Node, path string) {
	if !decodeSwitch(d, n, path, reflect.ValueOf(r).Elem(), &r.Off) {
		d.decodeStruct(n, reflect.ValueOf(r).Elem(), path)
	}
}

// validateShape checks c.Shape against c's type and fills its defaults.
// After it, c.Shape is nil for heartbeat checks and for "shape: false";
// otherwise every detector that applies is set, or nil when switched off.
func validateShape(c *Check, id string, errs *errorList) {
	s := c.Shape
	if c.Heartbeat != nil {
		if s != nil && !s.Off {
			errs.add(c.Src.At("shape"), id, "shape: heartbeat checks have no shape to watch")
		}
		c.Shape = nil
		return
	}
	if s == nil {
		s = &ShapeSpec{}
		c.Shape = s
	}
	if s.Off {
		c.Shape = nil
		return
	}
	add := blockAdder(&s.Src, id, "shape.", errs)
	series := c.Series != nil
	latencyOnly := []string{"window", "min_samples", "tail_shift", "slow_rise"}
	seriesOnly := []string{"spike", "drop", "recurring"}
	wrong, kind := seriesOnly, "series"
	if series {
		wrong, kind = latencyOnly, "latency (http, tcp, tls, dns)"
	}
	for _, k := range wrong {
		if s.Src.Has(k) {
			add(k, "applies to %s checks only", kind)
		}
	}

	switch s.Seasonality {
	case "":
		s.Seasonality = SeasonDaily
	case SeasonDaily, SeasonWeekly, SeasonNone:
	default:
		add("seasonality", "%q: use daily, weekly or none", s.Seasonality)
	}
	if !s.Src.Has("half_life") {
		s.HalfLife = DefaultShapeHalfLife
	} else if s.HalfLife < time.Hour {
		add("half_life", "%s is below the minimum of 1h", s.HalfLife)
	}
	if !s.Src.Has("warmup") {
		s.Warmup = DefaultShapeWarmup
	} else if s.Warmup < c.Interval {
		add("warmup", "%s is shorter than the interval %s: a baseline needs at least one value", s.Warmup, c.Interval)
	}

	if series {
		s.TailShift, s.SlowRise = nil, nil
		validateSeriesDetectors(s, id, errs)
		return
	}
	s.Spike, s.Drop, s.Recurring = nil, nil, nil
	if !s.Src.Has("min_samples") {
		s.MinSamples = DefaultShapeMinSamples
	} else if s.MinSamples < 5 || s.MinSamples > 10_000 {
		add("min_samples", "%d: use 5 to 10000", s.MinSamples)
	}
	switch {
	case !s.Src.Has("window"):
		s.Window = max(DefaultShapeWindow, time.Duration(s.MinSamples)*c.Interval)
	case s.Window < c.Interval:
		add("window", "%s is shorter than the interval %s", s.Window, c.Interval)
	case s.Window > 24*time.Hour:
		add("window", "%s is longer than the maximum of 24h", s.Window)
	case s.MinSamples > 0 && s.Window/c.Interval < time.Duration(s.MinSamples):
		add("window", "%s holds %d probes at interval %s, fewer than min_samples %d: no verdict could ever be given",
			s.Window, s.Window/c.Interval, c.Interval, s.MinSamples)
	}
	validateLatencyDetectors(s, id, errs)
}

// adder reports errors at the keys of one block, prefixed with its path.
type adder func(key, format string, args ...any)

func blockAdder(src *Source, id, prefix string, errs *errorList) adder {
	return func(key, format string, args ...any) {
		errs.add(src.At(key), id, prefix+key+": "+format, args...)
	}
}

func validateLatencyDetectors(s *ShapeSpec, id string, errs *errorList) {
	switch t := s.TailShift; {
	case t == nil:
		s.TailShift = &TailShiftRule{Ratio: DefaultTailRatio, MedianRatio: DefaultTailMedianRatio, MinDelta: DefaultTailMinDelta}
	case t.Off:
		s.TailShift = nil
	default:
		add := blockAdder(&t.Src, id, "shape.tail_shift.", errs)
		ratioAbove1(&t.Ratio, t.Src.Has("ratio"), DefaultTailRatio, "ratio", add)
		ratioAbove1(&t.MedianRatio, t.Src.Has("median_ratio"), DefaultTailMedianRatio, "median_ratio", add)
		if !t.Src.Has("min_delta") {
			t.MinDelta = DefaultTailMinDelta
		}
	}
	switch r := s.SlowRise; {
	case r == nil:
		s.SlowRise = &SlowRiseRule{Ratio: DefaultRiseRatio, For: max(DefaultRiseFor, 3*s.Bucket()), MinDelta: DefaultRiseMinDelta}
	case r.Off:
		s.SlowRise = nil
	default:
		add := blockAdder(&r.Src, id, "shape.slow_rise.", errs)
		ratioAbove1(&r.Ratio, r.Src.Has("ratio"), DefaultRiseRatio, "ratio", add)
		if !r.Src.Has("min_delta") {
			r.MinDelta = DefaultRiseMinDelta
		}
		bucket := s.Bucket()
		switch {
		case !r.Src.Has("for"):
			r.For = max(DefaultRiseFor, 3*bucket)
		case bucket > 0 && r.For < 3*bucket:
			add("for", "%s is shorter than three window buckets (3 × %s): a trend needs three points", r.For, bucket)
		case bucket > 0 && int((r.For+bucket-1)/bucket)+1 > maxTrendBuckets:
			add("for", "%s spans more than %d window buckets of %s; lengthen the window", r.For, maxTrendBuckets, bucket)
		}
	}
}

func validateSeriesDetectors(s *ShapeSpec, id string, errs *errorList) {
	switch p := s.Spike; {
	case p == nil:
		s.Spike = &SpikeRule{MaxRatio: DefaultSpikeRatio, Points: DefaultSpikePoints}
	case p.Off:
		s.Spike = nil
	default:
		add := blockAdder(&p.Src, id, "shape.spike.", errs)
		ratioAbove1(&p.MaxRatio, p.Src.Has("max_ratio"), DefaultSpikeRatio, "max_ratio", add)
		points(&p.Points, p.Src.Has("points"), DefaultSpikePoints, add)
	}
	switch p := s.Drop; {
	case p == nil:
		s.Drop = &DropRule{MinRatio: DefaultDropRatio, Points: DefaultDropPoints}
	case p.Off:
		s.Drop = nil
	default:
		add := blockAdder(&p.Src, id, "shape.drop.", errs)
		if !p.Src.Has("min_ratio") {
			p.MinRatio = DefaultDropRatio
		} else if p.MinRatio <= 0 || p.MinRatio >= 1 {
			add("min_ratio", "%g: use a fraction between 0 and 1, such as 0.1", p.MinRatio)
		}
		points(&p.Points, p.Src.Has("points"), DefaultDropPoints, add)
	}
	switch r := s.Recurring; {
	case r == nil && s.Spike == nil:
	case r == nil:
		s.Recurring = &RecurringRule{Lead: DefaultRecurringLead, Days: DefaultRecurringDays, Near: DefaultRecurringNear, Tolerance: DefaultRecurringTol}
	case r.Off:
		s.Recurring = nil
	case s.Spike == nil:
		errs.add(s.Src.At("recurring"), id, "shape.recurring: warns ahead of spikes, but spike is off")
	default:
		add := blockAdder(&r.Src, id, "shape.recurring.", errs)
		if !r.Src.Has("lead") {
			r.Lead = DefaultRecurringLead
		} else if r.Lead <= 0 || r.Lead > 12*time.Hour {
			add("lead", "%s: use more than 0 and at most 12h", r.Lead)
		}
		if !r.Src.Has("days") {
			r.Days = DefaultRecurringDays
		} else if r.Days < 1 || r.Days > MaxRecurringDays {
			add("days", "%d: use 1 to %d", r.Days, MaxRecurringDays)
		}
		if !r.Src.Has("near") {
			r.Near = DefaultRecurringNear
		} else if r.Near <= 0 || r.Near > 1 {
			add("near", "%g: use a fraction of the spike threshold, above 0 and at most 1", r.Near)
		}
		if !r.Src.Has("tolerance") {
			r.Tolerance = DefaultRecurringTol
		} else if r.Tolerance <= 0 || r.Tolerance > 2*time.Hour {
			add("tolerance", "%s: use more than 0 and at most 2h", r.Tolerance)
		}
	}
}

// MaxRecurringDays bounds how many days back a recurring spike is sought;
// evaluators keep this many days of spikes.
const MaxRecurringDays = 14

func ratioAbove1(v *float64, set bool, def float64, key string, add adder) {
	switch {
	case !set:
		*v = def
	case *v <= 1:
		add(key, "%g must be above 1 (it multiplies the baseline)", *v)
	case *v > 1000:
		add(key, "%g is above the maximum of 1000", *v)
	}
}

func points(v *int, set bool, def int, add adder) {
	switch {
	case !set:
		*v = def
	case *v < 1 || *v > 100:
		add("points", "%d: use 1 to 100", *v)
	}
}
