package notify_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/wire"
)

func TestNotificationBounded(t *testing.T) {
	n := notifytest.PageDown("k")
	n.Summary = strings.Repeat("s", 10000)
	n.Evidence[0].DNSAnswers = map[string][]string{}
	for i := range 100 {
		n.Evidence[0].DNSAnswers[strings.Repeat("r", i+1)] = make([]string, 1000)
	}
	n.Evidence[0].Reason = strings.Repeat("r", 5000)
	got, err := notify.Normalize(n, notifytest.T0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Summary) > notify.MaxNoticeSummaryBytes || len(got.Evidence[0].Reason) > notify.MaxFieldBytes || len(got.Evidence[0].DNSAnswers) > notify.MaxMapKeys {
		t.Errorf("not bounded: summary %d, reason %d, answers %d", len(got.Summary), len(got.Evidence[0].Reason), len(got.Evidence[0].DNSAnswers))
	}
	for _, v := range got.Evidence[0].DNSAnswers {
		if len(v) > notify.MaxListItems {
			t.Errorf("%d answers kept", len(v))
		}
	}
	if len(n.Evidence[0].DNSAnswers) != 100 {
		t.Error("normalize changed its argument")
	}
}

func TestEvidenceFromResult(t *testing.T) {
	r := wire.Result{Region: "us-east", Reason: "A www = 198.51.100.7, want 203.0.113.10", Duration: 0.25,
		Phases: wire.Phases{Resolve: 0.01, Connect: 0.02},
		Observed: wire.Observed{ResolvedIPs: []string{"198.51.100.7"}, ConnectedAddr: "198.51.100.7:443", StatusCode: 200,
			DNS: []wire.DNSObservation{
				{Resolver: "system", Server: "127.0.0.53:53", Answers: []string{"198.51.100.7"}},
				{Resolver: "authoritative", Server: "192.0.2.1:53", Rcode: "SERVFAIL"},
			}}}
	ev := notify.EvidenceFromResult("FAILING", r)
	want := notify.RegionEvidence{Region: "us-east", State: "FAILING", Reason: r.Reason, ResolvedIPs: []string{"198.51.100.7"},
		ConnectedAddr: "198.51.100.7:443", StatusCode: 200,
		DNSAnswers: map[string][]string{"system 127.0.0.53:53": {"198.51.100.7"}, "authoritative 192.0.2.1:53": {"(SERVFAIL)"}},
		Phases:     map[string]float64{"total": 0.25, "resolve": 0.01, "connect": 0.02}}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("evidence\n%+v\nwant\n%+v", ev, want)
	}
}

func TestNormalizeTakesFieldsFromDetails(t *testing.T) {
	n, err := notify.Normalize(notify.Notification{Kind: "check_down", Key: "k", Summary: "s", Severity: notify.SeverityCritical,
		Details: map[string]string{"action": "resolve", "route": "warning", "check": "web"}}, notifytest.T0)
	if err != nil {
		t.Fatal(err)
	}
	if n.Action != notify.ActionResolve || n.Route != notify.RouteWarning || n.Check != "web" || !n.Time.Equal(notifytest.T0) {
		t.Errorf("normalized %+v", n)
	}
	n, err = notify.Normalize(notify.Notification{Action: notify.ActionTrigger, Key: "k", Summary: "s", Details: map[string]string{"action": "resolve"}}, notifytest.T0)
	if err != nil || n.Action != notify.ActionTrigger {
		t.Errorf("the field must win over Details: %+v, %v", n, err)
	}
	if _, err := notify.Normalize(notify.Notification{Key: "k", Summary: "s", Details: map[string]string{"action": "explode"}}, notifytest.T0); !errors.Is(err, notify.ErrInvalidNotification) {
		t.Errorf("bad action from Details: %v", err)
	}
}

// TestSeverityOf: one severity per event, by route, whatever the producer
// wrote; resolves and notices marked info are info.
func TestSeverityOf(t *testing.T) {
	for _, tc := range []struct {
		route, severity, action, want string
	}{
		{notify.RouteCritical, notify.SeverityCritical, notify.ActionTrigger, "critical"},
		{notify.RouteCritical, notify.SeverityWarning, notify.ActionTrigger, "critical"},
		{notify.RouteWarning, notify.SeverityCritical, notify.ActionTrigger, "warning"},
		{notify.RouteMeta, notify.SeverityCritical, notify.ActionTrigger, "error"},
		{notify.RouteMeta, notify.SeverityWarning, "", "error"},
		{notify.RouteMeta, notify.SeverityInfo, "", "info"},
		{notify.RouteCritical, notify.SeverityCritical, notify.ActionResolve, "info"},
		{"", notify.SeverityWarning, notify.ActionTrigger, "warning"},
		{"", "", notify.ActionTrigger, "error"},
	} {
		n := notify.Notification{Kind: "check_down", Key: "k", Summary: "s", Route: tc.route, Severity: tc.severity, Action: tc.action}
		if got := notify.SeverityOf(n); got != tc.want {
			t.Errorf("SeverityOf(route %q, severity %q, action %q) = %q, want %q", tc.route, tc.severity, tc.action, got, tc.want)
		}
		if tc.route == "" {
			continue
		}
		if norm, err := notify.Normalize(n, notifytest.T0); err != nil || norm.Severity != tc.want {
			t.Errorf("Normalize(route %q, severity %q, action %q).Severity = %q (%v), want %q", tc.route, tc.severity, tc.action, norm.Severity, err, tc.want)
		}
	}
}
