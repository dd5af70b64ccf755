package agent

// The agent's metrics as they were before they became an
// exposition.Source (commit 4e96245): a collector of const metrics behind
// promhttp. Kept as the oracle that the new path must match, and as the
// "before" of the scrape benchmarks.

import (
	"sync"

	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// legacyMetrics records results as Prometheus series. Names follow
// blackbox_exporter so that existing dashboards and alerts work; every
// series is labelled by check and region instead of by scrape target.
//
// The per-check series are kept in one compact record per (check, region)
// and turned into metrics only when scraped: with ten thousand checks the
// eleven series each would otherwise cost half the agent's heap in label
// bookkeeping.
type legacyMetrics struct {
	mu     sync.Mutex
	series map[legacyKey]*legacySeries
	// answerHash remembers the answer-set hash each DNS server last gave,
	// so that the info series of an old answer set is deleted when it
	// changes: one series per server, never one per answer ever seen.
	answerHash map[[3]string]string

	dnsAnswers *prometheus.GaugeVec
	dnsInfo    *prometheus.GaugeVec
}

type legacyKey struct{ check, region string }

// series is the last result of one check in one region, as metrics.
type legacySeries struct {
	http, hasCert         bool
	hasValue              bool
	success, duration     float64
	status, dnsLookup     float64
	certExpiry            float64
	value                 float64
	phases                [len(wire.PhaseNames)]float64
	successRuns, failRuns float64
}

var (
	legacyCheckLabels    = []string{"check", "region"}
	legacyDescSuccess    = prometheus.NewDesc("probe_success", "Whether the last probe of the check succeeded (1) or failed (0).", legacyCheckLabels, nil)
	legacyDescDuration   = prometheus.NewDesc("probe_duration_seconds", "How long the last probe took, in seconds.", legacyCheckLabels, nil)
	legacyDescHTTPStatus = prometheus.NewDesc("probe_http_status_code", "HTTP status code of the last probe's final response; 0 if none arrived.", legacyCheckLabels, nil)
	legacyDescHTTPPhase  = prometheus.NewDesc("probe_http_duration_seconds", "Seconds the last HTTP probe spent in each phase (resolve, connect, tls, processing, transfer).", append(legacyCheckLabels, "phase"), nil)
	legacyDescCertExpiry = prometheus.NewDesc("probe_ssl_earliest_cert_expiry", "Earliest expiry, in Unix seconds, among the certificates the server presented.", legacyCheckLabels, nil)
	legacyDescDNSLookup  = prometheus.NewDesc("probe_dns_lookup_time_seconds", "Seconds the last probe spent resolving the target's name.", legacyCheckLabels, nil)
	legacyDescRuns       = prometheus.NewDesc("outpost_probes_total", "Probes run, by outcome (success or failure).", append(legacyCheckLabels, "result"), nil)
	legacyDescSeries     = prometheus.NewDesc("probe_series_value", "The number a series check read.", legacyCheckLabels, nil)
)

// newLegacyMetrics registers the probe metrics with reg.
func newLegacyMetrics(reg prometheus.Registerer) (*legacyMetrics, error) {
	m := &legacyMetrics{
		series:     map[legacyKey]*legacySeries{},
		answerHash: map[[3]string]string{},
		dnsAnswers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_answer_rrs", Help: "Answer records the DNS server returned for the check's question.",
		}, append(legacyCheckLabels, "resolver")),
		dnsInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_answer_info", Help: "Always 1; answers_hash identifies the answer set (rcode and sorted records), so a change of answer is visible on a graph.",
		}, append(legacyCheckLabels, "resolver", "answers_hash")),
	}
	for _, c := range []prometheus.Collector{(*legacyCollector)(m), m.dnsAnswers, m.dnsInfo} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records r. The label set of every series comes from the config,
