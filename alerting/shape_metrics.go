package alerting

import (
	"sync"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/probes/exposition"
	"github.com/prometheus/client_golang/prometheus"
)

// shapeCollector turns the shape trackers into metrics at scrape time, so
// that nothing is kept twice and ingest does no metric work. It is an
// exposition.Source; a region's lock is held only while one tracker is
// read, never while anything is rendered.
type shapeCollector struct {
	e *Evaluator

	mu        sync.Mutex // serializes scrapes; guards the buffers below
	views     []shapeView
	detectors []string
	detL      map[string]exposition.Labels
}

// shapeView is one tracker's gauges as one scrape reads them.
type shapeView struct {
	id             string
	check          exposition.Labels
	region         int // index in Evaluator.regionList
	g              shape.Gauges
	detFrom, detTo int // its findings' detectors in shapeCollector.detectors
}

const (
	helpLatency      = "Latency of passing probes over the shape window as of its latest bucket close, by quantile q (DDSketch, 1% relative accuracy)."
	helpLatencyUsual = "The learned baseline of outpost_latency_seconds for the current time slot; absent until the slot is warm."
	helpSeriesValue  = "The latest value a series check read."
	helpSeriesUsual  = "What a series check usually reads at this time slot; absent until the slot is warm."
	helpFinding      = "1 for each shape detector with a current finding, by check, region and detector (tail_shift, slow_rise, spike, drop, recurring)."
	helpShapeBytes   = "Estimated memory held by shape tracking: latency sketches, baselines and series history."
)

var (
	latencyDesc      = prometheus.NewDesc("outpost_latency_seconds", helpLatency, []string{"check", "region", "q"}, nil)
	latencyUsualDesc = prometheus.NewDesc("outpost_latency_usual_seconds", helpLatencyUsual, []string{"check", "region", "q"}, nil)
	seriesValueDesc  = prometheus.NewDesc("outpost_series_value", helpSeriesValue, []string{"check", "region"}, nil)
	seriesUsualDesc  = prometheus.NewDesc("outpost_series_usual", helpSeriesUsual, []string{"check", "region"}, nil)
	findingDesc      = prometheus.NewDesc("outpost_shape_finding", helpFinding, []string{"check", "region", "detector"}, nil)
	shapeBytesDesc   = prometheus.NewDesc("outpost_shape_memory_bytes", helpShapeBytes, nil, nil)
)

var (
	quantileLabels = [...]string{"0.5", "0.9", "0.99"}
	quantileL      = [...]exposition.Labels{exposition.MakeLabels("q", "0.5"), exposition.MakeLabels("q", "0.9"), exposition.MakeLabels("q", "0.99")}
)

func newShapeCollector(e *Evaluator) *shapeCollector {
	return &shapeCollector{e: e, detL: map[string]exposition.Labels{}}
}

func (c *shapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{latencyDesc, latencyUsualDesc, seriesValueDesc, seriesUsualDesc, findingDesc, shapeBytesDesc} {
		ch <- d
	}
}

// read calls f with the gauges of every tracker, by check in config
// order and region, and the memory they hold. A region's lock is held
// while one tracker is read: ingest never waits on a scrape for longer.
func (c *shapeCollector) read(f func(views []shapeView, detectors []string, bytes int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.e.clock.Now()
	views, dets, total := c.views[:0], c.detectors[:0], 0
	p := c.e.plan.Load()
	for _, chk := range p.cfg.Checks {
		var label exposition.Labels
		for ri, r := range c.e.regionList {
			// The tables are never written once installed: read
			// without the lock.
			t := r.tables().shapes[chk.ID]
			if t == nil {
				continue
			}
			if label == "" {
				if cd := p.deciders[chk.ID]; cd != nil {
					label = cd.label
				} else {
					label = exposition.MakeLabels("check", chk.ID)
				}
			}
			v := shapeView{id: chk.ID, check: label, region: ri, detFrom: len(dets)}
			r.mu.Lock()
			total += t.Bytes()
			v.g, dets = t.Gauges(now, dets)
			r.mu.Unlock()
			v.detTo = len(dets)
			views = append(views, v)
		}
	}
	f(views, dets, total)
	clear(views) // no strings kept alive between scrapes
	c.views, c.detectors = views[:0], dets[:0]
}

func (c *shapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.read(func(views []shapeView, dets []string, total int) {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		for i := range views {
			v := &views[i]
			region := c.e.regionList[v.region].name
			for _, d := range dets[v.detFrom:v.detTo] {
				gauge(findingDesc, 1, v.id, region, d)
			}
			if v.g.Series {
				if v.g.HasValue {
					gauge(seriesValueDesc, v.g.Value, v.id, region)
				}
				if v.g.Warm {
					gauge(seriesUsualDesc, v.g.Usual, v.id, region)
				}
				continue
			}
			if v.g.Samples > 0 {
				for q, x := range quantiles(v.g.Latency) {
					gauge(latencyDesc, x, v.id, region, quantileLabels[q])
				}
			}
			if v.g.Warm {
				for q, x := range quantiles(v.g.UsualLatency) {
					gauge(latencyUsualDesc, x, v.id, region, quantileLabels[q])
				}
			}
		}
		gauge(shapeBytesDesc, float64(total))
	})
}

// WriteMetrics writes what Collect sends; see exposition.Source.
func (c *shapeCollector) WriteMetrics(w *exposition.Writer) {
	c.read(func(views []shapeView, dets []string, total int) {
		regionL := make([]exposition.Labels, len(c.e.regionList))
		for i, r := range c.e.regionList {
			regionL[i] = exposition.MakeLabels("region", r.name)
		}
		w.Family("outpost_latency_seconds", helpLatency, exposition.Gauge)
		for i := range views {
			if v := &views[i]; !v.g.Series && v.g.Samples > 0 {
				for q, x := range quantiles(v.g.Latency) {
					w.Sample(x, v.check, quantileL[q], regionL[v.region])
				}
			}
		}
		w.Family("outpost_latency_usual_seconds", helpLatencyUsual, exposition.Gauge)
		for i := range views {
			if v := &views[i]; !v.g.Series && v.g.Warm {
				for q, x := range quantiles(v.g.UsualLatency) {
					w.Sample(x, v.check, quantileL[q], regionL[v.region])
				}
			}
		}
		w.Family("outpost_series_value", helpSeriesValue, exposition.Gauge)
		for i := range views {
			if v := &views[i]; v.g.Series && v.g.HasValue {
				w.Sample(v.g.Value, v.check, regionL[v.region])
			}
		}
		w.Family("outpost_series_usual", helpSeriesUsual, exposition.Gauge)
		for i := range views {
			if v := &views[i]; v.g.Series && v.g.Warm {
				w.Sample(v.g.Usual, v.check, regionL[v.region])
			}
		}
		w.Family("outpost_shape_finding", helpFinding, exposition.Gauge)
		for i := range views {
			v := &views[i]
			for _, d := range dets[v.detFrom:v.detTo] {
				l, ok := c.detL[d]
				if !ok {
					l = exposition.MakeLabels("detector", d)
					c.detL[d] = l
				}
				w.Sample(1, v.check, l, regionL[v.region])
			}
		}
		w.Family("outpost_shape_memory_bytes", helpShapeBytes, exposition.Gauge)
		w.Sample(float64(total))
	})
}

func quantiles(q shape.Quantiles) [3]float64 { return [3]float64{q.P50, q.P90, q.P99} }
