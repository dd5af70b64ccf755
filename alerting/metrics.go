package alerting

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// outcome is what became of one batch; its name is the result label of
// outpost_ingest_batches_total.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeDuplicate
	outcomeUnauthorized
	outcomeBadRequest
	outcomeTooLarge
	// outcomeError: the batch was valid but could not be recorded (the
	// sequence file could not be written); the agent retries.
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "duplicate", "unauthorized", "bad_request", "too_large", "error"}

func (o outcome) String() string { return outcomeNames[o] }

// unknownRegionLabel labels batches whose region header names no declared
// region, so that input cannot create label values.
const unknownRegionLabel = "(unknown)"

// label is r's region for metrics and logs: its name, or
// unknownRegionLabel for a region header that names none (r nil).
func (r *regionState) label() string {
	if r == nil {
		return unknownRegionLabel
	}
	return r.name
}

// metrics are the evaluator's Prometheus metrics. Every label value comes
// from the configuration; children are created once, up front, so that the
// hot path does no label hashing.
type metrics struct {
	regions map[string]*regionMetrics
	unknown *regionMetrics
	// lagging is 1 while the evaluator is behind and holds STALE verdicts.
	lagging prometheus.Gauge
	// refusals and pingRefusals count requests refused before any work,
	// by reason (refusalReasons, pingRefusalReasons).
	refusals     map[string]prometheus.Counter
	pingRefusals map[string]prometheus.Counter
}

// Reasons of outpost_http_refused_total and outpost_ping_refused_total;
// label values come from these lists only.
var (
	refusalReasons     = []string{"source_limit", "busy", "slow_body", "poll_unauthorized", "poll_rate_limited"}
	pingRefusalReasons = []string{"wrong_token", "rate_limited"}
)

// refused is the counter of outpost_http_refused_total for reason.
func (m *metrics) refused(reason string) prometheus.Counter { return m.refusals[reason] }

// pingRefused is the counter of outpost_ping_refused_total for reason.
func (m *metrics) pingRefused(reason string) prometheus.Counter { return m.pingRefusals[reason] }

// regionMetrics are one region's children.
type regionMetrics struct {
	batches  [numOutcomes]prometheus.Counter
	results  prometheus.Counter
	late     prometheus.Counter
	skipped  prometheus.Counter
	live     prometheus.Gauge
	mismatch prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, regions []string) (*metrics, error) {
	batches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_ingest_batches_total",
		Help: "Result batches received, by region and what became of them (ok, duplicate, unauthorized, bad_request, too_large, error).",
	}, []string{"region", "result"})
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_ingest_results_total",
		Help: "Probe results accepted, by region.",
	}, []string{"region"})
	late := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_ingest_late_results_total",
		Help: "Probe results accepted older than their check's max_result_age (replayed from a spool, say), by region: kept as history, never judged.",
	}, []string{"region"})
	skipped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_ingest_skipped_results_total",
		Help: "Probe results skipped because this evaluator's configuration does not run their check in the region (or runs it as another type): the agent runs another configuration, as during a rollout. The rest of their batch applies.",
	}, []string{"region"})
	live := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_region_live",
		Help: "1 while some agent of the region delivered a batch within reporting.stale_after, else 0.",
	}, []string{"region"})
	mismatch := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_config_mismatch",
		Help: "1 while an agent of the region reports a configuration digest other than the evaluator's.",
	}, []string{"region"})
	lagging := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outpost_evaluator_lagging",
		Help: "1 while this evaluator is behind (liveness steps late, or batches waiting in ingest) and holds back STALE verdicts, else 0.",
	})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_http_refused_total",
		Help: "Requests refused before they were authenticated, by reason: source_limit (too many in flight from one address), busy (too many batch bodies in flight), slow_body (a batch body under the minimum rate), poll_unauthorized (a confirmation poll not signed by a key of its region: 401), poll_rate_limited (429: too many wrong credentials from one address).",
	}, []string{"reason"})
	pingRefused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_ping_refused_total",
		Help: "Heartbeat pings refused, by reason: wrong_token (404), rate_limited (429: too many wrong tokens from one address).",
	}, []string{"reason"})
	if reg != nil {
		for _, c := range []prometheus.Collector{batches, results, late, skipped, live, mismatch, lagging, refused, pingRefused} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering metrics: %w", err)
			}
		}
	}
	children := func(region string) *regionMetrics {
		rm := &regionMetrics{}
		for o := range numOutcomes {
			rm.batches[o] = batches.WithLabelValues(region, o.String())
		}
		return rm
	}
	m := &metrics{regions: make(map[string]*regionMetrics, len(regions)), unknown: children(unknownRegionLabel), lagging: lagging,
		refusals: map[string]prometheus.Counter{}, pingRefusals: map[string]prometheus.Counter{}}
	for _, r := range refusalReasons {
		m.refusals[r] = refused.WithLabelValues(r)
	}
	for _, r := range pingRefusalReasons {
		m.pingRefusals[r] = pingRefused.WithLabelValues(r)
	}
	for _, r := range regions {
		rm := children(r)
		rm.results = results.WithLabelValues(r)
		rm.late = late.WithLabelValues(r)
		rm.skipped = skipped.WithLabelValues(r)
		rm.live = live.WithLabelValues(r)
		rm.mismatch = mismatch.WithLabelValues(r)
		m.regions[r] = rm
	}
	return m, nil
}

// region returns the children for region, or those of unknownRegionLabel.
func (m *metrics) region(name string) *regionMetrics {
	if rm, ok := m.regions[name]; ok {
		return rm
	}
	return m.unknown
}
