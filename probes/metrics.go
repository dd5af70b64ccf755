package probes

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

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
	dnsAnswers *prometheus.GaugeVec
	dnsInfo    *prometheus.GaugeVec
	runs       *prometheus.CounterVec

	// answerHash remembers the answer-set hash each DNS server last gave,
	// so that the info series of an old answer set is deleted when it
	// changes: one series per server, never one per answer ever seen.
	mu         sync.Mutex
	answerHash map[[3]string]string
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
		dnsAnswers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_answer_rrs", Help: "Answer records the DNS server returned for the check's question.",
		}, append(labels, "resolver")),
		dnsInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "probe_dns_answer_info", Help: "Always 1; answers_hash identifies the answer set (rcode and sorted records), so a change of answer is visible on a graph.",
		}, append(labels, "resolver", "answers_hash")),
		answerHash: map[[3]string]string{},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_probes_total", Help: "Probes run, by outcome (success or failure).",
		}, append(labels, "result")),
	}
	for _, c := range []prometheus.Collector{m.success, m.duration, m.httpStatus, m.httpPhase, m.certExpiry, m.dnsLookup, m.dnsAnswers, m.dnsInfo, m.runs} {
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
	for i := range r.Observed.DNS {
		m.observeDNS(check, region, &r.Observed.DNS[i])
	}
}

func (m *Metrics) observeDNS(check, region string, o *DNSObservation) {
	resolver := o.Resolver
	if o.NS != "" {
		resolver = o.NS
	}
	m.dnsAnswers.WithLabelValues(check, region, resolver).Set(float64(len(o.Answers)))
	hash := AnswersHash(o)
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

// AnswersHash is a short stable digest of what a DNS server answered: its
// rcode (or error) and sorted answers. Equal answers hash equal across
// servers, regions and restarts.
func AnswersHash(o *DNSObservation) string {
	h := sha256.New()
	state := o.Rcode
	if o.Error != "" {
		state = "error"
	}
	h.Write([]byte(state + "\n" + strings.Join(o.Answers, "\n")))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Forget deletes every series of a check in a region, for a check removed
// from the config.
func (m *Metrics) Forget(check, region string) {
	l := prometheus.Labels{"check": check, "region": region}
	for _, v := range []*prometheus.GaugeVec{m.success, m.duration, m.httpStatus, m.httpPhase, m.certExpiry, m.dnsLookup, m.dnsAnswers, m.dnsInfo} {
		v.DeletePartialMatch(l)
	}
	m.runs.DeletePartialMatch(l)
	m.mu.Lock()
	for k := range m.answerHash {
		if k[0] == check && k[1] == region {
			delete(m.answerHash, k)
		}
	}
	m.mu.Unlock()
}
