package alerting

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// e2eEvaluator is one evaluator behind a loopback HTTP server, with the
// notifications it sent.
type e2eEvaluator struct {
	ev    *Evaluator
	url   string
	notes *notifytest.Recorder
}

func startEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake) *e2eEvaluator {
	t.Helper()
	notes := &notifytest.Recorder{}
	ev, url := serveEvaluator(t, cfg, clk, notes)
	return &e2eEvaluator{ev: ev, url: url, notes: notes}
}

// serveEvaluator runs an evaluator that sends to n, behind a loopback HTTP
// server, until the test ends.
func serveEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, n notify.Notifier) (*Evaluator, string) {
	t.Helper()
	ev, err := New(cfg, Options{Clock: clk, Notifier: n, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev, serveHandler(t, ev)
}

// serveHandler runs ev behind a loopback HTTP server until the test ends
// and returns the server's URL.
func serveHandler(t *testing.T, ev *Evaluator) string {
	t.Helper()
	srv := httptest.NewServer(ev.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.URL
}

// pages returns the check notifications on the given route.
func (e *e2eEvaluator) pages(route string) []notify.Notification {
	var out []notify.Notification
	for _, n := range e.notes.Delivered() {
		if strings.HasPrefix(n.Kind, "check_") && n.Details["route"] == route {
			out = append(out, n)
		}
	}
	return out
}

// loadE2E loads the three-region test configuration with checksYAML.
func loadE2E(t *testing.T, checksYAML string) *checks.Config {
	t.Helper()
	return regionConfig(t, "us-east", checksYAML)
}

// downTarget serves "ok" until down is set, then 503s.
func downTarget(t *testing.T) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	var down atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(target.Close)
	return target, &down
}

// TestEndToEndQuorumPagesOnceFromEachEvaluator: three regions, two
// evaluators. A target down from every region makes each evaluator send
// exactly one critical trigger, with the same dedup key, so PagerDuty folds
// them into one incident; recovery sends one resolve each.
func TestEndToEndQuorumPagesOnceFromEachEvaluator(t *testing.T) {
	target, down := downTarget(t)
	cfg := loadE2E(t, fmt.Sprintf(`checks:
  - id: web-home
    interval: 5s
    timeout: 1s
    http: {url: "%s/"}
`, target.URL))
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evA, evB := startEvaluator(t, cfg, clk), startEvaluator(t, cfg, clk)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{evA.url, evB.url}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "every region passing at both evaluators", func() bool {
		return allRegionsReported(evA.ev, cfg) && allRegionsReported(evB.ev, cfg)
	})

	down.Store(true)
	advanceUntil(t, clk, 100*time.Millisecond, time.Minute, "a page from each evaluator", func() bool {
		return len(evA.pages(checks.RouteCritical)) == 1 && len(evB.pages(checks.RouteCritical)) == 1
	})
	a, b := evA.pages(checks.RouteCritical)[0], evB.pages(checks.RouteCritical)[0]
	if a.Key != b.Key || a.Details["action"] != "trigger" || b.Details["action"] != "trigger" {
		t.Fatalf("triggers differ: %+v / %+v", a, b)
	}
	// The page goes out as soon as a quorum (2 of 3) fails, with the
	// evidence of every region that did.
	if !strings.HasPrefix(a.Summary, "web-home DOWN from 2/3 regions") && !strings.HasPrefix(a.Summary, "web-home DOWN from 3/3 regions") {
		t.Errorf("summary = %q", a.Summary)
	}
	failing := 0
	for _, region := range cfg.Regions {
		if ev := a.Details["region."+region]; strings.HasPrefix(ev, "FAILING") {
			failing++
			if !strings.Contains(ev, "status 503, want 2xx") || !strings.Contains(ev, "connected 127.0.0.1:") {
				t.Errorf("evidence for %s = %q, want the status and the connected address", region, ev)
			}
		}
	}
	if failing < 2 {
		t.Errorf("the page shows %d failing regions, want the quorum of 2", failing)
	}
	// It stays one page while the outage lasts.
	advanceUntil(t, clk, 500*time.Millisecond, 30*time.Second, "30s more of the outage", func() bool { return clk.Now().Sub(a.Time) >= 30*time.Second })
	if n := len(evA.pages(checks.RouteCritical)); n != 1 {
		t.Fatalf("%d critical notifications during one outage, want 1", n)
	}

	down.Store(false)
	advanceUntil(t, clk, 100*time.Millisecond, time.Minute, "a resolve from each evaluator", func() bool {
		return len(evA.pages(checks.RouteCritical)) == 2 && len(evB.pages(checks.RouteCritical)) == 2
	})
	for _, e := range []*e2eEvaluator{evA, evB} {
		r := e.pages(checks.RouteCritical)[1]
		if r.Details["action"] != "resolve" || r.Key != a.Key {
			t.Errorf("second notification = %+v, want the resolve of %s", r, a.Key)
		}
	}
}

// TestEndToEndOneRegionFailingDoesNotPage: a target that refuses one
// region's connections makes that region fail; the check is DEGRADED, a
// warning goes out, and nobody is paged.
func TestEndToEndOneRegionFailingDoesNotPage(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Region") == "ap-south" {
			http.Error(w, "blocked by a regional firewall", http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(target.Close)
	// Each agent sends its region's name, as a regional path difference
	// would show; the value comes from the environment at load, so each
	// agent loads its own copy of the configuration.
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evCfg := loadRegionConfig(t, target.URL, "us-east")
	ev := startEvaluator(t, evCfg, clk)
	for _, region := range evCfg.Regions {
		startAgentWith(t, loadRegionConfig(t, target.URL, region), clk, region, []string{ev.url}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "a DEGRADED warning", func() bool {
		return len(ev.pages(checks.RouteWarning)) >= 1
	})
	w := ev.pages(checks.RouteWarning)[0]
	if w.Kind != "check_degraded" || !strings.Contains(w.Details["region.ap-south"], "status 403") {
		t.Errorf("warning = %+v", w)
	}
	advanceUntil(t, clk, time.Second, time.Minute, "a minute more", func() bool { return clk.Now().Sub(w.Time) >= time.Minute })
	if p := ev.pages(checks.RouteCritical); len(p) != 0 {
		t.Fatalf("one failing region paged: %+v", p)
	}
}

func loadRegionConfig(t *testing.T, target, region string) *checks.Config {
	t.Helper()
	env := e2eEnv("REGION", region)
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
checks:
  - id: web-home
    interval: 5s
    timeout: 1s
    http: {url: "%s/", headers: {X-Region: "${REGION}"}}
`, target)), env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// geoDNS serves www.example.test from one loopback address per region, like
// a GeoDNS provider's resolvers; each can be pointed at a load balancer.
type geoDNS struct {
	mu      sync.Mutex
	answers map[string]string // region -> address for www
}

func (g *geoDNS) set(region, addr string) {
	g.mu.Lock()
	g.answers[region] = addr
	g.mu.Unlock()
}

func (g *geoDNS) handler(region string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		q := req.Question[0]
		if strings.EqualFold(q.Name, "www.example.test.") && q.Qtype == dns.TypeA {
			g.mu.Lock()
			rr, _ := dns.NewRR("www.example.test. 60 IN A " + g.answers[region])
			g.mu.Unlock()
			resp.Answer = append(resp.Answer, rr)
		}
		w.WriteMsg(resp)
	}
}

// startRegionResolver serves h on ip:53 (resolv.conf cannot name a port)
// and returns a resolv.conf naming it.
func startRegionResolver(t *testing.T, ip string, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":53")
	if err != nil {
		t.Skipf("cannot bind %s:53 (%v): the per-region resolver test needs root", ip, err)
	}
	mux := dns.NewServeMux()
	mux.Handle(".", h)
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+ip+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestEndToEndWebNameOnAPILoadBalancer is SCENARIOS.md row 5 end to end: a
// stale failover points www at the API tier's load balancer. In one region
// that is a warning (DEGRADED, and the regions disagree); in two of three
// it pages, with each region's answers in the page.
func TestEndToEndWebNameOnAPILoadBalancer(t *testing.T) {
	const web, api = "203.0.113.10", "198.51.100.7"
	g := &geoDNS{answers: map[string]string{"us-east": web, "eu-west": web, "ap-south": web}}
	conf := map[string]string{}
	for i, region := range []string{"us-east", "eu-west", "ap-south"} {
		conf[region] = startRegionResolver(t, fmt.Sprintf("127.0.0.%d", 21+i), g.handler(region))
	}
	cfg := loadE2E(t, fmt.Sprintf(`checks:
  - id: www-a
    interval: 5s
    timeout: 1s
    dns:
      name: www.example.test
      expect: {answers: [%s], forbid: [%s]}
`, web, api))
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev := startEvaluator(t, cfg, clk)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{ev.url}, t.TempDir(), probes.Options{ResolvConf: conf[region]})
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "every region passing", func() bool { return allRegionsReported(ev.ev, cfg) })

	g.set("ap-south", api)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "a warning for one region", func() bool { return len(ev.pages(checks.RouteWarning)) >= 1 })
	if p := ev.pages(checks.RouteCritical); len(p) != 0 {
		t.Fatalf("one region paged: %+v", p)
	}
	warned := ev.pages(checks.RouteWarning)
	var sawDisagreement bool
	for _, n := range warned {
		if n.Kind == "check_disagreement" || strings.Contains(n.Details["disagreement"], api) {
			sawDisagreement = true
		}
	}
	if !sawDisagreement {
		t.Errorf("no disagreement finding among the warnings: %+v", warned)
	}

	g.set("eu-west", api)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "a page for two regions", func() bool { return len(ev.pages(checks.RouteCritical)) >= 1 })
	page := ev.pages(checks.RouteCritical)[0]
	if page.Kind != "check_down" || !strings.HasPrefix(page.Summary, "www-a DOWN from 2/3 regions") {
		t.Errorf("page = %+v", page)
	}
	for region, want := range map[string]string{"us-east": "[" + web + "]", "eu-west": "[" + api + "]", "ap-south": "[" + api + "]"} {
		if got := page.Details["region."+region]; !strings.Contains(got, "; system ") || !strings.Contains(got, "="+want) {
			t.Errorf("evidence for %s = %q, want its answers %s", region, got, want)
		}
	}
	if !strings.Contains(page.Details["region.eu-west"], api+" is forbidden") {
		t.Errorf("eu-west evidence lacks the reason: %q", page.Details["region.eu-west"])
	}
}

// TestRestartKeepsFailingRegions: an evaluator restarted on the same data
// dir while a check is DOWN keeps the incident open through the ticks that
// come before any new result, and through a first new failure that alone
// would not cross the failure rule; it resolves only on recovery.
func TestRestartKeepsFailingRegions(t *testing.T) {
	cfg := regionConfig(t, "us-east", `checks:
  - id: web
    failure: {consecutive: 2}
    http: {url: "https://example.test/"}
`)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	notes := &notifytest.Recorder{}
	var seq uint64
	feed := func(ev *Evaluator, ok bool) {
		seq++
		for _, region := range cfg.Regions {
			r := wire.Result{V: 1, Check: "web", Type: "http", Region: region, Time: clk.Now(), OK: ok}
			if !ok {
				r.Reason = "status 503, want 2xx"
			}
			if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: seq, Created: clk.Now(), Results: []wire.Result{r}}); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(30 * time.Second)
		ev.tick(context.Background(), clk.Now())
	}
	first, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	feed(first, false)
	feed(first, false)
	if got := summariesOf(notes); len(got) != 1 || !strings.HasPrefix(got[0], "trigger") {
		t.Fatalf("before the restart: %v", got)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	for i := 0; i < 5; i++ { // ticks with no results yet
		clk.Advance(time.Second)
		second.tick(context.Background(), clk.Now())
	}
	feed(second, false) // one failure: not enough on its own
	if got := summariesOf(notes); len(got) != 1 {
		t.Fatalf("after the restart: %v, want the incident still open and unpaged again", got)
	}
	feed(second, true)
	feed(second, true)
	if got := summariesOf(notes); len(got) != 2 || !strings.HasPrefix(got[1], "resolve") {
		t.Fatalf("after recovery: %v, want the resolve", got)
	}
}

func summariesOf(c *notifytest.Recorder) []string {
	var out []string
	for _, n := range c.Delivered() {
		if n.Kind == "check_down" {
			out = append(out, n.Action+" "+n.Summary)
		}
	}
	return out
}
