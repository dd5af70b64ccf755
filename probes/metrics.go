package probes

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records results as Prometheus series. Names follow
// blackbox_exporter so that existing dashboards and alerts work; every
// series is labelled by check and region instead of by scrape target.
type Metrics struct {
	success    *prometheus.GaugeVec
	duration   *prometheus.GaugeVec
	httpStatus *prometheus.GaugeVec
	httpPhase  *prometheus.GaugeVec
	certExpiry *prometheus.GaugeVec
	dnsLookup  *prometheus.GaugeVec
	runs       *prometheus.CounterVec
}

// NewMetrics registers the probe metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	labels := []string{"check", "region"}
	m := &Metrics{
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_success", Help: "Whether the last probe of the check succeeded (1) or failed (0).",
		}, labels),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_duration_seconds", Help: "How long the last probe took, in seconds.",
		}, labels),
		httpStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_http_status_code", Help: "HTTP status code of the last probe's final response; 0 if none arrived.",
		}, labels),
		httpPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_http_duration_seconds", Help: "Seconds the last HTTP probe spent in each phase (resolve, connect, tls, processing, transfer).",
		}, append(labels, "phase")),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_ssl_earliest_cert_expiry", Help: "Earliest expiry, in Unix seconds, among the certificates the server presented.",
		}, labels),
		dnsLookup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_lookup_time_seconds", Help: "Seconds the last probe spent resolving the target's name.",
		}, labels),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_probes_total", Help: "Probes run, by outcome (success or failure).",
		}, append(labels, "result")),
	}
	for _, c := range []prometheus.Collector{m.success, m.duration, m.httpStatus, m.httpPhase, m.certExpiry, m.dnsLookup, m.runs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe records r. The label set of every series comes from the config,
// so cardinality is bounded by checks × regions.
func (m *Metrics) Observe(r *Result) {
	check, region := r.Check, r.Region
	ok, outcome := 0.0, "failure"
	if r.OK {
		ok, outcome = 1, "success"
	}
	m.success.WithLabelValues(check, region).Set(ok)
	m.duration.WithLabelValues(check, region).Set(r.Duration)
	m.runs.WithLabelValues(check, region, outcome).Inc()
	m.dnsLookup.WithLabelValues(check, region).Set(r.Phases.Resolve)
	if r.Type == "http" {
		m.httpStatus.WithLabelValues(check, region).Set(float64(r.Observed.StatusCode))
		for i, v := range r.Phases.Values() {
			m.httpPhase.WithLabelValues(check, region, PhaseNames[i]).Set(v)
		}
	}
	if t := r.Observed.TLS; t != nil && !t.NotAfter.IsZero() {
		m.certExpiry.WithLabelValues(check, region).Set(float64(t.NotAfter.Unix()))
	}
}

// Forget deletes every series of a check in a region, for a check removed
// from the config.
func (m *Metrics) Forget(check, region string) {
	l := prometheus.Labels{"check": check, "region": region}
	for _, v := range []*prometheus.GaugeVec{m.success, m.duration, m.httpStatus, m.httpPhase, m.certExpiry, m.dnsLookup} {
		v.DeletePartialMatch(l)
	}
	m.runs.DeletePartialMatch(l)
}
