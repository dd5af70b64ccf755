package shape

import (
	"math"
	"slices"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Status is one (check, region)'s shape for /status.json.
type Status struct {
	// Latency is the distribution of passing probes over the shape window
	// as of the latest bucket close; latency checks only.
	Latency *LatencyStatus `json:"latency,omitempty"`
	// Value is the latest value read; series checks only.
	Value *float64 `json:"value,omitempty"`
	// Usual is the baseline of the current slot: for latency checks its
	// p50 (see LatencyStatus.Usual for more), for series the usual value.
	Usual Usual `json:"usual"`
	// Warm is whether the current slot has learned enough to judge by.
	Warm bool   `json:"warm"`
	Slot string `json:"slot"`
	// Findings are the current findings; Forecast a spike due.
	Findings []Finding `json:"findings,omitempty"`
	Forecast *Finding  `json:"forecast,omitempty"`
	// MemoryBytes estimates what the tracker holds in memory.
	MemoryBytes int `json:"memory_bytes"`
}

// LatencyStatus is a latency window with its baseline.
type LatencyStatus struct {
	WindowSeconds float64   `json:"window_seconds"`
	Samples       int       `json:"samples"`
	Quantiles     Quantiles `json:"quantiles_seconds"`
	// Phases are each phase's p50 and p99, for the phases seen.
	Phases map[string]PhaseWindow `json:"phases,omitempty"`
	// Usual are the baseline's p50, p90 and p99 for the current slot.
	Usual Quantiles `json:"usual_seconds"`
}

// Status reports the tracker at now, for /status.json and the metrics.
func (t *Tracker) Status(now time.Time) *Status {
	if t.series {
		return t.seriesStatus(now)
	}
	slot := t.spec.Slot(now)
	u, warm := t.base.usual(slot)
	st := &Status{Usual: u[0], Warm: warm, Slot: slotName(t.spec, now), Findings: slices.Clone(t.findings), MemoryBytes: t.Bytes()}
	if t.forecast != nil {
		f := *t.forecast
		st.Forecast = &f
	}
	l := &LatencyStatus{
		WindowSeconds: t.spec.Window.Seconds(),
		Samples:       t.win.Samples,
		Quantiles:     t.win.Total,
		Usual:         Quantiles{P50: u[statP50].Value, P90: u[statP90].Value, P99: u[statP99].Value},
	}
	for i, p := range t.win.Phases {
		if p.Samples > 0 {
			if l.Phases == nil {
				l.Phases = map[string]PhaseWindow{}
			}
			l.Phases[wire.PhaseNames[i]] = p
		}
	}
	st.Latency = l
	return st
}

// seriesStatus reports a series tracker: the latest value and the usual
// value it was judged against, with the noise band as a share of it.
func (t *Tracker) seriesStatus(now time.Time) *Status {
	v := t.ser.verdict
	st := &Status{Usual: Usual{Value: v.Usual}, Warm: v.Warm, Slot: slotName(t.spec, now), Findings: slices.Clone(t.findings), MemoryBytes: t.Bytes()}
	if !v.Seasonal {
		st.Slot = "recent level"
	}
	if v.Usual != 0 {
		st.Usual.Spread = v.Band / math.Abs(v.Usual)
	}
	if t.forecast != nil {
		f := *t.forecast
		st.Forecast = &f
	}
	if t.ser.hasLast {
		last := t.ser.last
		st.Value = &last
	}
	return st
}
