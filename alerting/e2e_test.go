package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// These tests run real agents (scheduler, probers, reporter with its
// spool) against a real evaluator over loopback HTTP. One fake clock drives
// every timer, so simulated minutes pass in real milliseconds and nothing
// depends on the machine's speed: the tests advance the clock in small steps
// and wait for the state they expect, failing after a generous real-time
// bound rather than hanging.

var e2eKeys = map[string]string{"us-east": "e2e-key-us-east-0001", "eu-west": "e2e-key-eu-west-0002", "ap-south": "e2e-key-ap-south-0003"}

// e2eEnv is the environment the e2e configurations load in: each region's
// agent key (K_US, K_EU, K_AP), the PagerDuty routing key (PD_KEY), and
// extra, name and value pairs.
func e2eEnv(extra ...string) checks.LookupEnv {
	env := map[string]string{"K_US": e2eKeys["us-east"], "K_EU": e2eKeys["eu-west"], "K_AP": e2eKeys["ap-south"], "PD_KEY": e2eRoutingKey}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func e2eConfig(t *testing.T, target string) *checks.Config {
	return e2eConfigInterval(t, target, "2s")
}

func e2eConfigInterval(t *testing.T, target, interval string) *checks.Config {
	t.Helper()
	yaml := fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms, batch_size: 50}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
defaults: {interval: %[2]s, timeout: 1s}
checks:
  - id: web
    http: {url: "http://%[1]s/", expect: {body_contains: ok}}
  - id: port
    tcp: {address: "%[1]s"}
`, target, interval)
	env := e2eEnv()
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(yaml), env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// e2eAgent is one region's agent: scheduler, probers and reporter.
type e2eAgent struct {
	region string
	cancel context.CancelFunc
	done   sync.WaitGroup
	// submitted records every result handed to the reporter, in order.
	mu        sync.Mutex
	submitted []wire.Result
}

func startAgent(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, region, evaluatorURL, spoolDir string) *e2eAgent {
	return startAgentWith(t, cfg, clk, region, []string{evaluatorURL}, spoolDir, probes.Options{})
}

// startAgentWith starts an agent reporting to several evaluators, with
// prober options of its own (a region's own resolv.conf, say).
func startAgentWith(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, region string, evaluatorURLs []string, spoolDir string, opts probes.Options) *e2eAgent {
	t.Helper()
	a := &e2eAgent{region: region}
	rep, err := agent.NewReporter(agent.ReporterOptions{
		Evaluators: evaluatorURLs, Key: []byte(e2eKeys[region]), Region: region, Agent: "agent-" + region,
		ConfigDigest: cfg.Digest, Reporting: cfg.Reporting, SpoolDir: spoolDir, Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := agent.NewScheduler(clk, agent.AutoWorkers, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	opts.Clock = clk
	jobs, err := agent.Jobs(cfg, region, opts, func(r wire.Result) {
		a.mu.Lock()
		a.submitted = append(a.submitted, r)
		a.mu.Unlock()
		rep.Submit(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	sched.Set(jobs)
	poller := &agent.ConfirmPoller{Evaluators: evaluatorURLs, Key: []byte(e2eKeys[region]), Region: region, Agent: "agent-" + region, Clock: clk,
		RunNow: func(req wire.ConfirmRequest) {
			for _, id := range req.Checks {
				sched.RunNow(agent.JobKey(id, region), req.RunsOf(id))
			}
		}}
	probeCtx, stopProbes := context.WithCancel(context.Background())
	reportCtx, stopReport := context.WithCancel(context.Background())
	probing := make(chan struct{})
	a.done.Add(3)
	go func() { defer a.done.Done(); poller.Run(probeCtx) }()
	go func() { defer a.done.Done(); defer close(probing); sched.Run(probeCtx) }()
	go func() { defer a.done.Done(); rep.Run(reportCtx) }()
	a.cancel = func() {
		stopProbes()
		<-probing // every result is submitted before the reporter stops
		stopReport()
	}
	t.Cleanup(a.stop)
	return a
}

func (a *e2eAgent) stop() { a.cancel(); a.done.Wait() }

func (a *e2eAgent) results() []wire.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.submitted)
}

// advanceUntil moves the clock in steps of step until cond holds. After
// each step it waits until every goroutine has parked again, so the work the
// step set off (probes, batches over loopback, decisions) is done before time
// moves on, however loaded the machine. It fails after limit of simulated
// time, or when the goroutines never settle.
func advanceUntil(t *testing.T, clk *clocktest.Fake, step, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for simulated := time.Duration(0); simulated <= limit; simulated += step {
		clocktest.WaitIdle(t, settleLimit)
		if cond() {
			return simulated
		}
		clk.Advance(step)
	}
	t.Fatalf("%s: not reached within %s of simulated time", what, limit)
	return 0
}

// settleLimit bounds the real time that goroutines may take to park after
// a step of the fake clock: generous, since a loaded machine is slow, and
// only ever reached by a bug.
const settleLimit = 30 * time.Second

func stateOf(ev *Evaluator, region string) decide.RegionState {
	for _, r := range ev.Snapshot().Regions {
		if r.Name == region {
			return r.State
		}
	}
	return ""
}

// allRegionsReported reports whether every check has a result from every
// region.
func allRegionsReported(ev *Evaluator, cfg *checks.Config) bool {
	for _, c := range cfg.Checks {
		for _, r := range c.Regions {
			w, ok := ev.Window(c.ID, r)
			if !ok || w.Last == nil {
				return false
			}
		}
	}
	return true
}

func startTarget(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestEndToEndThreeRegions: every check's result from every region
// arrives; a stopped agent's region turns STALE within the bound and the
// meta alert goes out once; a restarted agent clears it.
func TestEndToEndThreeRegions(t *testing.T) {
	cfg := e2eConfig(t, startTarget(t))
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	e := startEvaluator(t, cfg, clk)
	ev, notes := e.ev, e.notes

	spools := map[string]string{}
	agents := map[string]*e2eAgent{}
	for _, region := range cfg.Regions {
		spools[region] = t.TempDir()
		agents[region] = startAgent(t, cfg, clk, region, e.url, spools[region])
	}
	advanceUntil(t, clk, 100*time.Millisecond, 30*time.Second, "every check from every region", func() bool {
		return allRegionsReported(ev, cfg)
	})
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "all regions live", func() bool {
		return stateOf(ev, "us-east") == decide.RegionLive && stateOf(ev, "eu-west") == decide.RegionLive && stateOf(ev, "ap-south") == decide.RegionLive
	})
	for _, c := range cfg.Checks {
		for _, r := range cfg.Regions {
			if w, _ := ev.Window(c.ID, r); w.Last == nil || !w.Last.OK {
				t.Errorf("%s from %s: last result %+v, want a pass", c.ID, r, w.Last)
			}
		}
	}

	agents["ap-south"].stop()
	took := advanceUntil(t, clk, 100*time.Millisecond, 20*time.Second, "ap-south stale", func() bool {
		return stateOf(ev, "ap-south") == decide.RegionStale
	})
	// The bound: stale_after, plus up to one heartbeat the agent had just
	// sent, plus the one-second liveness tick.
	if bound := cfg.Reporting.StaleAfter + cfg.Reporting.Heartbeat + time.Second; took > bound {
		t.Errorf("ap-south went stale %s after its agent stopped, want within %s", took, bound)
	}
	if stateOf(ev, "us-east") != decide.RegionLive || stateOf(ev, "eu-west") != decide.RegionLive {
		t.Error("a live region was marked stale")
	}
	// The meta page waits meta.for (two heartbeats) after the transition.
	staleAt := clk.Now()
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "the meta page", func() bool { return len(notesOf(notes, notify.KindMonitoring)) > 0 })
	if waited := clk.Now().Sub(staleAt); waited < cfg.Meta.For-200*time.Millisecond {
		t.Errorf("meta page %s after ap-south went stale, want meta.for (%s)", waited, cfg.Meta.For)
	}
	stale := notesOf(notes, notify.KindMonitoring)
	if len(stale) != 1 || stale[0].Action != notify.ActionTrigger || !strings.HasPrefix(stale[0].Summary, "1/3 regions silent: ap-south since ") {
		t.Fatalf("meta notifications = %+v, want one trigger for ap-south", stale)
	}

	agents["ap-south"] = startAgent(t, cfg, clk, "ap-south", e.url, spools["ap-south"])
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "ap-south live again", func() bool {
		return stateOf(ev, "ap-south") == decide.RegionLive
	})
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "the meta page resolved", func() bool {
		n := notesOf(notes, notify.KindMonitoring)
		return n[len(n)-1].Action == notify.ActionResolve
	})
	if n := len(notesOf(notes, notify.KindMonitoring)); n != 2 {
		t.Errorf("%d meta notifications in all, want a trigger and its resolve", n)
	}
}

func notesOf(c *notifytest.Recorder, kind string) []notify.Notification {
	var out []notify.Notification
	for _, n := range c.Delivered() {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// appliedLog records the results of every batch the evaluator applied, in
// the order it applied them.
type appliedLog struct {
	mu      sync.Mutex
	results []wire.Result
}

func (l *appliedLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code == http.StatusOK && strings.TrimSpace(rec.Body.String()) == "ok" {
			var b wire.Batch
			if json.Unmarshal(body, &b) == nil {
				l.mu.Lock()
				l.results = append(l.results, b.Results...)
				l.mu.Unlock()
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

func (l *appliedLog) all() []wire.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results)
}

// TestEndToEndEvaluatorOutage cuts the path to the evaluator with an
// in-process Toxiproxy for a stretch of simulated minutes: every result
// produced meanwhile must arrive once, in order, after the path is back.
func TestEndToEndEvaluatorOutage(t *testing.T) {
	cfg := e2eConfig(t, startTarget(t))
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev, err := New(cfg, Options{Clock: clk, Notifier: &notifytest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	applied := &appliedLog{}
	srv := httptest.NewServer(applied.wrap(ev.Handler()))
	t.Cleanup(srv.Close)

	tox := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(tox, "evaluator", "127.0.0.1:0", srv.Listener.Addr().String())
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)

	agent := startAgent(t, cfg, clk, "us-east", "http://"+proxy.Listen, t.TempDir())
	advanceUntil(t, clk, 100*time.Millisecond, 20*time.Second, "first results delivered", func() bool { return len(applied.all()) >= 2 })

	proxy.Stop() // the evaluator is unreachable: connections are refused
	before := len(agent.results())
	advanceUntil(t, clk, 500*time.Millisecond, 2*time.Minute, "results produced during the outage", func() bool {
		return len(agent.results()) >= before+40
	})
	if err := proxy.Start(); err != nil { // same address: the path is back
		t.Fatal(err)
	}
	produced := len(agent.results())
	advanceUntil(t, clk, 250*time.Millisecond, 5*time.Minute, "every result delivered", func() bool {
		return len(applied.all()) >= produced
	})
	agent.stop()

	// The reporter numbers results as it takes them, so applied sequence
	// numbers must rise strictly (in order, none twice), and every result
	// produced must be among them exactly once, by check and start time.
	sent := agent.results()
	got := applied.all()
	type key struct {
		check string
		at    time.Time
	}
	seen := map[key]int{}
	for i, r := range got {
		seen[key{r.Check, r.Time}]++
		if i > 0 && r.Seq <= got[i-1].Seq {
			t.Fatalf("result seq %d applied after %d: out of order or twice", r.Seq, got[i-1].Seq)
		}
	}
	for _, r := range sent[:produced] {
		if n := seen[key{r.Check, r.Time}]; n != 1 {
			t.Fatalf("result of %s started at %s applied %d times, want exactly once", r.Check, r.Time.Format(time.TimeOnly), n)
		}
	}
	if len(got) < produced {
		t.Fatalf("%d results applied, %d produced", len(got), produced)
	}
}

// TestEndToEndConfirmationShortensTimeToQuorum: with a one-minute interval
// and the default rule of two consecutive failures, a target that goes down
// is seen by the first region at its phase; every region is asked at once
// for as many runs as its rule still needs (the first one run more, the
// others two), instead of waiting for their own phases, up to two minutes
// later: the page goes out within the probe timeout plus 2s.
func TestEndToEndConfirmationShortensTimeToQuorum(t *testing.T) {
	var down atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(target.Close)
	cfg := e2eConfigInterval(t, target.Listener.Addr().String(), "60s")
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	e := startEvaluator(t, cfg, clk)
	ev := e.ev
	for _, region := range cfg.Regions {
		startAgent(t, cfg, clk, region, e.url, t.TempDir())
	}
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "every region passing", func() bool {
		return allRegionsReported(ev, cfg) && stateOf(ev, "ap-south") == decide.RegionLive
	})

	down.Store(true)
	failing := func() (n int, first time.Time) {
		for _, r := range cfg.Regions {
			if w, ok := ev.Window("web", r); ok && w.Last != nil && !w.Last.OK {
				n++
				if first.IsZero() || w.Last.Time.Before(first) {
					first = w.Last.Time
				}
			}
		}
		return n, first
	}
	advanceUntil(t, clk, 100*time.Millisecond, 2*time.Minute, "a first region failing", func() bool { n, _ := failing(); return n >= 1 })
	_, first := failing()
	advanceUntil(t, clk, 100*time.Millisecond, 30*time.Second, "every region failing", func() bool { n, _ := failing(); return n == 3 })
	var confirmed int
	var latest time.Time
	for _, r := range cfg.Regions {
		w, _ := ev.Window("web", r)
		if w.Last.Confirm {
			confirmed++
		}
		if w.Last.Time.After(latest) {
			latest = w.Last.Time
		}
	}
	if confirmed != 3 {
		t.Errorf("%d regions' latest failures were confirmation runs, want all 3 (the first region's second run too)", confirmed)
	}
	// The goal: quorum within about one probe timeout plus 2s of the first
	// failing probe, not the up to 60s until the other regions' phases.
	if gap := latest.Sub(first); gap > time.Second+2*time.Second {
		t.Errorf("last region failed %s after the first, want within timeout + 2s", gap)
	}
	// And the page itself: the rule is two consecutive failures, so each
	// region was asked for as many runs as it needed, back to back.
	advanceUntil(t, clk, 100*time.Millisecond, 30*time.Second, "the DOWN page", func() bool { return len(e.pages(checks.RouteCritical)) > 0 })
	page := e.pages(checks.RouteCritical)[0]
	if gap := page.Time.Sub(first); gap > time.Second+2*time.Second {
		t.Errorf("paged %s after the first failing probe, want within timeout + 2s (failure: {consecutive: 2}, interval 60s)", gap)
	}
	for _, r := range cfg.Regions {
		if w, _ := ev.Window("web", r); w.Consecutive < 2 {
			t.Errorf("%s: %d consecutive failures at the page, want 2", r, w.Consecutive)
		}
	}
}
