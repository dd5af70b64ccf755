package alerting

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// The series end-to-end test runs Debian's prometheus against a loopback
// target whose request counter jumps, and a series check that queries it.
// Prometheus keeps real time, so this test waits for real scrapes (a few
// seconds); the evaluator's decisions still run on a fake clock.

// prometheusPath finds the prometheus binary; missing, the test skips,
// except in CI.
func prometheusPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prometheus not found (%v): CI must install it (apt-get install prometheus)", err)
		}
		t.Skipf("prometheus not found (%v); install it (apt-get install prometheus) to run the series test against a real server", err)
	}
	return path
}

// countingTarget serves http_requests_total, which grows by perScrape
// at every scrape: its rate follows perScrape whatever the scrape timing.
type countingTarget struct {
	total     atomic.Int64
	perScrape atomic.Int64
}

func (c *countingTarget) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	v := c.total.Add(c.perScrape.Load())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\nhttp_requests_total %d\n", v)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs prometheus scraping target every second and returns
// its base URL once it is ready.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin := prometheusPath(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	yml := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: target\n    static_configs: [{targets: [%q]}]\n", target)
	if err := os.WriteFile(conf, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs := &notifytest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	clocktest.WaitFor(t, 30*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func TestSeriesSpikeFromRealPrometheus(t *testing.T) {
	target := &countingTarget{}
	target.perScrape.Store(10)
	srv := httptest.NewServer(target)
	defer srv.Close()
	prom := startPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))

	yml := fmt.Sprintf(`version: 1
regions: [us-east]
checks:
  - id: requests
    interval: 1m
    timeout: 5s
    series:
      prometheus: {url: %q, query: "sum(rate(http_requests_total[5s]))"}
    shape:
      page: true
      seasonality: none
      warmup: 30m
      spike: {max_ratio: 4, points: 2}
`, prom)
	s := newShapeSim(t, yml, "", simStart)
	c := s.ev.plan.Load().checks["requests"]
	prober, err := probes.New(c, probes.Options{Region: "us-east"})
	if err != nil {
		t.Fatal(err)
	}
	// probe reads the real server now and applies the result at the fake
	// clock's now.
	probe := func() wire.Result {
		r := prober.Probe(context.Background())
		r.Time, r.Seq = s.clk.Now(), uint64(s.clk.Now().UnixNano())
		return r
	}
	apply := func(r wire.Result) {
		t.Helper()
		b := wire.Batch{V: 1, Agent: "a", Region: "us-east", Seq: r.Seq, Created: r.Time, ConfigDigest: s.cfg.Digest, Results: []wire.Result{r}}
		if err := s.ev.Apply(b); err != nil {
			t.Fatal(err)
		}
		s.clk.Advance(c.Interval)
	}

	// Normal traffic: 10 per scrape, about 10/s. An hour of it (on the
	// fake clock) warms the baseline; each value is a real query.
	var normal wire.Result
	clocktest.WaitFor(t, 30*time.Second, "a steady rate from prometheus", func() bool {
		normal = probe()
		return normal.OK && normal.Observed.Value != nil && *normal.Observed.Value > 5
	})
	for range 60 {
		r := probe()
		if !r.OK {
			t.Fatalf("normal probe failed: %s", r.Reason)
		}
		apply(r)
	}
	if n := s.shapeNotes(decide.IncidentShape); len(n) > 0 {
		t.Fatalf("normal traffic raised: %s", n[0].Summary)
	}

	// The spike: 80 per scrape.
	target.perScrape.Store(80)
	var spike wire.Result
	clocktest.WaitFor(t, 30*time.Second, "prometheus to see the spike", func() bool {
		spike = probe()
		return spike.OK && *spike.Observed.Value > 6**normal.Observed.Value
	})
	apply(spike)
	apply(probe())
	tr := s.triggers(decide.IncidentShape)
	if len(tr) != 1 || tr[0].Route != checks.RouteCritical || !strings.Contains(tr[0].Summary, "spike:") {
		t.Fatalf("want one spike page; got %+v", tr)
	}
	t.Logf("paged: %s", tr[0].Summary)
	if sh := s.ev.Snapshot().Checks[0].Regions[0].Shape; sh.Value == nil || *sh.Value < 4*sh.Usual.Value {
		t.Errorf("status shows value %v usual %+v", sh.Value, sh.Usual)
	}
}
