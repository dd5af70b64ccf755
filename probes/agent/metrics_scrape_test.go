package agent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/exposition"
	"github.com/outposthq/outpost/probes/exposition/expositiontest"
	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Accept headers as Prometheus sends them.

// loadResults is n checks of the agent's region as the issue measured
// them: HTTPS checks with a certificate, the agent's commonest and
// largest kind (12 series each).
func loadResults(n int) []wire.Result {
	res := make([]wire.Result, n)
	for i := range res {
		res[i] = wire.Result{V: 1, Check: fmt.Sprintf("check-%05d", i), Type: "http", Region: "eu-west", OK: i%17 != 0,
			Duration: 0.1 + float64(i%100)/1000,
			Phases:   wire.Phases{Resolve: 0.001 * float64(i%7), Connect: 0.012, TLS: 0.031, Processing: 0.0456, Transfer: 0.0021},
			Observed: wire.Observed{StatusCode: 200, TLS: &wire.TLSObservation{Version: "1.3", NotAfter: time.Unix(1_900_000_000+int64(i), 0)}}}
	}
	return res
}

// mixedResults is every kind of check with every kind of label value,
// escapes included, for the equality tests.
func mixedResults() []wire.Result {
	res := sampleResults()
	res = append(res,
		wire.Result{V: 1, Check: `odd"name\with` + "\nnewline", Type: "tcp", Region: "us-east", OK: true, Duration: 1e-7},
		wire.Result{V: 1, Check: "big", Type: "series", Region: "us-east", OK: true, Observed: wire.Observed{Value: new(1.5e300)}},
		wire.Result{V: 1, Check: "neg", Type: "series", Region: "us-east", OK: true, Observed: wire.Observed{Value: new(-3.0)}},
		wire.Result{V: 1, Check: "www-a", Type: "dns", Region: "us-east", OK: true, Phases: wire.Phases{Resolve: 0.003},
			Observed: wire.Observed{DNS: []wire.DNSObservation{{Resolver: "system", Rcode: "NOERROR", Answers: []string{"198.51.100.8"}},
				{Resolver: "authoritative", NS: "ns1.example.com", Rcode: "SERVFAIL", Error: "x"}}}},
	)
	return append(res, loadResults(50)...)
}

// scraper is one way of serving the agent's per-check series.
type scraper struct {
	name    string
	observe func(*wire.Result)
	handler http.Handler
}

// newScraper serves the series the new way: Metrics in an
// exposition.Registry behind exposition.Handler.
func newScraper(t testing.TB, opts MetricsOptions) (*Metrics, *exposition.Registry, scraper) {
	reg := exposition.NewRegistry()
	m, err := NewMetrics(reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg, scraper{"new", m.Observe, exposition.Handler(reg)}
}

// legacyScraper serves them as before: a const-metric collector behind
// promhttp.
func legacyScraper(t testing.TB) (*legacyMetrics, scraper) {
	reg := prometheus.NewRegistry()
	m, err := newLegacyMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, scraper{"legacy", m.Observe, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})}
}

// plainScraper registers the same series the plain client_golang way: a
// vector per family and a child per series, set as results arrive.
func plainScraper() scraper {
	reg := prometheus.NewRegistry()
	gv := func(name string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, append([]string{"check", "region"}, labels...))
		reg.MustRegister(v)
		return v
	}
	success, duration, status := gv("probe_success"), gv("probe_duration_seconds"), gv("probe_http_status_code")
	phase, cert, lookup := gv("probe_http_duration_seconds", "phase"), gv("probe_ssl_earliest_cert_expiry"), gv("probe_dns_lookup_time_seconds")
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_probes_total", Help: "runs"}, []string{"check", "region", "result"})
	reg.MustRegister(runs)
	observe := func(r *wire.Result) {
		ok := 0.0
		if r.OK {
			ok = 1
		}
		success.WithLabelValues(r.Check, r.Region).Set(ok)
		duration.WithLabelValues(r.Check, r.Region).Set(r.Duration)
		lookup.WithLabelValues(r.Check, r.Region).Set(r.Phases.Resolve)
		res := "failure"
		if r.OK {
			res = "success"
		}
		runs.WithLabelValues(r.Check, r.Region, res).Inc()
		runs.WithLabelValues(r.Check, r.Region, "failure").Add(0)
		status.WithLabelValues(r.Check, r.Region).Set(float64(r.Observed.StatusCode))
		for i, v := range r.Phases.Values() {
			phase.WithLabelValues(r.Check, r.Region, wire.PhaseNames[i]).Set(v)
		}
		if r.Observed.TLS != nil {
			cert.WithLabelValues(r.Check, r.Region).Set(float64(r.Observed.TLS.NotAfter.Unix()))
		}
	}
	return scraper{"plain", observe, promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})}
}

