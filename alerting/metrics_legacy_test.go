package alerting

// The evaluator's per-check collectors as they were before they became
// exposition.Sources: kept as the oracle the new path must match, and as
// the "before" of BenchmarkEvaluatorScrape.

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/shape"
)

// Outpost's own decisions as Prometheus series, so that dashboards can
// graph them and uptime is a PromQL query (avg_over_time of
// outpost_check_up). They are built at scrape time from each check's
// latest decision: no series objects are kept per check.

// legacyDecisionCollector exports the latest decision of every check.
type legacyDecisionCollector struct {
	e                        *Evaluator
	state, failing, open, up *prometheus.Desc
}

func newLegacyDecisionCollector(e *Evaluator) *legacyDecisionCollector {
	return &legacyDecisionCollector{
		e: e,
		state: prometheus.NewDesc("outpost_check_state",
			"1 for the check's current verdict (OK, DEGRADED, DOWN, UNKNOWN), 0 for the others; no series before its first verdict.",
			[]string{"check", "state"}, nil),
		failing: prometheus.NewDesc("outpost_check_regions_failing",
			"Live regions failing the check by its failure rule, at its latest verdict.", []string{"check"}, nil),
		open: prometheus.NewDesc("outpost_incident_open",
			"1 while an incident of the check is open, by kind (down, degraded, unknown, disagreement, shape, forecast); absent while none is.",
			[]string{"check", "kind"}, nil),
		up: prometheus.NewDesc("outpost_check_up",
			"1 unless the check's latest verdict is DOWN (UNKNOWN counts as up: silence is paged on the meta route, not as downtime); avg_over_time of it is the check's uptime.",
			[]string{"check"}, nil),
	}
}

func (c *legacyDecisionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.failing
	ch <- c.open
	ch <- c.up
}

func (c *legacyDecisionCollector) Collect(ch chan<- prometheus.Metric) {
	kinds := decide.IncidentKinds()
	for _, chk := range c.e.config().Checks {
		cd := c.e.plan.Load().deciders[chk.ID]
		if cd == nil {
			continue
		}
		cd.mu.Lock()
		d, st := cd.last.State, cd.state
		failing := len(cd.last.Failing)
		cd.mu.Unlock()
		if d == "" {
			continue // no verdict yet
		}
		for _, s := range checkStates {
			v := 0.0
			if s == d {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, chk.ID, string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, float64(failing), chk.ID)
		up := 1.0
		if d == decide.StateDown {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, chk.ID)
		for _, k := range kinds {
			if in, ok := st.Incident(k); ok && in.Open {
				ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, 1, chk.ID, string(k))
			}
		}
	}
}

// legacyShapeCollector turns the shape trackers into metrics at scrape time, so
// that nothing is kept twice and ingest does no metric work.
type legacyShapeCollector struct {
	e *Evaluator
}

var (
	legacyLatencyDesc = prometheus.NewDesc("outpost_latency_seconds",
		"Latency of passing probes over the shape window as of its latest bucket close, by quantile q (DDSketch, 1% relative accuracy).",
		[]string{"check", "region", "q"}, nil)
	legacyLatencyUsualDesc = prometheus.NewDesc("outpost_latency_usual_seconds",
		"The learned baseline of outpost_latency_seconds for the current time slot; absent until the slot is warm.",
		[]string{"check", "region", "q"}, nil)
	legacySeriesValueDesc = prometheus.NewDesc("outpost_series_value",
		"The latest value a series check read.", []string{"check", "region"}, nil)
	legacySeriesUsualDesc = prometheus.NewDesc("outpost_series_usual",
		"What a series check usually reads at this time slot; absent until the slot is warm.", []string{"check", "region"}, nil)
	legacyFindingDesc = prometheus.NewDesc("outpost_shape_finding",
		"1 for each shape detector with a current finding, by check, region and detector (tail_shift, slow_rise, spike, drop, recurring).",
		[]string{"check", "region", "detector"}, nil)
	legacyShapeBytesDesc = prometheus.NewDesc("outpost_shape_memory_bytes",
		"Estimated memory held by shape tracking: latency sketches, baselines and series history.", nil, nil)
)

func (c legacyShapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{legacyLatencyDesc, legacyLatencyUsualDesc, legacySeriesValueDesc, legacySeriesUsualDesc, legacyFindingDesc, legacyShapeBytesDesc} {
		ch <- d
	}
}

func (c legacyShapeCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.e.clock.Now()
	total := 0
	for _, r := range c.e.regionList {
		r.mu.Lock()
		for id, t := range r.tables().shapes {
			total += t.Bytes()
			st := t.Status(now)
			for _, f := range st.Findings {
				ch <- prometheus.MustNewConstMetric(legacyFindingDesc, prometheus.GaugeValue, 1, id, r.name, f.Detector)
			}
			if st.Forecast != nil {
				ch <- prometheus.MustNewConstMetric(legacyFindingDesc, prometheus.GaugeValue, 1, id, r.name, shape.DetectorRecurring)
			}
			if t.Series() {
				if st.Value != nil {
					ch <- prometheus.MustNewConstMetric(legacySeriesValueDesc, prometheus.GaugeValue, *st.Value, id, r.name)
				}
				if st.Warm {
					ch <- prometheus.MustNewConstMetric(legacySeriesUsualDesc, prometheus.GaugeValue, st.Usual.Value, id, r.name)
				}
				continue
			}
			l := st.Latency
			if l.Samples > 0 {
				for i, v := range [...]float64{l.Quantiles.P50, l.Quantiles.P90, l.Quantiles.P99} {
					ch <- prometheus.MustNewConstMetric(legacyLatencyDesc, prometheus.GaugeValue, v, id, r.name, quantileLabels[i])
				}
			}
			if st.Warm {
				for i, v := range [...]float64{l.Usual.P50, l.Usual.P90, l.Usual.P99} {
					ch <- prometheus.MustNewConstMetric(legacyLatencyUsualDesc, prometheus.GaugeValue, v, id, r.name, quantileLabels[i])
				}
			}
		}
		r.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(legacyShapeBytesDesc, prometheus.GaugeValue, float64(total))
}
