package main

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type metrics map[string]*dto.MetricFamily

var scrapeClient = &http.Client{Timeout: 30 * time.Second}

func scrape(url string) (metrics, error) {
	resp, err := scrapeClient.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return mfs, nil
}

// has reports whether the scrape had the family name.
func (m metrics) has(name string) bool { _, ok := m[name]; return ok }

// sum adds up every series of a counter or gauge.
func (m metrics) sum(name string) float64 {
	mf, ok := m[name]
	if !ok {
		return 0
	}
	var s float64
	for _, x := range mf.Metric {
		switch {
		case x.Counter != nil:
			s += x.Counter.GetValue()
		case x.Gauge != nil:
			s += x.Gauge.GetValue()
		}
	}
	return s
}

// histQuantile estimates quantile q of the observations a histogram
// received between two scrapes, interpolating within buckets. It returns
// -1 when there were none.
func histQuantile(before, after metrics, name string, q float64) time.Duration {
	counts := func(m metrics) map[float64]float64 {
		out := map[float64]float64{}
		mf, ok := m[name]
		if !ok || len(mf.Metric) == 0 || mf.Metric[0].Histogram == nil {
			return out
		}
		h := mf.Metric[0].Histogram
		for _, b := range h.Bucket {
			out[b.GetUpperBound()] = float64(b.GetCumulativeCount())
		}
		out[math.Inf(1)] = float64(h.GetSampleCount())
		return out
	}
	b0, b1 := counts(before), counts(after)
	var bounds []float64
	for ub := range b1 {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	total := b1[math.Inf(1)] - b0[math.Inf(1)]
	if total <= 0 {
		return -1
	}
	rank := q * total
	prevUB, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := b1[ub] - b0[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return time.Duration(prevUB * float64(time.Second))
			}
			frac := 0.0
			if c > prevCount {
				frac = (rank - prevCount) / (c - prevCount)
			}
			return time.Duration((prevUB + (ub-prevUB)*frac) * float64(time.Second))
		}
		prevUB, prevCount = ub, c
	}
	return -1
}