// BenchmarkAgentScrape scrapes n checks' series served three ways: the
// plain client_golang way (a vector child per series), the const-metric
// collector of before, and the exposition.Source of now; ns/op is the CPU
// of one scrape (it runs on one goroutine).
func BenchmarkAgentScrape(b *testing.B) {
	formats := []struct {
		name   string
		accept string
		gzip   bool
	}{
		{"text", expositiontest.AcceptText, false},
		{"openmetrics+gzip", expositiontest.AcceptOpenMetrics, true},
		{"protobuf", expositiontest.AcceptProto, false},
	}
	for _, n := range []int{1000, 10000} {
		results := loadResults(n)
		_, legacy := legacyScraper(b)
		_, _, fast := newScraper(b, MetricsOptions{})
		_, _, nophases := newScraper(b, MetricsOptions{NoPhases: true})
		nophases.name = "new-nophases"
		for _, s := range []scraper{plainScraper(), legacy, fast, nophases} {
			for i := range results {
				s.observe(&results[i])
			}
			for _, f := range formats {
				if s.name == "new-nophases" && f.name == "protobuf" {
					continue
				}
				b.Run(fmt.Sprintf("checks=%d/%s/%s", n, f.name, s.name), func(b *testing.B) {
					expositiontest.BenchScrape(b, s.handler, f.accept, f.gzip)
				})
			}
		}
	}
}

// BenchmarkAgentScrapeGzipLevel is what gzip costs on top of rendering,
// at the level the handler uses (BestSpeed) and at the default.
func BenchmarkAgentScrapeGzipLevel(b *testing.B) {
	_, _, s := newScraper(b, MetricsOptions{})
	results := loadResults(10000)
	for i := range results {
		s.observe(&results[i])
	}
	w := &expositiontest.Discard{}
	s.handler.ServeHTTP(w, expositiontest.Request(expositiontest.AcceptText, false))
	var body bytes.Buffer
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, expositiontest.Request(expositiontest.AcceptText, false))
	body.Write(rec.Body.Bytes())
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			zw, _ := gzip.NewWriterLevel(io.Discard, level)
			cw := &expositiontest.Discard{}
			for b.Loop() {
				cw.N = 0
				zw.Reset(cw)
				zw.Write(body.Bytes())
				zw.Close()
			}
			b.ReportMetric(float64(cw.N), "bytes/scrape")
			b.ReportMetric(float64(body.Len()), "raw-bytes")
		})
	}
}

// TestScrapeMatchesLegacy: in every format Prometheus negotiates, the new
// path serves what the const-metric collector of before served, line for
// line in the text formats, family for family in protobuf; also after a
// reload removed a check (no stale series).
func TestScrapeMatchesLegacy(t *testing.T) {
	old, legacy := legacyScraper(t)
	m, _, fast := newScraper(t, MetricsOptions{})
	keep := map[string]bool{}
	for _, r := range mixedResults() {
		legacy.observe(&r)
		fast.observe(&r)
		keep[JobKey(r.Check, r.Region)] = true
	}
	compare := func(t *testing.T) {
		t.Helper()
		for _, f := range []struct {
			name   string
			accept string
			gzip   bool
		}{{"text", expositiontest.AcceptText, false}, {"text+gzip", expositiontest.AcceptText, true}, {"openmetrics", expositiontest.AcceptOpenMetrics, false},
			{"openmetrics+gzip", expositiontest.AcceptOpenMetrics, true}, {"protobuf", expositiontest.AcceptProto, false}, {"protobuf+gzip", expositiontest.AcceptProto, true}} {
			t.Run(f.name, func(t *testing.T) {
				want, wantType := expositiontest.Scrape(t, legacy.handler, f.accept, f.gzip)
				got, gotType := expositiontest.Scrape(t, fast.handler, f.accept, f.gzip)
				if gotType != wantType {
					t.Errorf("Content-Type %q, want %q", gotType, wantType)
				}
				format := expfmt.Format(gotType)
				if format.FormatType() == expfmt.TypeProtoDelim {
					if g, w := expositiontest.Canonical(t, got, format), expositiontest.Canonical(t, want, format); !slices.Equal(g, w) {
						t.Errorf("protobuf families differ: %s", expositiontest.LineDiff(g, w))
					}
					return
				}
				if format.FormatType() == expfmt.TypeTextPlain {
					if g, w := expositiontest.Canonical(t, got, format), expositiontest.Canonical(t, want, format); !slices.Equal(g, w) {
						t.Errorf("parsed families differ: %s", expositiontest.LineDiff(g, w))
					}
				}
				if g, w := expositiontest.SortedLines(got), expositiontest.SortedLines(want); !slices.Equal(g, w) {
					t.Errorf("lines differ: %s", expositiontest.LineDiff(g, w))
				}
				if format.FormatType() == expfmt.TypeOpenMetrics && !bytes.HasSuffix(got, []byte("\n# EOF\n")) {
					t.Errorf("OpenMetrics exposition does not end in # EOF")
				}
			})
		}
	}
	compare(t)
	delete(keep, JobKey("web-home", "us-east"))
	delete(keep, JobKey("www-a", "us-east"))
	old.Keep(keep)
	m.Keep(keep)
	body, _ := expositiontest.Scrape(t, fast.handler, expositiontest.AcceptText, false)
	if bytes.Contains(body, []byte(`check="web-home",region="us-east"`)) || bytes.Contains(body, []byte(`check="www-a"`)) {
		t.Fatalf("series of removed checks still served:\n%s", body)
	}
	t.Run("after reload", compare)
}

