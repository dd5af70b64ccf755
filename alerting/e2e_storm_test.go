package alerting

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEndToEndStormPagesOncePerGroup: 500 checks of two services in
// three regions fail at once behind one shared cause (their common
// backend), with real agents and the real delivery pipeline to a fake
// PagerDuty that validates every event. The notifier groups by service:
// one page per service lists every check with each region's evidence, and
// one resolve per service follows the recovery. A check of a third
// service failing alone during the storm still gets its own page, which
// reads like a single check's page.
func TestEndToEndStormPagesOncePerGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("500 checks in 3 regions")
	}
	pd := notifytest.NewFakePagerDuty(t)
	shared, sharedDown := downTarget(t)
	billing, billingDown := downTarget(t)
	var b strings.Builder
	for _, svc := range []string{"web", "api"} {
		for i := range 250 {
			fmt.Fprintf(&b, "  - {id: %s-%03d, labels: {service: %s}, http: {url: \"%s/%s/%d\"}}\n", svc, i, svc, shared.URL, svc, i)
		}
	}
	fmt.Fprintf(&b, "  - {id: billing-1, labels: {service: billing}, http: {url: \"%s/\"}}\n", billing.URL)
	env := e2eEnv()
	cfg, err := checks.LoadBytes("storm.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 20s, batch_delay: 200ms, batch_size: 500}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - name: oncall
    pagerduty: {routing_key: "${PD_KEY}", url: "%s"}
    routes: [critical, meta]
    grouping: {by: [labels.service], interval: 20s}
defaults: {interval: 10s, timeout: 5s} # real-time probe deadlines: generous, for a loaded machine
checks:
%s`, pd.URL(), b.String())), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	ev, url := startPagingEvaluator(t, cfg, clk)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{url}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 5*time.Second, 2*time.Minute, "every check reported from every region", func() bool { return allRegionsReported(ev, cfg) })
	if n := pd.RequestCount(); n != 0 {
		t.Fatalf("%d PagerDuty requests while everything passed", n)
	}

	sharedDown.Store(true)
	webKey, apiKey, billingKey := "outpost:group:critical:labels.service=web", "outpost:group:critical:labels.service=api", "outpost:group:critical:labels.service=billing"
	advanceUntil(t, clk, 5*time.Second, 3*time.Minute, "a page for each service", func() bool {
		c := countEvents(pd.Events())
		return c[webKey]["trigger"] > 0 && c[apiKey]["trigger"] > 0
	})
	billingDown.Store(true)
	advanceUntil(t, clk, 5*time.Second, 3*time.Minute, "billing's own page", func() bool { return countEvents(pd.Events())[billingKey]["trigger"] > 0 })
	// Let every late member join and every update go out. (Steps of five
	// seconds make half the checks due at one instant, more than the
	// agents' workers: the runs beyond wait for a worker, as they would
	// after a stalled host.)
	paged := clk.Now()
	advanceUntil(t, clk, 5*time.Second, 3*time.Minute, "a group interval more of storm", func() bool { return clk.Now().Sub(paged) >= 25*time.Second })

	events := pd.Events()
	triggers := 0
	var lastWeb notifytest.Event
	for _, e := range events {
		if e.EventAction == "trigger" {
			triggers++
		}
		if e.DedupKey == webKey {
			lastWeb = e
		}
		if e.DedupKey == billingKey && (e.Payload == nil || !strings.HasPrefix(e.Payload.Summary, "billing-1 DOWN from ")) {
			t.Errorf("billing's page does not read like its own: %+v", e.Payload)
		}
	}
	if triggers > 6 {
		t.Errorf("%d triggers for 501 failing checks, want a handful: %v", triggers, countEvents(events))
	}
	if c := countEvents(events); len(c) != 3 {
		t.Errorf("events under %d keys, want one per service: %v", len(c), c)
	}
	var d struct {
		Firing string `json:"checks_firing"`
		Checks []struct {
			Check   string                     `json:"check"`
			State   string                     `json:"state"`
			Regions map[string]json.RawMessage `json:"regions"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(lastWeb.Payload.CustomDetails, &d); err != nil {
		t.Fatal(err)
	}
	if d.Firing != "250" || len(d.Checks) != 250 {
		t.Errorf("web's latest page lists %d checks (%s firing), want all 250", len(d.Checks), d.Firing)
	}
	// Each check carries the evidence of its own page: every region's
	// view, as it was when the check's incident was decided.
	for _, c := range d.Checks {
		failing := 0
		for _, ev := range c.Regions {
			if strings.Contains(string(ev), `"FAILING"`) && strings.Contains(string(ev), "status 503") {
				failing++
			}
		}
		if c.State != "firing" || len(c.Regions) != 3 || failing == 0 {
			t.Errorf("web member %s: state %s, %d regions failing, evidence %s", c.Check, c.State, failing, c.Regions)
			break
		}
	}
	if !strings.HasPrefix(lastWeb.Payload.Summary, "250 checks DOWN from ") || !strings.Contains(lastWeb.Payload.Summary, "3 regions: web-000, ") {
		t.Errorf("web summary %q", lastWeb.Payload.Summary)
	}

	sharedDown.Store(false)
	billingDown.Store(false)
	advanceUntil(t, clk, 5*time.Second, 5*time.Minute, "one resolve per service", func() bool {
		c := countEvents(pd.Events())
		return c[webKey]["resolve"] > 0 && c[apiKey]["resolve"] > 0 && c[billingKey]["resolve"] > 0
	})
	clocktest.WaitIdle(t, settleLimit)
	for key, c := range countEvents(pd.Events()) {
		if c["resolve"] != 1 {
			t.Errorf("%s: %d resolves", key, c["resolve"])
		}
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Errorf("invalid events: %v", bad)
	}
}

// countEvents counts events by dedup key and action.
func countEvents(evs []notifytest.Event) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, e := range evs {
		if out[e.DedupKey] == nil {
			out[e.DedupKey] = map[string]int{}
		}
		out[e.DedupKey][e.EventAction]++
	}
	return out
}
