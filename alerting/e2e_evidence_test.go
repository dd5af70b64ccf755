package alerting

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// startNamedPagingEvaluator is startPagingEvaluator for an evaluator
// started with --name name.
func startNamedPagingEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, name string) (*Evaluator, string) {
	t.Helper()
	pipe := startPipeline(t, cfg, clk)
	ev, err := New(cfg, Options{Clock: clk, Notifier: pipe, DataDir: t.TempDir(), Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev, serveHandler(t, ev)
}

// splitTarget serves one port on 127.0.0.1 and 127.0.0.2: through
// 127.0.0.2 it always answers 200, through 127.0.0.1 it answers 503 while
// down is set. It returns the port.
func splitTarget(t *testing.T) (string, *atomic.Bool) {
	t.Helper()
	var down atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if down.Load() && local != nil && strings.HasPrefix(local.String(), "127.0.0.1:") {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln1.Addr().String())
	ln2, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		ln1.Close()
		t.Skipf("cannot listen on 127.0.0.2:%s: %v", port, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln1)
	go srv.Serve(ln2)
	t.Cleanup(func() { srv.Close() })
	return port, &down
}

// pdRegions is custom_details as this test reads it.
type pdRegions struct {
	Target  string                           `json:"target"`
	Runbook string                           `json:"runbook"`
	Link    string                           `json:"link"`
	Regions map[string]notify.RegionEvidence `json:"regions"`
}

// TestPagerDutyEvidenceAgreesWithState: two named evaluators page a check
// DOWN from two of four regions (the third passes through another path,
// the fourth has no agent) through PagerDuty, a webhook and Slack.
// Every custom_details region entry agrees with its state, and its line
// with it; the PagerDuty payload carries links (the check's status page and
// its runbook), client_url, group (from the labels), source (the
// evaluator's name), the redacted target and per-region probe times and
// ages, all schema-checked by the fake PagerDuty; PagerDuty, the webhook
// and Slack show one severity per event; the resolve says what recovered
// and for how long it was down; no secret reaches any of them.
func TestPagerDutyEvidenceAgreesWithState(t *testing.T) {
	pd := notifytest.NewFakePagerDuty(t)
	hook := notifytest.NewStatusServer(t, http.StatusOK, "ok")
	chat := notifytest.NewStatusServer(t, http.StatusOK, "ok")
	port, down := splitTarget(t)
	const token = "tok3n-never-on-a-page-0042"
	env := e2eEnv("PAGE_TOKEN", token, "SLACK_URL", chat.URL+"/services/T0/B0/slacksecret0001")
	cfg, err := checks.LoadBytes("evidence.yaml", []byte(fmt.Sprintf(`version: 1
external_url: https://outpost.example.com/
regions: [us-east, eu-west, ap-south, sa-east]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: "%s"}, routes: [critical]}
  - {name: hook, webhook: {url: "%s/hook"}, routes: [critical]}
  - {name: chat, slack: {webhook_url: "${SLACK_URL}"}, routes: [critical]}
checks:
  - id: web-home
    interval: 5s
    timeout: 1s
    quorum: 2
    runbook: https://runbooks.example.com/web-home
    labels: {group: storefront, team: web}
    notify: [oncall, hook, chat]
    http: {url: "http://www.example.test:%s/?token=${PAGE_TOKEN}"}
`, pd.URL(), hook.URL, port)), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evA, urlA := startNamedPagingEvaluator(t, cfg, clk, "eval-a")
	evB, urlB := startNamedPagingEvaluator(t, cfg, clk, "eval-b")
	for region, ip := range map[string]string{"us-east": "127.0.0.1", "eu-west": "127.0.0.1", "ap-south": "127.0.0.2"} {
		startAgentWith(t, cfg, clk, region, []string{urlA, urlB}, t.TempDir(), probes.Options{Resolver: regionResolver(netip.MustParseAddr(ip))})
	}
	reported := func(ev *Evaluator) bool {
		for _, r := range []string{"us-east", "eu-west", "ap-south"} {
			if w, ok := ev.Window("web-home", r); !ok || w.Last == nil {
				return false
			}
		}
		return true
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "both evaluators hearing the three agents", func() bool { return reported(evA) && reported(evB) })

	down.Store(true)
	triggers := func() []notifytest.Event {
		var out []notifytest.Event
		for _, e := range pd.Events() {
			if e.EventAction == "trigger" {
				out = append(out, e)
			}
		}
		return out
	}
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "a trigger from each evaluator", func() bool { return len(triggers()) >= 2 })
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Fatalf("events refused by the fake PagerDuty: %v", bad)
	}
	wantLink := "https://outpost.example.com/status?check=web-home"
	sources := map[string]bool{}
	for _, e := range triggers() {
		p := e.Payload
		sources[p.Source] = true
		if e.Client != "Outpost" || e.ClientURL != wantLink {
			t.Errorf("client %q, client_url %q, want Outpost, %s", e.Client, e.ClientURL, wantLink)
		}
		if len(e.Links) != 2 || e.Links[0].Href != wantLink || e.Links[1].Href != "https://runbooks.example.com/web-home" {
			t.Errorf("links %+v, want the status page and the runbook", e.Links)
		}
		if p.Group != "storefront" || p.Severity != notify.SeverityCritical || p.Component != "web-home" {
			t.Errorf("payload group %q, severity %q, component %q", p.Group, p.Severity, p.Component)
		}
		decided, err := time.Parse(time.RFC3339Nano, p.Timestamp)
		if err != nil {
			t.Fatalf("timestamp %q: %v", p.Timestamp, err)
		}
		var d pdRegions
		if err := json.Unmarshal(p.CustomDetails, &d); err != nil {
			t.Fatal(err)
		}
		var lines map[string]any
		if err := json.Unmarshal(p.CustomDetails, &lines); err != nil {
			t.Fatal(err)
		}
		wantTarget := fmt.Sprintf("GET http://www.example.test:%s/?token=<redacted>", port)
		if d.Target != wantTarget || d.Runbook != "https://runbooks.example.com/web-home" || d.Link != wantLink {
			t.Errorf("custom_details target %q, runbook %q, link %q; want target %q", d.Target, d.Runbook, d.Link, wantTarget)
		}
		wantState := map[string]string{"us-east": notify.StateFailing, "eu-west": notify.StateFailing, "ap-south": notify.StateOK, "sa-east": notify.StateStale}
		if len(d.Regions) != len(wantState) {
			t.Errorf("custom_details has %d regions, want %d: %s", len(d.Regions), len(wantState), p.CustomDetails)
		}
		for region, want := range wantState {
			ev := d.Regions[region]
			if ev.Region != region || ev.State != want {
				t.Errorf("%s: region %q state %q, want %s", region, ev.Region, ev.State, want)
			}
			if problem := disagreement(ev); problem != "" {
				t.Errorf("%s: %s: %+v", region, problem, ev)
			}
			if line, _ := lines["region."+region].(string); !strings.HasPrefix(line, ev.State+": ") {
				t.Errorf("%s: line %q does not begin with its state %s", region, line, ev.State)
			}
			if region == "sa-east" {
				continue
			}
			// A probe time and an age that add up to the decision's time,
			// within the check's freshness horizon.
			if ev.ProbedAt.IsZero() || ev.AgeSeconds == nil {
				t.Errorf("%s: no probe time or age: %+v", region, ev)
				continue
			}
			age := time.Duration(*ev.AgeSeconds * float64(time.Second))
			if got := ev.ProbedAt.Add(age); got.Sub(decided).Abs() > time.Millisecond || age > cfg.Checks[0].MaxResultAge {
				t.Errorf("%s: probed at %s, %s old, decided at %s (max_result_age %s)", region, ev.ProbedAt, age, decided, cfg.Checks[0].MaxResultAge)
			}
			if ev.Agent != "agent-"+region || ev.ConnectedAddr == "" {
				t.Errorf("%s: agent %q, connected %q", region, ev.Agent, ev.ConnectedAddr)
			}
		}
		if !strings.HasPrefix(d.Regions["ap-south"].ConnectedAddr, "127.0.0.2:") || !strings.HasPrefix(d.Regions["us-east"].ConnectedAddr, "127.0.0.1:") {
			t.Errorf("connected addresses: ap-south %q, us-east %q", d.Regions["ap-south"].ConnectedAddr, d.Regions["us-east"].ConnectedAddr)
		}
	}
	if !sources["eval-a"] || !sources["eval-b"] {
		t.Errorf("sources %v, want eval-a and eval-b: each evaluator's event names it", sources)
	}

	// The same severity on the webhook and on Slack as on PagerDuty.
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "the trigger on the webhook and Slack", func() bool {
		return len(hook.Requests()) >= 1 && len(chat.Requests()) >= 1
	})
	for _, r := range hook.Requests() {
		var n notify.Notification
		if err := json.Unmarshal(r.Body, &n); err != nil {
			t.Fatal(err)
		}
		if n.Action == notify.ActionTrigger && (n.Severity != notify.SeverityCritical || n.Link != wantLink || n.Group != "storefront") {
			t.Errorf("webhook trigger severity %q, link %q, group %q", n.Severity, n.Link, n.Group)
		}
	}
	for _, r := range chat.Requests() {
		if body := string(r.Body); strings.Contains(body, ":red_circle:") && !strings.Contains(body, "[CRITICAL]") {
			t.Errorf("Slack trigger without the event's severity: %s", body)
		}
	}

	down.Store(false)
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "the resolve on PagerDuty and the webhook", func() bool {
		resolves := 0
		for _, e := range pd.Events() {
			if e.EventAction == "resolve" {
				resolves++
			}
		}
		return resolves >= 2 && hookResolve(t, hook) != nil
	})
	r := hookResolve(t, hook)
	if !strings.HasPrefix(r.Summary, "web-home down resolved after ") || r.Details["down_for"] == "" || r.Details["opened_at"] == "" || r.Severity != notify.SeverityInfo {
		t.Errorf("resolve: summary %q, severity %q, details %v", r.Summary, r.Severity, r.Details)
	}

	// No secret anywhere: the token, the routing key, the Slack path.
	var all strings.Builder
	for _, e := range pd.Events() {
		b, _ := json.Marshal(e)
		all.Write(b)
	}
	for _, s := range []*notifytest.StatusServer{hook, chat} {
		for _, r := range s.Requests() {
			all.Write(r.Body)
		}
	}
	if strings.Contains(all.String(), token) || strings.Contains(all.String(), "slacksecret0001") {
		t.Error("a secret reached a page")
	}
}

