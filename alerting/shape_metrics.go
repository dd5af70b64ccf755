package alerting

import (
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/prometheus/client_golang/prometheus"
)

// shapeCollector turns the shape trackers into metrics at scrape time, so
// that nothing is kept twice and ingest does no metric work.
type shapeCollector struct {
	e *Evaluator
}

var (
	latencyDesc = prometheus.NewDesc("outpost_latency_seconds",
		"Latency of passing probes over the shape window as of its latest bucket close, by quantile q (DDSketch, 1% relative accuracy).",
		[]string{"check", "region", "q"}, nil)
	latencyUsualDesc = prometheus.NewDesc("outpost_latency_usual_seconds",
		"The learned baseline of outpost_latency_seconds for the current time slot; absent until the slot is warm.",
		[]string{"check", "region", "q"}, nil)
	seriesValueDesc = prometheus.NewDesc("outpost_series_value",
		"The latest value a series check read.", []string{"check", "region"}, nil)
	seriesUsualDesc = prometheus.NewDesc("outpost_series_usual",
		"What a series check usually reads at this time slot; absent until the slot is warm.", []string{"check", "region"}, nil)
	findingDesc = prometheus.NewDesc("outpost_shape_finding",
		"1 for each shape detector with a current finding, by check, region and detector (tail_shift, slow_rise, spike, drop, recurring).",
		[]string{"check", "region", "detector"}, nil)
	shapeBytesDesc = prometheus.NewDesc("outpost_shape_memory_bytes",
		"Estimated memory held by shape tracking: latency sketches, baselines and series history.", nil, nil)
)

var quantileLabels = [...]string{"0.5", "0.9", "0.99"}

func (c shapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{latencyDesc, latencyUsualDesc, seriesValueDesc, seriesUsualDesc, findingDesc, shapeBytesDesc} {
		ch <- d
	}
}

func (c shapeCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.e.clock.Now()
	total := 0
	for _, r := range c.e.regionList {
		r.mu.Lock()
		for id, t := range r.tables().shapes {
			total += t.Bytes()
			st := t.Status(now)
			for _, f := range st.Findings {
				ch <- prometheus.MustNewConstMetric(findingDesc, prometheus.GaugeValue, 1, id, r.name, f.Detector)
			}
			if st.Forecast != nil {
				ch <- prometheus.MustNewConstMetric(findingDesc, prometheus.GaugeValue, 1, id, r.name, shape.DetectorRecurring)
			}
			if t.Series() {
				if st.Value != nil {
					ch <- prometheus.MustNewConstMetric(seriesValueDesc, prometheus.GaugeValue, *st.Value, id, r.name)
				}
				if st.Warm {
					ch <- prometheus.MustNewConstMetric(seriesUsualDesc, prometheus.GaugeValue, st.Usual.Value, id, r.name)
				}
				continue
			}
			l := st.Latency
			if l.Samples > 0 {
				for i, v := range [...]float64{l.Quantiles.P50, l.Quantiles.P90, l.Quantiles.P99} {
					ch <- prometheus.MustNewConstMetric(latencyDesc, prometheus.GaugeValue, v, id, r.name, quantileLabels[i])
				}
			}
			if st.Warm {
				for i, v := range [...]float64{l.Usual.P50, l.Usual.P90, l.Usual.P99} {
					ch <- prometheus.MustNewConstMetric(latencyUsualDesc, prometheus.GaugeValue, v, id, r.name, quantileLabels[i])
				}
			}
		}
		r.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(shapeBytesDesc, prometheus.GaugeValue, float64(total))
}
