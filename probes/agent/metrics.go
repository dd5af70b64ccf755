package agent

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"github.com/outposthq/outpost/probes/exposition"
	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics records results as Prometheus series. Names follow
// blackbox_exporter so that existing dashboards and alerts work; every
// series is labelled by check and region instead of by scrape target.
//
// The per-check series are kept in one compact record per (check, region),
// with its label set rendered once, and turned into metrics only when
// scraped. Metrics is an exposition.Source: registered with an
// exposition.Registry it writes the text formats itself, which at ten
// thousand checks costs a small fraction of building a dto.Metric per
// series. Scrapes copy each record under its own lock, so a probe
// reporting its result never waits for a scrape to render.
type Metrics struct {
	phases bool

	mu     sync.Mutex // guards series, order and sorted
	series map[seriesKey]*series
	// order is series' records sorted by check and region, rebuilt at the
	// first scrape after a record came or went.
	order  []*series
	sorted bool

	scrape sync.Mutex // serializes scrapes; guards snap and dnsSnap
	snap   []snapshot
	dns    []dnsSeries
}

// MetricsOptions tune which series are exposed.
type MetricsOptions struct {
	// NoPhases drops probe_http_duration_seconds{phase}: five of the
	// eleven series of an HTTP check.
	NoPhases bool
}

type seriesKey struct{ check, region string }

// series is the last result of one check in one region, as metrics.
type series struct {
	key    seriesKey
	labels exposition.Labels // check="...",region="..."
	// check and region are the two halves of labels, for label sets
	// that sort between them (phase).
	check, region exposition.Labels
	mu            sync.Mutex // guards v and dns
	v             values
	// dns has one entry per DNS server ever answering for the check,
	// sorted by resolver: one answer-info series per server, never one
	// per answer ever seen.
	dns []dnsSeries
}

type values struct {
	http, hasCert         bool
	hasValue              bool
	success, duration     float64
	status, dnsLookup     float64
	certExpiry            float64
	value                 float64
	phases                [len(wire.PhaseNames)]float64
	successRuns, failRuns float64
}

// dnsSeries is what one DNS server last answered for a check.
type dnsSeries struct {
	resolver string
	labels   exposition.Labels // check, region and resolver
	answers  float64
	hash     string
	hashL    exposition.Labels // answers_hash="..."
}

// snapshot is a record's values as one scrape reads them; dns indexes the
// scrape's copy of its DNS series.
type snapshot struct {
	s              *series
	v              values
	dnsFrom, dnsTo int
}

const (
	helpSuccess    = "Whether the last probe of the check succeeded (1) or failed (0)."
	helpDuration   = "How long the last probe took, in seconds."
	helpHTTPStatus = "HTTP status code of the last probe's final response; 0 if none arrived."
	helpHTTPPhase  = "Seconds the last HTTP probe spent in each phase (resolve, connect, tls, processing, transfer)."
	helpCertExpiry = "Earliest expiry, in Unix seconds, among the certificates the server presented."
	helpDNSLookup  = "Seconds the last probe spent resolving the target's name."
	helpRuns       = "Probes run, by outcome (success or failure)."
	helpSeries     = "The number a series check read."
	helpDNSAnswers = "Answer records the DNS server returned for the check's question."
	helpDNSInfo    = "Always 1; answers_hash identifies the answer set (rcode and sorted records), so a change of answer is visible on a graph."
)

var (
	checkLabels    = []string{"check", "region"}
	descSuccess    = prometheus.NewDesc("probe_success", helpSuccess, checkLabels, nil)
	descDuration   = prometheus.NewDesc("probe_duration_seconds", helpDuration, checkLabels, nil)
	descHTTPStatus = prometheus.NewDesc("probe_http_status_code", helpHTTPStatus, checkLabels, nil)
	descHTTPPhase  = prometheus.NewDesc("probe_http_duration_seconds", helpHTTPPhase, append(checkLabels, "phase"), nil)
	descCertExpiry = prometheus.NewDesc("probe_ssl_earliest_cert_expiry", helpCertExpiry, checkLabels, nil)
	descDNSLookup  = prometheus.NewDesc("probe_dns_lookup_time_seconds", helpDNSLookup, checkLabels, nil)
	descRuns       = prometheus.NewDesc("outpost_probes_total", helpRuns, append(checkLabels, "result"), nil)
	descSeries     = prometheus.NewDesc("probe_series_value", helpSeries, checkLabels, nil)
	descDNSAnswers = prometheus.NewDesc("probe_dns_answer_rrs", helpDNSAnswers, append(checkLabels, "resolver"), nil)
	descDNSInfo    = prometheus.NewDesc("probe_dns_answer_info", helpDNSInfo, append(checkLabels, "resolver", "answers_hash"), nil)

	phaseLabels  [len(wire.PhaseNames)]exposition.Labels
	resultLabels = [2]exposition.Labels{exposition.MakeLabels("result", "success"), exposition.MakeLabels("result", "failure")}
)

