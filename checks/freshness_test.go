package checks

import (
	"testing"
	"time"
)

// TestMaxResultAge: unless set, a check's freshness horizon is two
// intervals after its probe ended, plus the batch delay; defaults and the
// check itself may set it.
func TestMaxResultAge(t *testing.T) {
	cfg := mustLoad(t, `
version: 1
reporting: {heartbeat: 10s, batch_delay: 2s}
checks:
  - id: by-default
    interval: 30s
    timeout: 10s
    http: {url: "https://example.com/"}
  - id: own
    interval: 10s
    max_result_age: 5m
    http: {url: "https://example.com/b"}
`, nil)
	if got, want := cfg.Checks[0].MaxResultAge, 2*30*time.Second+10*time.Second+2*time.Second; got != want {
		t.Errorf("default max_result_age = %s, want %s", got, want)
	}
	if got := cfg.Checks[1].MaxResultAge; got != 5*time.Minute {
		t.Errorf("max_result_age = %s, want 5m", got)
	}

	cfg = mustLoad(t, `
version: 1
defaults: {interval: 10s, max_result_age: 2m}
checks:
  - id: from-defaults
    http: {url: "https://example.com/"}
`, nil)
	if got := cfg.Checks[0].MaxResultAge; got != 2*time.Minute {
		t.Errorf("max_result_age from defaults = %s, want 2m", got)
	}
}

// TestMetaFor: the meta page waits two heartbeats unless meta.for says
// otherwise; 0 pages at once.
func TestMetaFor(t *testing.T) {
	if got := mustLoad(t, "version: 1\nreporting: {heartbeat: 5s}\nchecks: [{id: a, http: {url: \"https://example.com/\"}}]\n", nil).Meta.For; got != 10*time.Second {
		t.Errorf("default meta.for = %s, want 10s", got)
	}
	if got := mustLoad(t, "version: 1\nmeta: {for: 0s}\nchecks: [{id: a, http: {url: \"https://example.com/\"}}]\n", nil).Meta.For; got != 0 {
		t.Errorf("meta.for: 0s = %s", got)
	}
}
