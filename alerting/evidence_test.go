package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// TestRegionEvidenceAgreesWithState: whatever a region's latest probe says,
// its evidence states the rule's verdict with a reason that agrees with it
// and says what the latest probe saw when that differs; a region out of
// the quorum says why; every result shows its probe time and age.
func TestRegionEvidenceAgreesWithState(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	c := &checks.Check{ID: "web-home", MaxResultAge: 71 * time.Second}
	pass := &wire.Result{Region: "eu-west", Agent: "agent-eu", Time: now.Add(-4 * time.Second), OK: true, Reason: "status 200", Duration: 0.12,
		Observed: wire.Observed{ConnectedAddr: "203.0.113.10:443", StatusCode: 200}}
	fail := &wire.Result{Region: "eu-west", Agent: "agent-eu", Time: now.Add(-4 * time.Second), Reason: "status 500, want 200", Duration: 0.12,
		Observed: wire.Observed{StatusCode: 500}}
	old := &wire.Result{Region: "eu-west", Agent: "agent-eu", Time: now.Add(-5 * time.Minute), Reason: "timed out after 1s", Duration: 1}
	redact := checks.NewRedactor([]string{"s3cret-token"})
	for _, tc := range []struct {
		name   string
		in     decide.RegionInput
		latest *wire.Result
		state  string
		line   string // the whole line
	}{
		{"failing, latest failed", decide.RegionInput{Live: true, Failing: true, Why: "2 consecutive failures: status 500, want 200", Last: fail}, nil,
			notify.StateFailing, "FAILING: 2 consecutive failures: status 500, want 200 (status 500, 120ms, probed 4s ago)"},
		{"failing, recovering", decide.RegionInput{Live: true, Failing: true, Why: "recovering: 1 of 2 passes in a row; last failure: status 500, want 200", Last: pass}, nil,
			notify.StateFailing, "FAILING: recovering: 1 of 2 passes in a row; last failure: status 500, want 200; latest ok: status 200 (status 200, connected 203.0.113.10:443, 120ms, probed 4s ago)"},
		{"ok, one failure short of the rule", decide.RegionInput{Live: true, Last: fail}, nil,
			notify.StateOK, "OK: not failing by the check's rule yet; latest failed: status 500, want 200 (status 500, 120ms, probed 4s ago)"},
		{"ok", decide.RegionInput{Live: true, Last: pass}, nil,
			notify.StateOK, "OK: status 200 (status 200, connected 203.0.113.10:443, 120ms, probed 4s ago)"},
		{"stale", decide.RegionInput{Live: false, Last: nil}, old,
			notify.StateStale, "STALE: its agents are silent; the region is out of the quorum (1000ms, probed 5m0s ago)"},
		{"no fresh result", decide.RegionInput{Live: true}, old,
			notify.StateNoFreshResult, "NO FRESH RESULT: latest result is 5m0s old, past max_result_age 1m11s; the region is out of the quorum (1000ms, probed 5m0s ago)"},
		{"no result at all", decide.RegionInput{Live: true}, nil,
			notify.StateNoFreshResult, "NO FRESH RESULT: no result for the check yet; the region is out of the quorum"},
		{"a secret this evaluator knows", decide.RegionInput{Live: true, Failing: true, Why: "1 failed probe: GET /?t=s3cret-token: refused",
			Last: &wire.Result{Time: now, Reason: "GET /?t=s3cret-token: refused"}}, nil,
			notify.StateFailing, "FAILING: 1 failed probe: GET /?t=<redacted>: refused (0ms, probed 0s ago)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := regionEvidence(c, "eu-west", tc.in, tc.latest, now, redact)
			if ev.Region != "eu-west" || ev.State != tc.state {
				t.Errorf("region %q, state %q, want eu-west, %s", ev.Region, ev.State, tc.state)
			}
			if problem := disagreement(ev); problem != "" {
				t.Errorf("%s: %+v", problem, ev)
			}
			if got := notify.EvidenceLine(ev); got != tc.line {
				t.Errorf("line\n%s\nwant\n%s", got, tc.line)
			}
			if r := tc.in.Last; r != nil || tc.latest != nil {
				if r == nil {
					r = tc.latest
				}
				if !ev.ProbedAt.Equal(r.Time) || ev.AgeSeconds == nil || *ev.AgeSeconds != now.Sub(r.Time).Seconds() || ev.Agent != r.Agent {
					t.Errorf("probed at %v, age %v, agent %q; want %v, %v", ev.ProbedAt, ev.AgeSeconds, ev.Agent, r.Time, now.Sub(r.Time))
				}
			}
			if strings.Contains(ev.Reason+ev.LatestReason, "s3cret") {
				t.Errorf("a secret in the evidence: %+v", ev)
			}
		})
	}
}

// TestPageFacts: the status page link, the runbook, the group from the
// labels and the target, with secrets redacted.
func TestPageFacts(t *testing.T) {
	cfg, err := checks.LoadBytes("facts.yaml", []byte(`version: 1
external_url: https://outpost.example.com/ops/
checks:
  - id: api.v2
    runbook: https://runbooks.example.com/api
    labels: {team: payments, service: api}
    http: {url: "https://user:pw@api.example.com/health?key=${API_KEY}"}
  - id: db
    tcp: {address: "db.example.com:5432"}
`), func(k string) (string, bool) { return "k3y-from-env", k == "API_KEY" })
	if err != nil {
		t.Fatal(err)
	}
	f := pageFactsOf(cfg, cfg.Checks[0], cfg.Redactor())
	want := pageFacts{link: "https://outpost.example.com/ops/status?check=api.v2", runbook: "https://runbooks.example.com/api",
		target: "GET https://api.example.com/health?key=<redacted>", group: "api"}
	if f.link != want.link || f.runbook != want.runbook || f.target != want.target || f.group != want.group {
		t.Errorf("facts %+v\nwant %+v", f, want)
	}
	if f := pageFactsOf(cfg, cfg.Checks[1], cfg.Redactor()); f.target != "tcp db.example.com:5432" || f.group != "" || f.runbook != "" {
		t.Errorf("db facts %+v", f)
	}
}
