package checks

import (
	"slices"
	"testing"
	"time"
)

func TestGroupingAndStormDefaults(t *testing.T) {
	cfg := mustLoad(t, `
version: 1
regions: [us-east, eu-west]
defaults:
  grouping:
    by: [labels.service, host]
notifiers:
  - name: pd
    pagerduty: {routing_key: "${PAGERDUTY_ROUTING_KEY}"}
  - name: chat
    console: {}
    grouping: {by: [check], wait: 0s, interval: 5m}
    storm: {disabled: true}
  - name: ops
    console: {}
    storm: {threshold: 5}
checks:
  - id: web-home
    labels: {service: web}
    http: {url: "https://WWW.example.com:8443/home"}
  - id: dns-apex
    dns: {name: "example.com.", type: A, expect: {answers: [192.0.2.1]}}
`, map[string]string{"PAGERDUTY_ROUTING_KEY": "R0UT1NGKEY0123456789abcdefABCDEF"})

	pd, chat, ops := cfg.Notifiers[0], cfg.Notifiers[1], cfg.Notifiers[2]
	if g := pd.Grouping; g == nil || !slices.Equal(g.By, []string{"labels.service", "host"}) || g.Wait != DefaultGroupWait || g.Interval != DefaultGroupInterval {
		t.Errorf("pd grouping (from defaults) = %+v", g)
	}
	if s := pd.Storm; s == nil || s.Threshold != DefaultStormThreshold || s.Window != DefaultStormWindow {
		t.Errorf("pd storm = %+v", s)
	}
	if pd.PagerDuty.MaxEventsPerMinute != DefaultPagerDutyEventsPerMinute {
		t.Errorf("max_events_per_minute = %d", pd.PagerDuty.MaxEventsPerMinute)
	}
	if g := chat.Grouping; g == nil || !slices.Equal(g.By, []string{"check"}) || g.Wait != 0 || g.Interval != 5*time.Minute {
		t.Errorf("chat grouping = %+v", g)
	}
	if chat.Storm != nil {
		t.Errorf("chat storm = %+v, want nil (disabled)", chat.Storm)
	}
	if s := ops.Storm; s == nil || s.Threshold != 5 || s.Window != DefaultStormWindow {
		t.Errorf("ops storm = %+v", s)
	}

	web, apex := cfg.Checks[0], cfg.Checks[1]
	for _, tc := range []struct {
		c          *Check
		fact, want string
	}{
		{web, "labels.service", "web"},
		{web, "labels.team", ""},
		{web, "host", "www.example.com"},
		{web, "check", "web-home"},
		{web, "regions", "eu-west,us-east"},
		{web, "type", "http"},
		{apex, "host", "example.com"},
		{apex, "type", "dns"},
		{apex, "colour", ""},
	} {
		if got := tc.c.GroupFact(tc.fact); got != tc.want {
			t.Errorf("%s.GroupFact(%q) = %q, want %q", tc.c.ID, tc.fact, got, tc.want)
		}
	}
}
