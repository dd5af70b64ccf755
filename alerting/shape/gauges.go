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
	for _, f := range t.findings {
		detectors = append(detectors, f.Detector)
	}
	if t.forecast != nil {
		detectors = append(detectors, DetectorRecurring)
	}
	if t.series {
		// The usual value the latest one was judged against, as
		// seriesStatus reports it.
		v := t.ser.verdict
		return Gauges{Series: true, Warm: v.Warm, Usual: v.Usual, HasValue: t.ser.hasLast, Value: t.ser.last}, detectors
	}
	slot := t.spec.Slot(now)
	usual := func(stat int) float64 { v, _ := t.base.usualValue(slot, stat); return v }
	_, warm := t.base.usualValue(slot, 0)
	g := Gauges{Warm: warm, Samples: t.win.Samples, Latency: t.win.Total}
	g.UsualLatency = Quantiles{P50: usual(statP50), P90: usual(statP90), P99: usual(statP99)}
	return g, detectors
}