func init() {
	for i, p := range wire.PhaseNames {
		phaseLabels[i] = exposition.MakeLabels("phase", p)
	}
}

// NewMetrics registers the probe metrics with reg.
func NewMetrics(reg prometheus.Registerer, opts MetricsOptions) (*Metrics, error) {
	m := &Metrics{phases: !opts.NoPhases, series: map[seriesKey]*series{}}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe records r. The label set of every series comes from the config,
// so cardinality is bounded by checks × regions.
func (m *Metrics) Observe(r *wire.Result) {
	key := seriesKey{r.Check, r.Region}
	m.mu.Lock()
	s := m.series[key]
	if s == nil {
		c, rg := exposition.MakeLabels("check", r.Check), exposition.MakeLabels("region", r.Region)
		l := c + "," + rg
		s = &series{key: key, labels: l, check: l[:len(c)], region: l[len(c)+1:]}
		m.series[key] = s
		m.sorted = false
	}
	m.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	v := &s.v
	v.success = 0
	if r.OK {
		v.success = 1
		v.successRuns++
	} else {
		v.failRuns++
	}
	v.duration = r.Duration
	v.dnsLookup = r.Phases.Resolve
	if r.Type == "http" {
		v.http = true
		v.status = float64(r.Observed.StatusCode)
		v.phases = r.Phases.Values()
	}
	// A series value is exposed only while the latest probe read one: a
	// stale number next to probe_success 0 would be graphed as current.
	v.hasValue = r.Type == "series" && r.Observed.Value != nil
	if v.hasValue {
		v.value = *r.Observed.Value
	}
	if t := r.Observed.TLS; t != nil && !t.NotAfter.IsZero() {
		v.hasCert, v.certExpiry = true, float64(t.NotAfter.Unix())
	}
	for i := range r.Observed.DNS {
		s.observeDNS(&r.Observed.DNS[i])
	}
}

// observeDNS records what one server answered; s.mu is held.
func (s *series) observeDNS(o *wire.DNSObservation) {
	resolver := o.Resolver
	if o.NS != "" {
		resolver = o.NS
	}
	i, found := slices.BinarySearchFunc(s.dns, resolver, func(d dnsSeries, r string) int { return strings.Compare(d.resolver, r) })
	if !found {
		s.dns = slices.Insert(s.dns, i, dnsSeries{resolver: resolver,
			labels: exposition.MakeLabels("check", s.key.check, "region", s.key.region, "resolver", resolver)})
	}
	d := &s.dns[i]
	d.answers = float64(len(o.Answers))
	if h := answersHash(o); h != d.hash {
		d.hash, d.hashL = h, exposition.MakeLabels("answers_hash", h)
	}
}

// answersHash is a short stable digest of what a DNS server answered: its
// rcode (or error) and sorted answers. Equal answers hash equal across
// servers, regions and restarts.
func answersHash(o *wire.DNSObservation) string {
	h := sha256.New()
	state := o.Rcode
	if o.Error != "" {
		state = "error"
	}
	h.Write([]byte(state + "\n" + strings.Join(o.Answers, "\n")))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Keep deletes the series of every (check, region) whose job key is not in
// keep: after a reload, a check that was removed, or no longer runs in this
// region, leaves no stale probe_success behind.
func (m *Metrics) Keep(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if !keep[JobKey(k.check, k.region)] {
			delete(m.series, k)
			m.sorted = false
		}
	}
}

// read calls f with a copy of every record, in order, holding only the
// scrape lock while f runs; each record's own lock is held just long
// enough to copy it.
func (m *Metrics) read(f func(snaps []snapshot, dns []dnsSeries)) {
	m.scrape.Lock()
	defer m.scrape.Unlock()
	m.mu.Lock()
	if !m.sorted {
		m.order = m.order[:0]
		for _, s := range m.series {
			m.order = append(m.order, s)
		}
		slices.SortFunc(m.order, func(a, b *series) int {
			return cmp.Or(strings.Compare(a.key.check, b.key.check), strings.Compare(a.key.region, b.key.region))
		})
		m.order = slices.Clip(m.order)
		m.sorted = true
	}
	snaps := m.snap[:0]
	for _, s := range m.order {
		snaps = append(snaps, snapshot{s: s})
	}
	m.mu.Unlock()
	dns := m.dns[:0]
	for i := range snaps {
		s := snaps[i].s
		s.mu.Lock()
		snaps[i].v = s.v
		snaps[i].dnsFrom = len(dns)
		dns = append(dns, s.dns...)
		snaps[i].dnsTo = len(dns)
		s.mu.Unlock()
	}
	f(snaps, dns)
	// Kept for the next scrape, without pointers to records that may go.
	clear(snaps)
	m.snap, m.dns = snaps[:0], dns[:0]
}

// WriteMetrics writes the per-check series; see exposition.Source.
func (m *Metrics) WriteMetrics(w *exposition.Writer) {
	m.read(func(snaps []snapshot, dns []dnsSeries) {
		w.Family("probe_success", helpSuccess, exposition.Gauge)
		for i := range snaps {
			w.Sample(snaps[i].v.success, snaps[i].s.labels)
		}
		w.Family("probe_duration_seconds", helpDuration, exposition.Gauge)
		for i := range snaps {
			w.Sample(snaps[i].v.duration, snaps[i].s.labels)
		}
		w.Family("probe_http_status_code", helpHTTPStatus, exposition.Gauge)
		for i := range snaps {
			if snaps[i].v.http {
				w.Sample(snaps[i].v.status, snaps[i].s.labels)
			}
		}
		if m.phases {
			w.Family("probe_http_duration_seconds", helpHTTPPhase, exposition.Gauge)
			for i := range snaps {
				if snaps[i].v.http {
					for p, v := range snaps[i].v.phases {
						w.Sample(v, snaps[i].s.check, phaseLabels[p], snaps[i].s.region)
					}
				}
			}
		}
		w.Family("probe_ssl_earliest_cert_expiry", helpCertExpiry, exposition.Gauge)
		for i := range snaps {
			if snaps[i].v.hasCert {
				w.Sample(snaps[i].v.certExpiry, snaps[i].s.labels)
			}
		}
		w.Family("probe_dns_lookup_time_seconds", helpDNSLookup, exposition.Gauge)
		for i := range snaps {
			w.Sample(snaps[i].v.dnsLookup, snaps[i].s.labels)
		}
		w.Family("outpost_probes_total", helpRuns, exposition.Counter)
		for i := range snaps {
			w.Sample(snaps[i].v.successRuns, snaps[i].s.labels, resultLabels[0])
			w.Sample(snaps[i].v.failRuns, snaps[i].s.labels, resultLabels[1])
		}
		w.Family("probe_series_value", helpSeries, exposition.Gauge)
		for i := range snaps {
			if snaps[i].v.hasValue {
				w.Sample(snaps[i].v.value, snaps[i].s.labels)
			}
		}
		w.Family("probe_dns_answer_rrs", helpDNSAnswers, exposition.Gauge)
		for i := range dns {
			w.Sample(dns[i].answers, dns[i].labels)
		}
		w.Family("probe_dns_answer_info", helpDNSInfo, exposition.Gauge)
		for i := range dns {
			w.Sample(1, dns[i].hashL, dns[i].labels)
		}
	})
}

// Describe sends the descriptions of the per-check series.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSuccess, descDuration, descHTTPStatus, descHTTPPhase, descCertExpiry,
		descDNSLookup, descRuns, descSeries, descDNSAnswers, descDNSInfo} {
		ch <- d
	}
}

