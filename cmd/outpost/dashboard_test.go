package main

import (
	"bufio"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// The files under test, as shipped.
var (
	dashboardFile  = filepath.Join("..", "..", "examples", "grafana", "outpost.json")
	rulesFile      = filepath.Join("..", "..", "examples", "prometheus", "outpost-rules.yml")
	promConfigFile = filepath.Join("..", "..", "examples", "prometheus", "prometheus.yml")
)

// The checks and regions of the stack the queries run against.
var (
	stackChecks  = []string{"web", "api", "zone"}
	stackRegions = []string{"local", "remote"}
)

// TestDashboardAndRulesOnRealPrometheus runs a real Outpost ("outpost
// run" for region local, "outpost agent" for region remote reporting to
// it, probing an HTTPS server, a failing HTTP server and a DNS server on
// loopback), and Debian's prometheus scraping both with the scrape jobs of
// examples/prometheus/prometheus.yml and the rules of outpost-rules.yml.
// Every PromQL expression of the Grafana dashboard and of the rules must
// parse and return data, and so must every metric each one names; then
// the blackbox-exporter-mixin's queries, on the series the relabel recipe
// of prometheus.yml makes.
func TestDashboardAndRulesOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Outpost and Prometheus processes")
	}
	promBin := lookTool(t, "prometheus")
	promtool := lookTool(t, "promtool")
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	dashboard := dashboardExprs(t, dashboardFile)
	rules := ruleExprs(t, rulesFile)
	if len(dashboard) < 20 || len(rules) < 10 {
		t.Fatalf("read %d dashboard and %d rule expressions: the files were not read as expected", len(dashboard), len(rules))
	}

	started := time.Now()
	runURL, agentURL := startStack(t)
	prom := startPrometheusOn(t, promBin, runURL, agentURL)
	t.Logf("stack and prometheus ready after %s", time.Since(started).Round(time.Millisecond))

	// One deadline for all: the slowest series (a shape bucket closing, an
	// incident opening, the first rule evaluation) shows within seconds;
	// the rest are there by then.
	deadline := time.Now().Add(60 * time.Second)
	vars := grafanaVars(stackChecks, stackRegions)
	checkExpr := func(t *testing.T, e promExpr) {
		expr := vars.Replace(e.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a Grafana variable is left unsubstituted: %s", e.where, expr)
			return
		}
		if !e.nonEmpty {
			if _, err := promResult(prom, expr); err != nil {
				t.Errorf("%s: %s\n  %v", e.where, expr, err)
			}
			expr = vars.Replace(e.lhs)
		}
		if err := waitForData(prom, expr, deadline); err != nil {
			t.Errorf("%s: %s\n  %v", e.where, expr, err)
		}
		for _, name := range metricNames(expr) {
			if err := waitForData(prom, name, deadline); err != nil {
				t.Errorf("%s: names %s, which has %v", e.where, name, err)
			}
		}
	}
	t.Run("rules", func(t *testing.T) {
		for _, e := range rules {
			checkExpr(t, e)
		}
	})
	t.Run("dashboard", func(t *testing.T) {
		for _, e := range dashboard {
			checkExpr(t, e)
		}
	})
	t.Run("blackbox mixin", func(t *testing.T) {
		testBlackboxMixin(t, prom, deadline)
	})
	t.Logf("%d rule and %d dashboard expressions checked; %s in all", len(rules), len(dashboard), time.Since(started).Round(time.Millisecond))
}

// lookTool finds a tool the test needs: missing, it skips, or fails in CI.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (%v): CI must install it (apt-get install prometheus)", name, err)
		}
		t.Skipf("%s not found (%v); install Debian's prometheus package to run this test", name, err)
	}
	return path
}

// remoteKey signs the remote agent's batches.
const remoteKey = "dashboard0test0remote0key0000000001"

