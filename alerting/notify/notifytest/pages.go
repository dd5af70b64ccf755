package notifytest

import (
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

// T0 is the time of the test notifications.
var T0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

// RoutingKey looks like a real PagerDuty integration key: 32 characters.
const RoutingKey = "R0UT1NGKEY0123456789abcdefABCDEF"

// PageDown is a trigger under key with evidence from three regions, two of
// them failing: what a DOWN page carries.
func PageDown(key string) notify.Notification {
	return notify.Notification{
		Kind: notify.CheckKind("down"), Action: notify.ActionTrigger, Key: key, Route: notify.RouteCritical, Severity: notify.SeverityCritical,
		Summary: "web-home DOWN in 2 of 3 regions: status 503, want 200", Check: "web-home", Source: "evaluator-eu",
		Group: "web", Class: "http", Link: "https://status.example.com/status?check=web-home", Time: T0,
		Target:  "GET https://www.example.com/",
		Details: map[string]string{"quorum": "2/3"},
		Evidence: []notify.RegionEvidence{
			{Region: "us-east", State: "FAILING", Reason: "status 503, want 200", StatusCode: 503,
				Latest: notify.LatestFail, LatestReason: "status 503, want 200", ProbedAt: T0.Add(-3 * time.Second), AgeSeconds: age(3),
				ResolvedIPs: []string{"203.0.113.10"}, ConnectedAddr: "203.0.113.10:443",
				DNSAnswers: map[string][]string{"system": {"203.0.113.10"}},
				Phases:     map[string]float64{"resolve": 0.002, "connect": 0.011, "total": 0.120}},
			{Region: "eu-west", State: "FAILING", Reason: "connect: connection refused",
				Latest: notify.LatestFail, LatestReason: "connect: connection refused", ProbedAt: T0.Add(-4 * time.Second), AgeSeconds: age(4),
				ResolvedIPs: []string{"198.51.100.7"}, Phases: map[string]float64{"resolve": 0.004, "total": 0.015}},
			{Region: "ap-south", State: "OK", Reason: "status 200", Latest: notify.LatestPass, LatestReason: "status 200",
				ProbedAt: T0.Add(-2 * time.Second), AgeSeconds: age(2), StatusCode: 200, ConnectedAddr: "203.0.113.10:443"},
		},
	}
}

func age(seconds float64) *float64 { return &seconds }

// ResolveOf is the resolve that ends n's incident, ten minutes later.
func ResolveOf(n notify.Notification) notify.Notification {
	return notify.Notification{Kind: n.Kind, Action: notify.ActionResolve, Key: n.Key, Route: n.Route, Severity: notify.SeverityInfo,
		Summary: "web-home down resolved after 10m0s: web-home OK in 3/3 regions", Check: n.Check, Source: n.Source, Link: n.Link,
		Runbook: n.Runbook, Target: n.Target, Time: T0.Add(10 * time.Minute)}
}