// Collect sends the per-check series as WriteMetrics writes them, for
// protobuf scrapes and Gather.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.read(func(snaps []snapshot, dns []dnsSeries) {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		for i := range snaps {
			k, v := snaps[i].s.key, &snaps[i].v
			gauge(descSuccess, v.success, k.check, k.region)
			gauge(descDuration, v.duration, k.check, k.region)
			gauge(descDNSLookup, v.dnsLookup, k.check, k.region)
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, v.successRuns, k.check, k.region, "success")
			ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, v.failRuns, k.check, k.region, "failure")
			if v.http {
				gauge(descHTTPStatus, v.status, k.check, k.region)
				if m.phases {
					for p, pv := range v.phases {
						gauge(descHTTPPhase, pv, k.check, k.region, wire.PhaseNames[p])
					}
				}
			}
			if v.hasCert {
				gauge(descCertExpiry, v.certExpiry, k.check, k.region)
			}
			if v.hasValue {
				gauge(descSeries, v.value, k.check, k.region)
			}
			for _, d := range dns[snaps[i].dnsFrom:snaps[i].dnsTo] {
				gauge(descDNSAnswers, d.answers, k.check, k.region, d.resolver)
				gauge(descDNSInfo, 1, k.check, k.region, d.resolver, d.hash)
			}
		}
	})
}