// startStack starts the targets, "outpost run" and "outpost agent" as
// processes (this test binary, run as outpost) and returns the base URLs
// they serve /metrics on.
func startStack(t *testing.T) (runURL, agentURL string) {
	t.Helper()
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	t.Cleanup(web.Close)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	resolver := startDNS(t)

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "outpost.yaml")
	// A shape window of 6s closes a bucket every 2s, so that the
	// evaluator's latency quantiles show within seconds; api fails in
	// both regions, so that it is DOWN with an incident open and paged.
	yml := fmt.Sprintf(`version: 1
defaults: {interval: 1s, timeout: 800ms}
regions: [local, remote]
reporting: {heartbeat: 1s, stale_after: 5s}
agents:
  - {region: remote, name: agent-1, key: "${REMOTE_KEY}"}
notifiers:
  - {name: log, console: {}}
checks:
  - id: web
    http: {url: %q, tls: {ca_file: %q}}
    shape: {window: 6s, min_samples: 5, warmup: 4s, seasonality: none}
  - id: api
    notify: [log]
    http: {url: %q}
  - id: zone
    dns: {name: svc.outpost.test., resolvers: [%q], expect: {answers: [192.0.2.1]}}
`, web.URL, ca, api.URL, resolver)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	runURL = startOutpost(t, `msg="outpost running" listen=(\S+)`,
		"run", "-c", cfg, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "run"))
	agentURL = startOutpost(t, `msg="outpost agent running" listen=(\S+)`,
		"agent", "-c", cfg, "--region", "remote", "--name", "agent-1", "--evaluator", runURL,
		"--listen", "127.0.0.1:0", "--spool-dir", filepath.Join(dir, "spool"))
	return runURL, agentURL
}

// startOutpost runs this test binary as outpost with args, and returns
// what listen (a regexp on its log) captures once it is logged.
func startOutpost(t *testing.T, listen string, args ...string) string {
	t.Helper()
	return startOutpostEnv(t, []string{"REMOTE_KEY=" + remoteKey}, listen, args...)
}

// startOutpostEnv is startOutpost with env added to the process's
// environment.
func startOutpostEnv(t *testing.T, env []string, listen string, args ...string) string {
	t.Helper()
	u, _ := startOutpostProc(t, env, listen, args...)
	return u
}

// startOutpostProc is startOutpostEnv that also returns the process, for
// a test that kills it.
func startOutpostProc(t *testing.T, env []string, listen string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), selfRunEnv+"=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	re := regexp.MustCompile(listen)
	found := make(chan string, 1)
	var mu sync.Mutex
	var logs []string
	go func() { // drain the logs so the child never blocks on them
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			mu.Lock()
			if len(logs) < 200 {
				logs = append(logs, line)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("outpost %s logged:\n%s", args[0], strings.Join(logs, "\n"))
			mu.Unlock()
		}
	})
	select {
	case u := <-found:
		return u, cmd
	case <-time.After(30 * time.Second):
		t.Fatalf("outpost %s did not start within 30s", args[0])
		return "", nil
	}
}

