package checks

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestLoadFullExample(t *testing.T) {
	t.Parallel()
	cfg, err := Load([]string{"testdata/valid/full.yaml"}, mapEnv(fixtureEnv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.Files, []string{"testdata/valid/full.yaml"}; !slices.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}
	if cfg.Version != 1 {
		t.Errorf("Version = %d, want 1", cfg.Version)
	}
	wantRegions := []string{"us-east", "eu-west", "ap-south"}
	if !slices.Equal(cfg.Regions, wantRegions) {
		t.Errorf("Regions = %v, want %v", cfg.Regions, wantRegions)
	}
	if d := cfg.Defaults; d.Interval != 30*time.Second || d.Timeout != 10*time.Second || d.Quorum != Majority || d.Failure.Consecutive != 2 {
		t.Errorf("Defaults = %+v", d)
	}
	if len(cfg.Agents) != 1 || cfg.Agents[0].Region != "us-east" || cfg.Agents[0].Key.Value() != fixtureEnv["OUTPOST_KEY_US_EAST"] {
		t.Errorf("Agents = %+v", cfg.Agents)
	}
	if len(cfg.Notifiers) != 3 {
		t.Fatalf("got %d notifiers, want 3", len(cfg.Notifiers))
	}
	if n := cfg.Notifiers[0]; n.Name != "oncall" || n.PagerDuty == nil || n.PagerDuty.RoutingKey.Value() != fixtureEnv["PAGERDUTY_ROUTING_KEY"] {
		t.Errorf("notifier 0 = %+v", n)
	}
	if n := cfg.Notifiers[1]; n.Name != "chat" || n.Slack == nil || n.Slack.WebhookURL.Value() != fixtureEnv["SLACK_WEBHOOK"] {
		t.Errorf("notifier 1 = %+v", n)
	}
	if n := cfg.Notifiers[2]; n.Name != "log" || n.Console == nil {
		t.Errorf("notifier 2 = %+v", n)
	}

	byID := map[string]*Check{}
	for _, c := range cfg.Checks {
		byID[c.ID] = c
	}
	if want := []string{"web-home", "api-health", "smtp", "tls-edge", "login"}; !slices.Equal(checkIDs(cfg), want) {
		t.Fatalf("checks = %v, want %v", checkIDs(cfg), want)
	}

	t.Run("web-home", func(t *testing.T) {
		c := byID["web-home"]
		if c.Type() != "http" {
			t.Errorf("Type() = %q", c.Type())
		}
		if c.Interval != 30*time.Second || c.Timeout != 10*time.Second {
			t.Errorf("interval/timeout = %s/%s, want 30s/10s from defaults", c.Interval, c.Timeout)
		}
		if c.Quorum != Majority || c.Quorum.Need(len(c.Regions)) != 2 {
			t.Errorf("Quorum = %v, need %d", c.Quorum, c.Quorum.Need(len(c.Regions)))
		}
		if c.Failure == nil || c.Failure.Consecutive != 2 {
			t.Errorf("Failure = %+v, want consecutive 2", c.Failure)
		}
		if !slices.Equal(c.Regions, wantRegions) {
			t.Errorf("Regions = %v, want all declared %v", c.Regions, wantRegions)
		}
		if !slices.Equal(c.Notify, []string{"oncall"}) {
			t.Errorf("Notify = %v", c.Notify)
		}
		h := c.HTTP
		if h.URL != "https://www.example.com/" || h.Method != "GET" {
			t.Errorf("URL/Method = %q %q", h.URL, h.Method)
		}
		if h.FollowRedirects == nil || !*h.FollowRedirects || h.MaxRedirects != 10 {
			t.Errorf("FollowRedirects/MaxRedirects = %v/%d, want true/10", h.FollowRedirects, h.MaxRedirects)
		}
		if h.MaxBodyBytes != DefaultMaxBodyBytes || DefaultMaxBodyBytes != 1<<20 {
			t.Errorf("MaxBodyBytes = %d, want 1 MiB", h.MaxBodyBytes)
		}
		e := h.Expect
		if !slices.Equal(e.Status, StatusSet{{200, 200}}) {
			t.Errorf("Status = %v", e.Status)
		}
		if e.BodyContains != "Welcome" || e.MaxLatency != 2*time.Second || e.CertMinDays != 14 {
			t.Errorf("Expect = %+v", e)
		}
		if re := e.Headers["X-Served-By"]; re == nil || !re.MatchString("web-3") || re.MatchString("api-1") {
			t.Errorf("Headers[X-Served-By] = %v", re)
		}
		if want := []netip.Prefix{netip.MustParsePrefix("203.0.113.10/32")}; !slices.Equal(e.Addresses, want) {
			t.Errorf("Addresses = %v, want %v", e.Addresses, want)
		}
	})

	t.Run("api-health", func(t *testing.T) {
		c := byID["api-health"]
		if c.Interval != 15*time.Second || c.Timeout != 10*time.Second {
			t.Errorf("interval/timeout = %s/%s, want 15s/10s", c.Interval, c.Timeout)
		}
		if !slices.Equal(c.Regions, []string{"us-east", "eu-west"}) || c.Quorum.String() != "all" || c.Quorum.Need(2) != 2 {
			t.Errorf("Regions/Quorum = %v/%v", c.Regions, c.Quorum)
		}
		if f := c.Failure; f.Ratio != 0.3 || f.Window != 10 || f.Consecutive != 0 {
			t.Errorf("Failure = %+v", f)
		}
		if c.Labels["team"] != "api" || c.Labels["tier"] != "backend" {
			t.Errorf("Labels = %v", c.Labels)
		}
		h := c.HTTP
		if h.FollowRedirects == nil || *h.FollowRedirects || h.MaxBodyBytes != 64<<10 {
			t.Errorf("FollowRedirects/MaxBodyBytes = %v/%d", *h.FollowRedirects, h.MaxBodyBytes)
		}
		if got := h.Headers["Authorization"]; got != "Bearer "+fixtureEnv["API_TOKEN"] {
			t.Errorf("Authorization header = %q", got)
		}
		st := h.Expect.Status
		for code, want := range map[int]bool{200: true, 299: true, 301: true, 302: false, 400: true, 404: true, 405: false, 500: false} {
			if st.Contains(code) != want {
				t.Errorf("Status %v Contains(%d) = %v, want %v", st, code, !want, want)
			}
		}
		if st.String() != "2xx, 301, 400-404" {
			t.Errorf("Status.String() = %q", st.String())
		}
		j := h.Expect.JSON
		if len(j) != 3 {
			t.Fatalf("JSON = %+v, want 3 assertions", j)
		}
		want := map[string]any{"$.status": "ok", "$.checks[0].healthy": true, "$.version": float64(3)}
		for _, a := range j {
			if w, ok := want[a.Path.String()]; !ok || a.Want != w {
				t.Errorf("JSON assertion %s = %#v, want %#v", a.Path, a.Want, w)
			}
		}
	})

	t.Run("smtp", func(t *testing.T) {
		c := byID["smtp"]
		if c.Type() != "tcp" || c.TCP.Address != "mail.example.com:25" || c.TCP.Expect.Line.String() != "^220 " {
			t.Errorf("TCP = %+v", c.TCP)
		}
		if n, ok := c.Quorum.Fixed(); !ok || n != 2 || c.Quorum.Need(3) != 2 {
			t.Errorf("Quorum = %v", c.Quorum)
		}
	})

	t.Run("tls-edge", func(t *testing.T) {
		c := byID["tls-edge"]
		if c.Type() != "tls" || c.TLS.MinVersion != tls.VersionTLS12 || c.TLS.MinVersion.String() != "1.2" || c.TLS.Expect.CertMinDays != 21 {
			t.Errorf("TLS = %+v", c.TLS)
		}
		if c.Interval != 2*time.Minute || c.Timeout != 10*time.Second {
			t.Errorf("interval/timeout = %s/%s", c.Interval, c.Timeout)
		}
		if c.Quorum.String() != "2/3" || c.Quorum.Need(3) != 2 {
			t.Errorf("Quorum = %v need %d", c.Quorum, c.Quorum.Need(3))
		}
	})

	t.Run("login", func(t *testing.T) {
		h := byID["login"].HTTP
		if len(h.Steps) != 2 {
			t.Fatalf("Steps = %d", len(h.Steps))
		}
		s0, s1 := h.Steps[0], h.Steps[1]
		if s0.Name != "login" || s0.Method != "POST" || s0.Capture["token"].JSON.String() != "$.token" {
			t.Errorf("step 0 = %+v", s0)
		}
		if s1.Name != "step 2" || s1.Method != "GET" {
			t.Errorf("step 1 name/method = %q/%q, want defaults", s1.Name, s1.Method)
		}
	})
}

// TestDefaultsWhenUnset loads configs that set almost nothing and checks what
// Load fills in.
func TestDefaultsWhenUnset(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
checks:
  - id: plain
    http: {url: "https://example.com/"}
  - id: fast
    interval: 5s
    http: {url: "https://example.com/fast"}
  - id: slow
    interval: 1h
    tcp: {address: "example.com:22"}
  - id: second
    interval: 1s
    tls: {address: "example.com:443"}
`, nil)
	if !slices.Equal(cfg.Regions, []string{LocalRegion}) {
		t.Errorf("Regions = %v, want [%s]", cfg.Regions, LocalRegion)
	}
	if cfg.Version != 1 {
		t.Errorf("Version = %d, want 1 when unset", cfg.Version)
	}
	tests := []struct {
		id                string
		interval, timeout time.Duration
	}{
		{"plain", DefaultInterval, DefaultTimeout},
		{"fast", 5 * time.Second, 4 * time.Second},
		{"slow", time.Hour, DefaultTimeout},
		{"second", time.Second, 800 * time.Millisecond},
	}
	for i, tt := range tests {
		c := cfg.Checks[i]
		t.Run(tt.id, func(t *testing.T) {
			if c.ID != tt.id {
				t.Fatalf("check %d is %q, want %q", i, c.ID, tt.id)
			}
			if c.Interval != tt.interval || c.Timeout != tt.timeout {
				t.Errorf("interval/timeout = %s/%s, want %s/%s", c.Interval, c.Timeout, tt.interval, tt.timeout)
			}
			if c.Quorum != Majority || c.Quorum.Need(len(c.Regions)) != 1 {
				t.Errorf("Quorum = %v", c.Quorum)
			}
			if c.Failure == nil || c.Failure.Consecutive != DefaultConsecutive || c.Failure.Ratio != 0 {
				t.Errorf("Failure = %+v, want consecutive %d", c.Failure, DefaultConsecutive)
			}
			if !slices.Equal(c.Regions, []string{LocalRegion}) {
				t.Errorf("Regions = %v", c.Regions)
			}
		})
	}
	h := cfg.Checks[0].HTTP
	if h.Method != "GET" || h.FollowRedirects == nil || !*h.FollowRedirects || h.MaxBodyBytes != 1<<20 || h.MaxRedirects != 10 {
		t.Errorf("HTTP defaults = method %q follow %v max_body %d max_redirects %d", h.Method, h.FollowRedirects, h.MaxBodyBytes, h.MaxRedirects)
	}
	if h.Expect != nil {
		t.Errorf("Expect = %+v, want nil: 2xx is the prober's default", h.Expect)
	}

	// An expect block without status leaves Status empty: the prober treats
	// an empty set as 2xx.
	cfg = mustLoad(t, "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      expect: {body_contains: ok}\n", nil)
	if st := cfg.Checks[0].HTTP.Expect.Status; len(st) != 0 {
		t.Errorf("Status = %v, want empty", st)
	}
}

// TestDefaultsBlock checks that defaults: applies to checks that do not set
// their own values and that a check's own values win.
func TestDefaultsBlock(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
regions: [a, b, c, d, e]
defaults:
  interval: 1m
  quorum: 2/3
  failure: {ratio: 0.5, window: 4}
checks:
  - id: inherits
    http: {url: "https://example.com/"}
  - id: own
    interval: 20s
    timeout: 3s
    quorum: 1
    failure: {consecutive: 5}
    http: {url: "https://example.com/"}
`, nil)
	in, own := cfg.Checks[0], cfg.Checks[1]
	if in.Interval != time.Minute || in.Timeout != DefaultTimeout || in.Quorum.String() != "2/3" || in.Quorum.Need(5) != 4 || in.Failure.Ratio != 0.5 || in.Failure.Window != 4 {
		t.Errorf("inherits = interval %s timeout %s quorum %v failure %+v", in.Interval, in.Timeout, in.Quorum, in.Failure)
	}
	if own.Interval != 20*time.Second || own.Timeout != 3*time.Second || own.Quorum.Need(5) != 1 || own.Failure.Consecutive != 5 {
		t.Errorf("own = interval %s timeout %s quorum %v failure %+v", own.Interval, own.Timeout, own.Quorum, own.Failure)
	}
}
