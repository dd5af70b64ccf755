package checks

import (
	"strings"
	"testing"
	"time"
)

func TestCron(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04 MST", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, from, next string
	}{
		{"0 3 * * *", "2026-11-21 12:00 UTC", "2026-11-22 03:00 UTC"},
		{"*/15 * * * *", "2026-11-21 12:07 UTC", "2026-11-21 12:15 UTC"},
		{"30 2 * * SUN", "2026-11-21 12:00 UTC", "2026-11-22 02:30 UTC"}, // 2026-11-22 is a Sunday
		{"0 0 1 JAN *", "2026-11-21 12:00 UTC", "2027-01-01 00:00 UTC"},
		{"0 9 * * 1-5", "2026-11-21 12:00 UTC", "2026-11-23 09:00 UTC"}, // Saturday -> Monday
		{"0 0 13 * 5", "2026-11-21 12:00 UTC", "2026-11-27 00:00 UTC"},  // dom OR dow: the next Friday
		{"0 12 * * 7", "2026-11-21 12:00 UTC", "2026-11-22 12:00 UTC"},  // 7 is Sunday too
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			c, err := ParseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := c.Next(at(tc.from), utc, 400*24*time.Hour)
			if !ok || !got.Equal(at(tc.next)) {
				t.Fatalf("Next(%s) = %v, %v; want %s", tc.from, got, ok, tc.next)
			}
			prev, ok := c.Prev(got, utc, time.Minute)
			if !ok || !prev.Equal(got) {
				t.Fatalf("Prev(%v) = %v, %v; want itself", got, prev, ok)
			}
		})
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "x * * * *"} {
		if _, err := ParseCron(bad); err == nil {
			t.Errorf("ParseCron(%q) accepted", bad)
		}
	}
}

func TestIncidentDefaultsAndMaintenance(t *testing.T) {
	cfg, err := LoadBytes("m.yaml", []byte(`regions: [us-east, eu-west]
notifiers:
  - {name: pager, console: {}, routes: [critical, meta]}
  - {name: chat, console: {}}
checks:
  - id: web
    http: {url: "https://example.com/"}
  - id: api
    for: 2m
    recovery: {consecutive: 3}
    flap: {transitions: 4, window: 30m}
    on_disagreement: page
    http: {url: "https://example.com/api"}
maintenance:
  - name: nightly-deploy
    checks: [api]
    cron: "0 2 * * *"
    duration: 30m
    tz: Europe/Berlin
  - name: migration
    regions: [eu-west]
    start: 2026-11-21T10:00:00Z
    end: 2026-11-21T12:00:00Z
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	web, api := cfg.Checks[0], cfg.Checks[1]
	if web.Recovery.Consecutive != DefaultRecovery || web.For != 0 || web.Flap.Transitions != DefaultFlapTransitions || web.OnDisagreement != DisagreementWarn {
		t.Errorf("web defaults: recovery %+v for %v flap %+v disagreement %q", web.Recovery, web.For, web.Flap, web.OnDisagreement)
	}
	if api.Recovery.Consecutive != 3 || api.For != 2*time.Minute || api.Flap.Window != 30*time.Minute || api.OnDisagreement != DisagreementPage {
		t.Errorf("api settings: recovery %+v for %v flap %+v disagreement %q", api.Recovery, api.For, api.Flap, api.OnDisagreement)
	}
	if got := strings.Join(cfg.Notifiers[0].Routes, ","); got != "critical,meta" {
		t.Errorf("pager routes = %s", got)
	}
	if got := strings.Join(cfg.Notifiers[1].Routes, ","); got != "critical,warning,meta" {
		t.Errorf("chat routes (default) = %s", got)
	}
	nightly, migration := cfg.Maintenance[0], cfg.Maintenance[1]
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name   string
		m      *Maintenance
		check  string
		region string
		at     time.Time
		want   bool
	}{
		{"recurring, inside, Berlin time", nightly, "api", "us-east", time.Date(2026, 11, 21, 2, 10, 0, 0, berlin), true},
		{"recurring, at its start", nightly, "api", "us-east", time.Date(2026, 11, 21, 2, 0, 0, 0, berlin), true},
		{"recurring, at its end", nightly, "api", "us-east", time.Date(2026, 11, 21, 2, 30, 0, 0, berlin), false},
		{"recurring, 02:10 UTC is 03:10 in Berlin", nightly, "api", "us-east", time.Date(2026, 11, 21, 2, 10, 0, 0, time.UTC), false},
		{"recurring, other check", nightly, "web", "us-east", time.Date(2026, 11, 21, 2, 10, 0, 0, berlin), false},
		{"one-off, inside, its region", migration, "web", "eu-west", time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC), true},
		{"one-off, other region", migration, "web", "us-east", time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC), false},
		{"one-off, after", migration, "web", "eu-west", time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Active(tc.check, tc.region, tc.at); got != tc.want {
				t.Errorf("Active = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIncidentConfigErrors(t *testing.T) {
	_, err := LoadBytes("bad.yaml", []byte(`checks:
  - id: web
    on_disagreement: shout
    recovery: {consecutive: 0}
    flap: {transitions: 1, window: 10s}
    http: {url: "https://example.com/"}
notifiers:
  - {name: n, console: {}, routes: [loud]}
maintenance:
  - {name: a, cron: "61 * * * *", duration: 0s}
  - {name: b, start: 2026-11-21T12:00:00Z, end: 2026-11-21T11:00:00Z, checks: [nope], tz: Mars/Olympus}
  - {name: c, start: 2026-11-21T12:00:00Z, cron: "* * * * *"}
`), func(string) (string, bool) { return "", false })
	want := []string{
		`bad.yaml:3:22: check "web": on_disagreement "shout": use page, warn or ignore`,
		`bad.yaml:4:29: check "web": recovery.consecutive: 0 must be between 1 and 1000`,
		`bad.yaml:5:25: check "web": flap.transitions: 1 must be between 2 and 100`,
		`bad.yaml:5:36: check "web": flap.window: 10s must be at least 1m`,
		`bad.yaml:8:37: notifier "n": route "loud": use critical, warning or meta`,
		`bad.yaml:10:21: maintenance "a": cron "61 * * * *": minute: "61" is not a value from 0 to 59`,
		`bad.yaml:10:45: maintenance "a": duration must be above 0 and at most 168h0m0s`,
	}
	if err == nil {
		t.Fatal("loaded")
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing error %q in:\n%s", w, got)
		}
	}
	for _, w := range []string{`end 2026-11-21T11:00:00Z is not after start`, `unknown check "nope"`, `unknown time zone "Mars/Olympus"`, `use start and end, or cron and duration, not both`} {
		if !strings.Contains(got, w) {
			t.Errorf("missing error containing %q in:\n%s", w, got)
		}
	}
}
