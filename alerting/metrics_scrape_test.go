package alerting

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/exposition"
	"github.com/outposthq/outpost/probes/exposition/expositiontest"
	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Accept headers as Prometheus sends them.

// scrapedEvaluator is an evaluator of n HTTP checks (and series checks,
// when series is set) in five regions after two rounds of results six
// minutes apart, so that every latency window has closed a bucket: each
// check has its verdict, one in fifty is DOWN with an open incident, and
// every (check, region) its latency quantiles.
func scrapedEvaluator(t testing.TB, n int, series bool) *Evaluator {
	t.Helper()
	cfg := scrapeConfig(t, n, series)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev, err := New(cfg, Options{Clock: clk, Notifier: &timingNotifier{}})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if round > 0 {
			clk.Advance(6 * time.Minute)
		}
		for _, region := range benchRegions {
			var res []wire.Result
			flush := func() {
				applyBatch(t, ev, region, res, clk)
				res = res[:0]
			}
			for _, c := range cfg.Checks {
				r := benchResult(c.ID, region, !strings.HasSuffix(c.ID, "0") || c.ID[4]%2 == 0, clk.Now())
				r.Duration = 0.05 + float64(len(res))/1000
				if c.Series != nil {
					r.Type, r.Observed.Value = "series", new(float64(40+round))
				}
				if c.TCP != nil {
					r.Type = "tcp"
				}
				if res = append(res, r); len(res) == wire.MaxBatchResults {
					flush()
				}
			}
			flush()
		}
	}
	var ids []string
	for _, c := range cfg.Checks {
		ids = append(ids, c.ID)
	}
	ev.evaluate(context.Background(), clk.Now(), ids...)
	return ev
}

// scrapeConfig is n HTTP checks (and a series and a tcp check, when
// series is set) in five regions, without the checks named in skip.
func scrapeConfig(t testing.TB, n int, series bool, skip ...string) *checks.Config {
	t.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "regions: [%s]\ndefaults: {interval: 30s, max_result_age: 1h, failure: {consecutive: 1}, recovery: {consecutive: 1}}\nchecks:\n", strings.Join(benchRegions, ", "))
	for i := range n {
		if id := fmt.Sprintf("c%05d", i); !slices.Contains(skip, id) {
			fmt.Fprintf(&y, "  - {id: %s, http: {url: \"https://example.test/%d\"}}\n", id, i)
		}
	}
	if series && !slices.Contains(skip, "rps") {
		y.WriteString("  - {id: rps, series: {prometheus: {url: \"http://127.0.0.1:9090\", query: \"sum(up)\"}}, shape: {spike: {max_ratio: 4}}}\n")
	}
	if series {
		y.WriteString("  - {id: odd.id_x-1, tcp: {address: \"127.0.0.1:1\"}}\n")
	}
	cfg, err := checks.LoadBytes("scrape.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// evaluatorScrapers serves ev's per-check series the new way
// (exposition.Handler) and the old (the legacy collectors behind
// promhttp), each with nothing else registered.
func evaluatorScrapers(t testing.TB, ev *Evaluator) (fast, legacy http.Handler) {
	reg := exposition.NewRegistry()
	reg.MustRegister(newShapeCollector(ev), newDecisionCollector(ev))
	old := prometheus.NewRegistry()
	old.MustRegister(legacyShapeCollector{ev}, newLegacyDecisionCollector(ev))
	return exposition.Handler(reg), promhttp.HandlerFor(old, promhttp.HandlerOpts{Registry: old, EnableOpenMetrics: true})
}

// BenchmarkEvaluatorScrape scrapes the per-check series of 10,000 checks
// × 5 regions, served by the const-metric collectors of before (legacy)
// and as exposition.Sources (new); ns/op is the CPU of one scrape.
func BenchmarkEvaluatorScrape(b *testing.B) {
	ev := scrapedEvaluator(b, 10000, false)
	fast, legacy := evaluatorScrapers(b, ev)
	for _, f := range []struct {
		name, accept string
		gzip         bool
	}{{"text", expositiontest.AcceptText, false}, {"openmetrics+gzip", expositiontest.AcceptOpenMetrics, true}, {"protobuf", expositiontest.AcceptProto, false}} {
		for _, s := range []struct {
			name string
			h    http.Handler
		}{{"legacy", legacy}, {"new", fast}} {
			b.Run(fmt.Sprintf("checks=10000x5/%s/%s", f.name, s.name), func(b *testing.B) {
				expositiontest.BenchScrape(b, s.h, f.accept, f.gzip)
			})
		}
	}
}

// TestEvaluatorScrapeMatchesLegacy: in every format Prometheus negotiates,
// the evaluator's per-check series are what the collectors of before
// served: line for line in the text formats, family for family in
// protobuf.
func TestEvaluatorScrapeMatchesLegacy(t *testing.T) {
	ev := scrapedEvaluator(t, 60, true)
	fast, legacy := evaluatorScrapers(t, ev)
	body, _ := expositiontest.Scrape(t, fast, expositiontest.AcceptText, false)
	for _, want := range []string{`outpost_check_state{check="c00010",state="DOWN"} 1`, `outpost_incident_open{check="c00010",kind="down"} 1`,
		`outpost_latency_seconds{check="c00001",q="0.99",region="r3"}`, `outpost_series_value{check="rps",region="r1"} 41`,
		`outpost_check_up{check="odd.id_x-1"} 1`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("the load lacks %s:\n%s", want, body)
		}
	}
	compare := func(t *testing.T) {
		t.Helper()
		for _, f := range []struct {
			name, accept string
			gzip         bool
		}{{"text", expositiontest.AcceptText, false}, {"openmetrics+gzip", expositiontest.AcceptOpenMetrics, true}, {"protobuf", expositiontest.AcceptProto, false}} {
			t.Run(f.name, func(t *testing.T) { compareScrapes(t, fast, legacy, f.accept, f.gzip) })
		}
	}
	compare(t)
	// A reload removes a DOWN check with an open incident and a series
	// check: none of their series stay.
	if _, err := ev.Reload(context.Background(), scrapeConfig(t, 60, true, "c00010", "rps")); err != nil {
		t.Fatal(err)
	}
	body, _ = expositiontest.Scrape(t, fast, expositiontest.AcceptText, false)
	if bytes.Contains(body, []byte(`check="c00010"`)) || bytes.Contains(body, []byte(`check="rps"`)) {
		t.Fatalf("series of removed checks still served:\n%s", body)
	}
	t.Run("after reload", compare)
}

