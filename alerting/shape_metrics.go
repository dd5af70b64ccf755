package alerting

import (
	"sync"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/probes/exposition"
	"github.com/prometheus/client_golang/prometheus"
)

// shapeCollector turns the shape trackers into metrics at scrape time, so
// that nothing is kept twice and ingest does no metric work. It is an
// exposition.Source; each region's lock is held only while a few hundred
// trackers are read, never while anything is rendered.
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

// readChunk is how many trackers are read per hold of a region's lock:
// ingest into the region waits at most that long for a scrape.
const readChunk = 256

// read calls f with the gauges of every tracker and the memory they hold.
func (c *shapeCollector) read(f func(views []shapeView, detectors []string, bytes int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.e.clock.Now()
	views, dets, total := c.views[:0], c.detectors[:0], 0
	for ri, r := range c.e.regionList {
		// shapes is never written after New: listed without the lock.
		from := len(views)
		for id := range r.tables().shapes {
			label := exposition.Labels("")
			if cd := c.e.plan.Load().deciders[id]; cd != nil {
				label = cd.label
			} else {
				label = exposition.MakeLabels("check", id)
			}
			views = append(views, shapeView{id: id, check: label, region: ri})
		}
		for start := from; start < len(views); start += readChunk {
			r.mu.Lock()
			for i := start; i < min(start+readChunk, len(views)); i++ {
				t := r.tables().shapes[views[i].id]
				total += t.Bytes()
				views[i].detFrom = len(dets)
				views[i].g, dets = t.Gauges(now, dets)
				views[i].detTo = len(dets)
			}
			r.mu.Unlock()
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