// so cardinality is bounded by checks × regions.
func (m *legacyMetrics) Observe(r *wire.Result) {
	key := legacyKey{r.Check, r.Region}
	m.mu.Lock()
	s := m.series[key]
	if s == nil {
		s = &legacySeries{}
		m.series[key] = s
	}
	s.success = 0
	if r.OK {
		s.success = 1
		s.successRuns++
	} else {
		s.failRuns++
	}
	s.duration = r.Duration
	s.dnsLookup = r.Phases.Resolve
	if r.Type == "http" {
		s.http = true
		s.status = float64(r.Observed.StatusCode)
		s.phases = r.Phases.Values()
	}
	// A series value is exposed only while the latest probe read one: a
	// stale number next to probe_success 0 would be graphed as current.
	s.hasValue = r.Type == "series" && r.Observed.Value != nil
	if s.hasValue {
		s.value = *r.Observed.Value
	}
	if t := r.Observed.TLS; t != nil && !t.NotAfter.IsZero() {
		s.hasCert, s.certExpiry = true, float64(t.NotAfter.Unix())
	}
	m.mu.Unlock()
	for i := range r.Observed.DNS {
		m.observeDNS(r.Check, r.Region, &r.Observed.DNS[i])
	}
}

// legacyCollector emits the per-check series from their compact records.
type legacyCollector legacyMetrics

// Describe sends the descriptions of the per-check series.
func (c *legacyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{legacyDescSuccess, legacyDescDuration, legacyDescHTTPStatus, legacyDescHTTPPhase, legacyDescCertExpiry, legacyDescDNSLookup, legacyDescRuns, legacyDescSeries} {
		ch <- d
	}
}

// Collect sends the per-check series.
func (c *legacyCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k, s := range c.series {
		gauge(legacyDescSuccess, s.success, k.check, k.region)
		gauge(legacyDescDuration, s.duration, k.check, k.region)
		gauge(legacyDescDNSLookup, s.dnsLookup, k.check, k.region)
		ch <- prometheus.MustNewConstMetric(legacyDescRuns, prometheus.CounterValue, s.successRuns, k.check, k.region, "success")
		ch <- prometheus.MustNewConstMetric(legacyDescRuns, prometheus.CounterValue, s.failRuns, k.check, k.region, "failure")
		if s.http {
			gauge(legacyDescHTTPStatus, s.status, k.check, k.region)
			for i, v := range s.phases {
				gauge(legacyDescHTTPPhase, v, k.check, k.region, wire.PhaseNames[i])
			}
		}
		if s.hasCert {
			gauge(legacyDescCertExpiry, s.certExpiry, k.check, k.region)
		}
		if s.hasValue {
			gauge(legacyDescSeries, s.value, k.check, k.region)
		}
	}
}

func (m *legacyMetrics) observeDNS(check, region string, o *wire.DNSObservation) {
	resolver := o.Resolver
	if o.NS != "" {
		resolver = o.NS
	}
	m.dnsAnswers.WithLabelValues(check, region, resolver).Set(float64(len(o.Answers)))
	hash := answersHash(o)
	key := [3]string{check, region, resolver}
	m.mu.Lock()
	old, seen := m.answerHash[key]
	m.answerHash[key] = hash
	m.mu.Unlock()
	if seen && old != hash {
		m.dnsInfo.DeleteLabelValues(check, region, resolver, old)
	}
	m.dnsInfo.WithLabelValues(check, region, resolver, hash).Set(1)
}

// Keep deletes the series of every (check, region) whose job key is not in
// keep: after a reload, a check that was removed, or no longer runs in this
// region, leaves no stale probe_success behind.
func (m *legacyMetrics) Keep(keep map[string]bool) {
	m.mu.Lock()
	var gone []legacyKey
	for k := range m.series {
		if !keep[JobKey(k.check, k.region)] {
			gone = append(gone, k)
		}
	}
	m.mu.Unlock()
	for _, k := range gone {
		m.forget(k.check, k.region)
	}
}

// forget deletes every series of a check in a region, for a check removed
// from the config.
func (m *legacyMetrics) forget(check, region string) {
	l := prometheus.Labels{"check": check, "region": region}
	m.dnsAnswers.DeletePartialMatch(l)
	m.dnsInfo.DeletePartialMatch(l)
	m.mu.Lock()
	delete(m.series, legacyKey{check, region})
	for k := range m.answerHash {
		if k[0] == check && k[1] == region {
			delete(m.answerHash, k)
		}
	}
	m.mu.Unlock()
}