// compareScrapes fails unless fast serves what legacy serves for accept.
func compareScrapes(t *testing.T, fast, legacy http.Handler, accept string, gz bool) {
	t.Helper()
	want, wantType := expositiontest.Scrape(t, legacy, accept, gz)
	got, gotType := expositiontest.Scrape(t, fast, accept, gz)
	if gotType != wantType {
		t.Fatalf("Content-Type %q, want %q", gotType, wantType)
	}
	format := expfmt.Format(gotType)
	if format.FormatType() != expfmt.TypeOpenMetrics {
		if g, w := expositiontest.Canonical(t, got, format), expositiontest.Canonical(t, want, format); !slices.Equal(g, w) {
			t.Errorf("families differ:\ngot  %d lines %.2000q\nwant %d lines %.2000q", len(g), g, len(w), w)
		}
	}
	if format.FormatType() != expfmt.TypeProtoDelim {
		if g, w := expositiontest.SortedLines(got), expositiontest.SortedLines(want); !slices.Equal(g, w) {
			t.Errorf("lines differ:\ngot\n%.3000s\nwant\n%.3000s", got, want)
		}
	}
}

// TestEvaluatorScrapeDuringIngest: scrapes in every format while batches
// arrive, checks are decided and the configuration reloads (run with
// -race).
func TestEvaluatorScrapeDuringIngest(t *testing.T) {
	ev := scrapedEvaluator(t, 50, true)
	fast, _ := evaluatorScrapers(t, ev)
	clk := ev.clock.(*clocktest.Fake)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 30 {
			accept := []string{expositiontest.AcceptText, expositiontest.AcceptOpenMetrics, expositiontest.AcceptProto}[i%3]
			rec := httptest.NewRecorder()
			fast.ServeHTTP(rec, expositiontest.Request(accept, i%2 == 0))
			if rec.Code != 200 {
				t.Errorf("scrape %d: %d", i, rec.Code)
			}
		}
	}()
	for round := range 30 {
		if round%10 == 5 { // and reloads, removing a check or bringing it back
			var skip []string
			if round == 15 {
				skip = []string{"c00003"}
			}
			if _, err := ev.Reload(context.Background(), scrapeConfig(t, 50, true, skip...)); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(10 * time.Second)
		for _, region := range benchRegions {
			var res []wire.Result
			for i := range 50 {
				res = append(res, benchResult(fmt.Sprintf("c%05d", i), region, (i+round)%7 != 0, clk.Now()))
			}
			applyBatch(t, ev, region, res, clk)
		}
	}
	<-done
}
