package checks

import (
	"fmt"
	"slices"
	"time"
)

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
	seriesOnly := []string{"surprise", "spike", "drop", "dip", "level_shift", "recurring"}
	wrong, kind := seriesOnly, "series"
	if series {
		wrong, kind = latencyOnly, "latency (http, tcp, tls, dns)"
	}
	for _, k := range wrong {
		if s.Src.Has(k) {
			add(k, "applies to %s checks only", kind)
		}
	}

	switch {
	case s.Seasonality == "":
		s.Seasonality = SeasonDaily
	case slices.Contains(seasonalities, s.Seasonality):
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
		validateSeriesDetectors(s, c.Interval, id, errs)
		return
	}
	s.Spike, s.Drop, s.Dip, s.LevelShift, s.Recurring = nil, nil, nil, nil, nil
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
		case r.Points(bucket) > maxTrendBuckets:
			add("for", "%s spans more than %d window buckets of %s; lengthen the window", r.For, maxTrendBuckets, bucket)
		}
	}
}

func validateSeriesDetectors(s *ShapeSpec, interval time.Duration, id string, errs *errorList) {
	if !s.Src.Has("surprise") {
		s.Surprise = DefaultSurpriseFor(interval)
	} else if s.Surprise < 1e-6 || s.Surprise > 0.1 {
		blockAdder(&s.Src, id, "shape.", errs)("surprise", "%g: use a share of the recent values between 0.000001 and 0.1, such as 0.001", s.Surprise)
	}
	switch p := s.Spike; {
	case p == nil:
		s.Spike = &SpikeRule{Points: DefaultSpikePoints}
	case p.Off:
		s.Spike = nil
	default:
		add := blockAdder(&p.Src, id, "shape.spike.", errs)
		if p.Src.Has("max_ratio") {
			ratioAbove1(&p.MaxRatio, true, 0, "max_ratio", add)
		}
		points(&p.Points, p.Src.Has("points"), DefaultSpikePoints, add)
	}
	switch p := s.Dip; {
	case p == nil:
		s.Dip = &DipRule{Points: DefaultDipPoints}
	case p.Off:
		s.Dip = nil
	default:
		add := blockAdder(&p.Src, id, "shape.dip.", errs)
		points(&p.Points, p.Src.Has("points"), DefaultDipPoints, add)
	}
	switch p := s.LevelShift; {
	case p == nil:
		s.LevelShift = &LevelShiftRule{For: DefaultLevelShiftFor}
	case p.Off:
		s.LevelShift = nil
	default:
		add := blockAdder(&p.Src, id, "shape.level_shift.", errs)
		if !p.Src.Has("for") {
			p.For = DefaultLevelShiftFor
		} else if p.For <= 0 || p.For > 7*24*time.Hour {
			add("for", "%s: use more than 0 and at most 168h", p.For)
		}
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

// shapeWarnings warns of latency checks whose min_samples lets a window
// give verdicts with fewer probes than a detector's quantile needs
// (QuantileSamples): such a window judges nothing by that quantile, so
// the detector is silent until the window fills further.
func (c *Config) shapeWarnings() []string {
	var out []string
	for _, ch := range c.Checks {
		s := ch.Shape
		if s == nil || ch.Series != nil || !s.Src.Has("min_samples") {
			continue
		}
		warn := func(detector, q string, need int) {
			out = append(out, fmt.Sprintf("%s: check %q: shape.min_samples: %d cannot support %s: %s needs %d probes in a window (%d beyond it), so a window of fewer gives no %s verdict; use min_samples: %d or more",
				s.Src.At("min_samples"), ch.ID, s.MinSamples, detector, q, need, SamplesBeyond, detector, need))
		}
		switch {
		case s.TailShift != nil && s.MinSamples < QuantileSamples(0.9):
			warn("tail_shift", "p90", QuantileSamples(0.9))
		case s.SlowRise != nil && s.MinSamples < QuantileSamples(0.5):
			warn("slow_rise", "p50", QuantileSamples(0.5))
		}
	}
	return out
}