// startDNS serves svc.outpost.test. A 192.0.2.1 on a loopback UDP port and
// returns its address.
func startDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		if len(q.Question) == 1 && q.Question[0].Name == "svc.outpost.test." && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("svc.outpost.test. 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	ready := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(ready) }
	go srv.ActivateAndServe()
	<-ready
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// startPrometheusOn starts prometheus with the scrape jobs of
// examples/prometheus/prometheus.yml, pointed at the stack and scraping
// every second, and the rules of outpost-rules.yml evaluated every second;
// it returns Prometheus's base URL once it has scraped both targets.
func startPrometheusOn(t *testing.T, bin, runURL, agentURL string) string {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "outpost-rules.yml")
	if err := os.WriteFile(rules, everySecond(t), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, err := os.ReadFile(promConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", promConfigFile, err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []string{rules}
	targets := map[string]string{"outpost-evaluator": runURL, "outpost-agent": agentURL}
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		job := j.(map[string]any)
		name, _ := job["job_name"].(string)
		u, ok := targets[name]
		if !ok {
			t.Fatalf("%s: scrape job %q: the test knows no target for it", promConfigFile, name)
		}
		delete(targets, name)
		job["static_configs"] = []any{map[string]any{"targets": []string{strings.TrimPrefix(u, "http://")}}}
	}
	if len(targets) > 0 {
		t.Fatalf("%s: no scrape job for %v", promConfigFile, targets)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := runPrometheus(t, bin, out)
	clocktest.WaitFor(t, 30*time.Second, "prometheus to scrape both targets", func() bool {
		n, err := promResult(base, `up == 1`)
		return err == nil && n == 2
	})
	return base
}

// everySecond returns the rules file with every group evaluated at the
// global interval (1s here): its groups' own intervals (1m) would hold the
// first evaluation of a recording rule back by up to a minute.
func everySecond(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	groups, _ := f["groups"].([]any)
	for _, g := range groups {
		delete(g.(map[string]any), "interval")
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// notMapped are the blackbox_exporter series Outpost does not export: the
// mixin's panels on them stay empty (docs/deploy.md, "Blackbox
// dashboards", lists them).
var notMapped = []string{"probe_http_ssl", "probe_http_version", "probe_tls_version_info", "probe_http_redirects", "probe_icmp_duration_seconds"}

func testBlackboxMixin(t *testing.T, prom string, deadline time.Time) {
	vars := strings.NewReplacer("$job", "blackbox-exporter", "$instance", "web")
	var missing []string
	for _, q := range blackboxMixinQueries {
		expr := vars.Replace(q.expr)
		if _, err := promResult(prom, expr); err != nil {
			t.Errorf("%s: %s\n  %v", q.where, expr, err)
			continue
		}
		if slices.ContainsFunc(metricNames(expr), func(n string) bool { return slices.Contains(notMapped, n) }) {
			if n, _ := promResult(prom, expr); n > 0 {
				t.Errorf("%s: %s returns data: Outpost exports it now; update notMapped and docs/deploy.md", q.where, expr)
			}
			missing = append(missing, q.where)
			continue
		}
		if err := waitForData(prom, expr, deadline); err != nil {
			t.Errorf("%s: %s\n  %v", q.where, expr, err)
		}
	}
	t.Logf("mixin queries without data, as documented: %s", strings.Join(missing, "; "))
	// Outpost's own labels survive the recipe: the series of one check
	// from two regions stay apart, and the agent that served them is kept.
	for _, expr := range []string{
		`count(probe_success{job="blackbox-exporter", instance="web", check="web", outpost_instance!=""}) == 2`,
		`count(probe_success{job="blackbox-exporter"}) == 6`,
	} {
		if err := waitForData(prom, expr, deadline); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
}

// TestDashboardModel checks what Grafana does not say on import: every
// panel and query reads the DS_PROMETHEUS variable, ids are unique, panels
// fit the 24-column grid without overlapping, and the variables the
// queries use exist.
func TestDashboardModel(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type ds struct{ Type, UID string }
	type panel struct {
		ID         int `json:"id"`
		Type       string
		Title      string
		Datasource *ds
		GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
		Targets    []struct {
			Datasource *ds
			Expr       string
		}
	}
	var d struct {
		SchemaVersion int `json:"schemaVersion"`
		UID           string
		Panels        []panel
		Templating    struct {
			List []struct{ Name string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion != 39 || d.UID == "" {
		t.Errorf("schemaVersion %d, uid %q; want 39 and a uid", d.SchemaVersion, d.UID)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"DS_PROMETHEUS", "check", "region", "quantile", "window"} {
		if !vars[v] {
			t.Errorf("no variable %q", v)
		}
	}
	wantDS := ds{Type: "prometheus", UID: "${DS_PROMETHEUS}"}
	ids := map[int]string{}
	used := map[[2]int]string{}
	for _, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at (%d, %d)", other, p.Title, x, y)
				}
				used[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != wantDS {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, wantDS)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || *tg.Datasource != wantDS {
				t.Errorf("panel %q: a target's datasource is %+v, want %+v", p.Title, tg.Datasource, wantDS)
			}
			for _, m := range regexp.MustCompile(`\$(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
					t.Errorf("panel %q: %s is no variable of the dashboard", p.Title, m[0])
				}
			}
		}
	}
}