// hookResolve is the first resolve the webhook received, or nil.
func hookResolve(t *testing.T, hook *notifytest.StatusServer) *notify.Notification {
	t.Helper()
	for _, r := range hook.Requests() {
		var n notify.Notification
		if err := json.Unmarshal(r.Body, &n); err != nil {
			t.Fatal(err)
		}
		if n.Action == notify.ActionResolve {
			return &n
		}
	}
	return nil
}

// disagreement says how ev's state, reason and latest probe contradict
// each other, or "" when they agree.
func disagreement(ev notify.RegionEvidence) string {
	low := strings.ToLower(ev.Reason)
	switch ev.State {
	case notify.StateFailing:
		switch {
		case ev.Reason == "" || strings.HasPrefix(low, "ok"):
			return "FAILING with no failure in its reason"
		case ev.Latest == notify.LatestPass && !strings.Contains(ev.Reason, "latest ok"):
			return "FAILING with a passing latest probe, and the reason does not say so"
		}
	case notify.StateOK:
		switch {
		case ev.Latest == "":
			return "OK with no result"
		case ev.Latest == notify.LatestFail && !strings.Contains(ev.Reason, "latest failed"):
			return "OK with a failed latest probe, and the reason does not say so"
		case ev.Latest == notify.LatestPass && strings.Contains(low, "fail"):
			return "OK and passing, with a failure in its reason"
		}
	case notify.StateStale, notify.StateNoFreshResult:
		if !strings.Contains(ev.Reason, "out of the quorum") {
			return "out of the quorum, and the reason does not say so"
		}
	default:
		return "unknown state"
	}
	if ev.Latest != "" && ev.LatestReason == "" && ev.Latest == notify.LatestFail {
		return "a failed latest probe with no reason"
	}
	return ""
}
