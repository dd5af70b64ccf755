package alerting

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// startBusAgent runs the real agent of region on the bus: the scheduler
// probing cfg's checks, the reporter publishing to JetStream, and the
// confirmations taken from outpost.confirm.<region>.
func startBusAgent(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, url, region string) {
	t.Helper()
	nc, js := dialBusAs(t, &checks.NATSBus{URL: url}, "outpost-agent-"+region)
	rep, err := agent.NewReporter(agent.ReporterOptions{
		Bus: &agent.BusOptions{JetStream: js, Stream: cfg.Bus.NATS.Stream, Shards: cfg.Bus.NATS.Shards},
		Key: []byte(e2eKeys[region]), Region: region, Agent: "agent-" + region,
		ConfigDigest: cfg.Digest, Reporting: cfg.Reporting, SpoolDir: t.TempDir(), Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := agent.NewScheduler(clk, agent.AutoWorkers, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := agent.Jobs(cfg, region, probes.Options{Clock: clk}, rep.Submit)
	if err != nil {
		t.Fatal(err)
	}
	sched.Set(jobs)
	confirms := &agent.BusConfirmer{Conn: nc, Region: region, Clock: clk, RunNow: func(req wire.ConfirmRequest) {
		for _, id := range req.Checks {
			sched.RunNow(agent.JobKey(id, region), req.RunsOf(id))
		}
	}}
	probeCtx, stopProbes := context.WithCancel(context.Background())
	reportCtx, stopReport := context.WithCancel(context.Background())
	probing, confirming, reporting := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { defer close(confirming); confirms.Run(probeCtx) }()
	go func() { defer close(probing); sched.Run(probeCtx) }()
	go func() { defer close(reporting); rep.Run(reportCtx) }()
	t.Cleanup(func() {
		stopProbes()
		<-probing
		<-confirming
		stopReport()
		<-reporting
	})
}

// TestBusEndToEndRealAgents: the real agents of three regions probe a
// target and publish to JetStream; an HA pair of evaluators consumes.
// The target down everywhere makes one PagerDuty incident, triggered by
// each of the pair under one dedup key, and its recovery resolves it.
func TestBusEndToEndRealAgents(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	target, down := downTarget(t)
	env := e2eEnv()
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: %q}, routes: [critical, meta]}
bus:
  nats: {url: %q, max_bytes: 256MiB}
  evaluators:
    - {name: a1, shards: "0-63"}
    - {name: a2, shards: "0-63"}
checks:
  - id: web-home
    interval: 5s
    timeout: 1s
    notify: [oncall]
    http: {url: "%s/"}
`, pd.URL(), srv.URL, target.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	// The agents sign on this clock and the server stores on the real
	// one: they must agree within wire.MaxClockSkew, as in production.
	clk := clocktest.New(time.Now().UTC().Truncate(time.Second))
	a1 := startBusEvaluator(t, cfg, clk, srv.URL, "a1")
	a2 := startBusEvaluator(t, cfg, clk, srv.URL, "a2")
	for _, r := range cfg.Regions {
		startBusAgent(t, cfg, clk, srv.URL, r)
	}
	// Each step waits until every goroutine has parked again: the
	// agents' probes and publishes, the server's deliveries, the
	// evaluators' ingest and deliveries to PagerDuty.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		advanceUntil(t, clk, 250*time.Millisecond, 5*time.Minute, what, cond)
	}
	waitFor("both evaluators hearing every region", func() bool {
		return allRegionsReported(a1.ev, cfg) && allRegionsReported(a2.ev, cfg)
	})
	waitFor("every region LIVE on both", func() bool {
		for _, r := range cfg.Regions {
			if stateOf(a1.ev, r) != decide.RegionLive || stateOf(a2.ev, r) != decide.RegionLive {
				return false
			}
		}
		return true
	})
	if n := pd.RequestCount(); n != 0 {
		t.Fatalf("%d PagerDuty requests while everything passed", n)
	}
	down.Store(true)
	waitFor("a trigger from each of the pair", func() bool { return len(triggersBySource(pd, "web-home", "trigger")) >= 2 })
	if got := triggersBySource(pd, "web-home", "trigger"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("triggers from %v, want a1 and a2", got)
	}
	down.Store(false)
	waitFor("a resolve from each of the pair", func() bool { return len(triggersBySource(pd, "web-home", "resolve")) >= 2 })
	evs := pd.Events()
	for _, e := range evs {
		if e.DedupKey != evs[0].DedupKey {
			t.Errorf("events under two dedup keys: %+v", evs)
		}
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Errorf("invalid events: %v", bad)
	}
	for _, be := range []*busEvaluator{a1, a2} {
		for _, o := range []string{busUnauthorized, busReplay, busInvalid, busTooLarge} {
			if n := be.messages(o); n != 0 {
				t.Errorf("%s refused %d of the real agents' messages as %s", be.name, n, o)
			}
		}
	}
}
