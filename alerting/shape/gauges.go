package shape

import "time"

// Gauges is what the evaluator's metrics show of a tracker: the numbers
// of Status, read without allocating, since a scrape reads every
// tracker.
type Gauges struct {
	Series bool // a series check: Value and Usual, not the latency fields
	// HasValue: a series tracker holds a value (Value).
	HasValue bool
	Value    float64
	// Warm: the current slot's baseline gives verdicts (Usual,
	// UsualLatency).
	Warm  bool
	Usual float64
	// Samples are the passing probes in the latency window, whose
	// quantiles are Latency.
	Samples      int
	Latency      Quantiles
	UsualLatency Quantiles
}

// Gauges returns the tracker's gauges at now, as Status would report
// them, and appends to detectors the detector of each current finding,
// the forecast's (recurring) last.
func (t *Tracker) Gauges(now time.Time, detectors []string) (Gauges, []string) {
	slot := t.spec.Slot(now)
	usual := func(stat int) float64 { v, _ := t.base.usualValue(slot, stat); return v }
	_, warm := t.base.usualValue(slot, 0)
	g := Gauges{Series: t.series, Warm: warm}
	for _, f := range t.findings {
		detectors = append(detectors, f.Detector)
	}
	if t.forecast != nil {
		detectors = append(detectors, DetectorRecurring)
	}
	if t.series {
		g.Usual = usual(0)
		if n := len(t.values); n > 0 {
			g.HasValue, g.Value = true, t.values[n-1]
		}
		return g, detectors
	}
	g.Samples, g.Latency = t.win.Samples, t.win.Total
	g.UsualLatency = Quantiles{P50: usual(statP50), P90: usual(statP90), P99: usual(statP99)}
	return g, detectors
}
