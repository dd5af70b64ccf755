package alerting

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

const e2eRoutingKey = "e2e0routing0key00000000000000042"

// startPagingEvaluator runs an evaluator whose notifications go through the
// real delivery pipeline (outbox, dedup, retries) to the configured
// notifiers.
func startPagingEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake) (*Evaluator, string) {
	t.Helper()
	// The pipeline's cleanup is registered first, so it runs after the
	// evaluator has stopped.
	return serveEvaluator(t, cfg, clk, startPipeline(t, cfg, clk))
}

// TestEndToEndPagerDuty: three agents, two evaluators, a fake PagerDuty
// that validates every event and is down (500) when the outage starts. The
// target down from every region makes exactly one incident: one trigger
// from each evaluator with the same dedup key, delivered once PagerDuty is
// back, carrying every region's evidence; recovery resolves it once from
// each.
func TestEndToEndPagerDuty(t *testing.T) {
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
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: "%s"}, routes: [critical, meta]}
checks:
  - id: web-home
    interval: 5s
    timeout: 1s
    notify: [oncall]
    http: {url: "%s/"}
`, pd.URL(), target.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evA, urlA := startPagingEvaluator(t, cfg, clk)
	evB, urlB := startPagingEvaluator(t, cfg, clk)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{urlA, urlB}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "both evaluators hearing every region", func() bool {
		return allRegionsReported(evA, cfg) && allRegionsReported(evB, cfg)
	})
	if n := pd.RequestCount(); n != 0 {
		t.Fatalf("%d PagerDuty requests while everything passed", n)
	}

	pd.SetAlways(http.StatusInternalServerError) // PagerDuty has its own bad minute
	down.Store(true)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "attempts refused by PagerDuty", func() bool { return pd.RequestCount() >= 2 })
	advanceUntil(t, clk, time.Second, 2*time.Minute, "a minute of PagerDuty errors", func() bool { return pd.RequestCount() >= 4 })
	if n := len(pd.Events()); n != 0 {
		t.Fatalf("%d events accepted while PagerDuty answered 500", n)
	}
	pd.SetAlways(0)
	advanceUntil(t, clk, time.Second, 10*time.Minute, "the triggers delivered after PagerDuty recovered", func() bool { return len(pd.Events()) >= 2 })
	delivered := clk.Now()
	advanceUntil(t, clk, time.Second, 2*time.Minute, "a minute more of the outage", func() bool { return clk.Now().Sub(delivered) >= time.Minute })

	evs := pd.Events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want one trigger from each evaluator: %+v", len(evs), evs)
	}
	for _, e := range evs {
		if e.EventAction != "trigger" || e.DedupKey != evs[0].DedupKey || e.RoutingKey != e2eRoutingKey {
			t.Fatalf("events differ: %+v", evs)
		}
		if e.Payload == nil || e.Payload.Severity != "critical" || !strings.HasPrefix(e.Payload.Summary, "web-home DOWN from ") {
			t.Fatalf("payload = %+v", e.Payload)
		}
		details := string(e.Payload.CustomDetails)
		if !strings.Contains(details, "status 503, want 2xx") || !strings.Contains(details, "127.0.0.1") {
			t.Errorf("custom_details lack the regions' evidence: %s", details)
		}
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Fatalf("invalid events sent: %v", bad)
	}

	down.Store(false)
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "a resolve from each evaluator", func() bool { return len(pd.Events()) >= 4 })
	evs = pd.Events()
	for _, e := range evs[2:] {
		if e.EventAction != "resolve" || e.DedupKey != evs[0].DedupKey {
			t.Errorf("after recovery: %+v, want resolves of %s", e, evs[0].DedupKey)
		}
	}
	if len(evs) != 4 {
		t.Errorf("%d events in all, want 2 triggers and 2 resolves", len(evs))
	}
}
