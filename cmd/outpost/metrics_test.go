package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// TestAgentNoPhasesFlag: "outpost agent --metrics.no-phases" serves an
// HTTP check's series without probe_http_duration_seconds.
func TestAgentNoPhasesFlag(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(target.Close)
	eval := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.ConfirmPath {
			<-r.Context().Done()
			return
		}
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(eval.Close)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "outpost.yaml", fmt.Sprintf(`version: 1
regions: [us-east]
agents:
  - {region: us-east, key: "${OUTPOST_KEY_US_EAST}"}
checks:
  - {id: web, interval: 1s, timeout: 900ms, http: {url: %q}}
`, target.URL))
	a := startAgentCommand(t, map[string]string{"OUTPOST_KEY_US_EAST": "us-east-agent-key-0123456789"},
		"agent", "-c", cfg, "--region", "us-east", "--evaluator", eval.URL, "--listen", "127.0.0.1:0",
		"--spool-dir", filepath.Join(dir, "spool"), "--metrics.no-phases")
	metricsURL := strings.TrimSuffix(a.healthURL, "/healthz") + "/metrics"
	var body string
	clocktest.WaitFor(t, 30*time.Second, "the check's first result on /metrics", func() bool {
		resp, err := http.Get(metricsURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `probe_http_status_code{check="web",region="us-east"} 200`)
	})
	if strings.Contains(body, "probe_http_duration_seconds") {
		t.Errorf("--metrics.no-phases still serves the phases:\n%s", body)
	}
	for _, want := range []string{`probe_success{check="web",region="us-east"} 1`, "go_goroutines", "process_cpu_seconds_total", "outpost_build_info"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	a.stop(t)
}

// TestPrometheusIngestsMetrics: a real Prometheus (Debian's) scrapes an
// agent's /metrics, once negotiating OpenMetrics with gzip (its default)
// and once protobuf (as it does with native histograms on), and stores
// every per-check series.
func TestPrometheusIngestsMetrics(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("prometheus not found: CI must install it (apt-get install prometheus)")
		}
		t.Skip("prometheus not installed (apt-get install prometheus); CI runs this test")
	}
	reg := newRegistry()
	m, err := agent.NewMetrics(reg, agent.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	results := []wire.Result{
		{Check: "web", Type: "http", Region: "eu-west", OK: true, Duration: 0.2, Phases: wire.Phases{Resolve: 0.01, Connect: 0.02, TLS: 0.03, Processing: 0.1, Transfer: 0.04},
			Observed: wire.Observed{StatusCode: 200, TLS: &wire.TLSObservation{NotAfter: time.Unix(1_900_000_000, 0)}}},
		{Check: "db", Type: "tcp", Region: "eu-west", OK: false, Duration: 5},
		{Check: "www", Type: "dns", Region: "eu-west", OK: true, Observed: wire.Observed{DNS: []wire.DNSObservation{{Resolver: "system", Rcode: "NOERROR", Answers: []string{"192.0.2.1"}}}}},
	}
	for i := range results {
		m.Observe(&results[i])
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "probe_") || mf.GetName() == "outpost_probes_total" {
			want += len(mf.Metric)
		}
	}
	var served atomic.Value // the Content-Type of the latest scrape
	mux := baseMux(reg, nil, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		served.Store(w.Header().Get("Content-Type") + " " + w.Header().Get("Content-Encoding"))
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, served string
		flags        []string
	}{{"openmetrics", "application/openmetrics-text; version=1.0.0", nil},
		{"protobuf", "application/vnd.google.protobuf", []string{"--enable-feature=native-histograms"}}} {
		t.Run(tc.name, func(t *testing.T) {
			prom := startPrometheus(t, bin, strings.TrimPrefix(srv.URL, "http://"), tc.flags...)
			query := `count({job="outpost",__name__=~"probe_.+|outpost_probes_total"})`
			got := ""
			clocktest.WaitFor(t, 60*time.Second, "Prometheus to store the per-check series", func() bool {
				got = promQuery(prom, query)
				return got == fmt.Sprint(want)
			})
			if ct, _ := served.Load().(string); !strings.HasPrefix(ct, tc.served) || !strings.HasSuffix(ct, " gzip") {
				t.Errorf("served %q, want %s, gzipped", ct, tc.served)
			}
		})
	}
}

// startPrometheus runs prometheus scraping target every second, and
// returns its base URL once it is ready.
func startPrometheus(t *testing.T, bin, target string, flags ...string) string {
	t.Helper()
	return runPrometheus(t, bin, []byte(fmt.Sprintf(
		"global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: outpost\n    static_configs: [{targets: [%q]}]\n", target)), flags...)
}

// runPrometheus runs Debian's prometheus (bin) with the configuration
// conf on a free loopback port, stops it when the test ends (printing its
// configuration and output if the test failed), and returns its base URL
// once /-/ready answers.
func runPrometheus(t *testing.T, bin string, conf []byte, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	confFile := writeFile(t, dir, "prometheus.yml", string(conf))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--config.file=" + confFile, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn"}, flags...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus configuration:\n%s\nprometheus output:\n%s", conf, logs.String())
		}
	})
	base := "http://" + addr
	clocktest.WaitFor(t, 60*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// promQuery returns the value of an instant query's first sample, or "".
func promQuery(base, query string) string {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Data.Result) == 0 {
		return ""
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	return s
}