// TestScrapeNoPhases: NoPhases removes exactly the five phase series of
// each HTTP check, and nothing else.
func TestScrapeNoPhases(t *testing.T) {
	_, _, all := newScraper(t, MetricsOptions{})
	_, _, some := newScraper(t, MetricsOptions{NoPhases: true})
	httpChecks := 0
	for _, r := range mixedResults() {
		all.observe(&r)
		some.observe(&r)
	}
	seen := map[string]bool{}
	for _, r := range mixedResults() {
		if k := JobKey(r.Check, r.Region); r.Type == "http" && !seen[k] {
			seen[k] = true
			httpChecks++
		}
	}
	for _, accept := range []string{expositiontest.AcceptText, expositiontest.AcceptProto} {
		withBody, ct := expositiontest.Scrape(t, all.handler, accept, false)
		withoutBody, _ := expositiontest.Scrape(t, some.handler, accept, false)
		with, without := expositiontest.Canonical(t, withBody, expfmt.Format(ct)), expositiontest.Canonical(t, withoutBody, expfmt.Format(ct))
		var dropped []string
		for _, l := range with {
			if !slices.Contains(without, l) {
				dropped = append(dropped, l)
			}
		}
		if len(with)-len(without) != len(dropped) {
			t.Errorf("%s: the switch added series: %d with, %d without, %d dropped", ct, len(with), len(without), len(dropped))
		}
		if len(dropped) != 1+5*httpChecks {
			t.Errorf("%s: %d lines dropped, want the family and 5 per HTTP check (%d): %q", ct, len(dropped), httpChecks, dropped)
		}
		for _, l := range dropped {
			if !strings.HasPrefix(l, "probe_http_duration_seconds") {
				t.Errorf("%s: dropped %q", ct, l)
			}
		}
	}
}

// blockingWriter holds every Write until released, as a slow client does.
type blockingWriter struct {
	h       http.Header
	writing chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	select {
	case w.writing <- struct{}{}:
	default:
	}
	<-w.release
	return len(b), nil
}

// TestScrapeDoesNotHoldUpProbes: while a scrape is stuck writing to a slow
// client, results of checks old and new are still recorded.
func TestScrapeDoesNotHoldUpProbes(t *testing.T) {
	m, _, s := newScraper(t, MetricsOptions{})
	results := loadResults(2000) // more than the handler's buffer
	for i := range results {
		m.Observe(&results[i])
	}
	w := &blockingWriter{h: http.Header{}, writing: make(chan struct{}, 1), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.handler.ServeHTTP(w, expositiontest.Request(expositiontest.AcceptOpenMetrics, true))
	}()
	t.Cleanup(func() { close(w.release); <-done })
	<-w.writing
	observed := make(chan struct{})
	go func() {
		defer close(observed)
		m.Observe(&results[7])
		m.Observe(&wire.Result{Check: "new-check", Type: "tcp", Region: "eu-west", OK: true})
		m.Keep(map[string]bool{JobKey("new-check", "eu-west"): true})
	}()
	select {
	case <-observed:
	case <-done:
		t.Fatal("the scrape ended before the results were recorded")
	case <-time.After(30 * time.Second):
		t.Fatal("Observe waited for a scrape stuck on a slow client")
	}
}
