package checks

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAliasBomb: aliases let a 17 KB file name one block four million
// times; the loader used to decode every copy (minutes of CPU). It must
// stop with one error.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("x: &s {url: \"https://e.com/\", headers: {")
	for i := range 50 {
		b.WriteString("h" + strings.Repeat("x", i) + ": v, ")
	}
	b.WriteString("}}\ny: &st [")
	for range 2000 {
		b.WriteString("*s, ")
	}
	b.WriteString("]\nz: &c {id: a, http: {steps: *st}}\nchecks: [")
	for range 2000 {
		b.WriteString("*c, ")
	}
	b.WriteString("]\n")
	// The budget error below is the proof that decoding stopped early; a
	// wall-clock bound would only make the test flaky on a loaded machine.
	_, err := loadString(t, b.String(), nil)
	want := `test.yaml:1:1: unknown key "x" (known keys: version, defaults, regions, agents, notifiers, checks, reporting, meta, maintenance, peers, api, bus, external_url)
test.yaml:1:926: the document expands to too many values through aliases (*name)
test.yaml:2:1: unknown key "y" (known keys: version, defaults, regions, agents, notifiers, checks, reporting, meta, maintenance, peers, api, bus, external_url)
test.yaml:3:1: unknown key "z" (known keys: version, defaults, regions, agents, notifiers, checks, reporting, meta, maintenance, peers, api, bus, external_url)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestAliasesShareBlocks: the budget must leave room for configs that
// share blocks through anchors.
func TestAliasesShareBlocks(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("checks:\n  - id: c0\n    http: &h\n      url: https://example.com/\n")
	b.WriteString("      headers: {A: a, B: b, C: c, D: d, E: e, F: f, G: g, H: h}\n")
	b.WriteString("      expect: {status: [200, 201, 202, 203, 204], body_contains: ok}\n")
	for i := 1; i < 5000; i++ {
		b.WriteString("  - {id: c" + strconv.Itoa(i) + ", http: *h}\n")
	}
	cfg := mustLoad(t, b.String(), nil)
	if len(cfg.Checks) != 5000 || cfg.Checks[4999].HTTP.Headers["H"] != "h" {
		t.Errorf("got %d checks", len(cfg.Checks))
	}
}

// TestMergeKeys: keys written in a mapping win over merged ones wherever
// the << is, and an earlier merge source wins over a later one. (The
// loader used to let a << written after a key overwrite it.)
func TestMergeKeys(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
defaults: &base {interval: 1m, timeout: 5s}
checks:
  - id: one
    http: &h1 {url: "https://one.example.com/", method: POST}
  - id: two
    http: &h2 {url: "https://two.example.com/", method: PUT, max_redirects: 3}
  - id: after
    interval: 20s
    <<: *base
    http: {method: GET, <<: *h1}
  - id: before
    <<: *base
    interval: 20s
    http: {<<: *h1, method: GET}
  - id: list
    http: {<<: [*h1, *h2]}
  - id: defaults-only
    <<: *base
    http: {<<: *h2}
`, nil)
	tests := []struct {
		id                string
		interval, timeout time.Duration
		url, method       string
		maxRedirects      int
	}{
		{"after", 20 * time.Second, 5 * time.Second, "https://one.example.com/", "GET", 10},
		{"before", 20 * time.Second, 5 * time.Second, "https://one.example.com/", "GET", 10},
		{"list", time.Minute, 5 * time.Second, "https://one.example.com/", "POST", 3},
		{"defaults-only", time.Minute, 5 * time.Second, "https://two.example.com/", "PUT", 3},
	}
	for i, tt := range tests {
		c := cfg.Checks[i+2]
		if c.ID != tt.id {
			t.Fatalf("check %d = %q, want %q", i+2, c.ID, tt.id)
		}
		if c.Interval != tt.interval || c.Timeout != tt.timeout || c.HTTP.URL != tt.url || c.HTTP.Method != tt.method || c.HTTP.MaxRedirects != tt.maxRedirects {
			t.Errorf("%s: interval %s timeout %s url %s method %s max_redirects %d, want %s %s %s %s %d", tt.id,
				c.Interval, c.Timeout, c.HTTP.URL, c.HTTP.Method, c.HTTP.MaxRedirects,
				tt.interval, tt.timeout, tt.url, tt.method, tt.maxRedirects)
		}
	}
	// Positions stay those of the check, not of the merged mapping.
	if got := cfg.Checks[3].Src.Pos.Line; got != 12 {
		t.Errorf("check before: Src.Pos.Line = %d, want 12, not that of the merged defaults", got)
	}
}

// TestLongInterval: the default timeout is 80% of the interval, computed
// without overflow (400000h used to give a negative timeout).
func TestLongInterval(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, "checks:\n  - id: a\n    interval: 400000h\n    http: {url: \"https://example.com/\"}\n  - id: b\n    interval: 2562047h\n    tcp: {address: \"example.com:1\"}\n", nil)
	for _, c := range cfg.Checks {
		if c.Timeout != DefaultTimeout {
			t.Errorf("%s: interval %s timeout %s, want %s", c.ID, c.Interval, c.Timeout, DefaultTimeout)
		}
	}
}

// TestOneLinePerError: a message quoting text with a line break (a regular
// expression, a map key) stays on one line.
func TestOneLinePerError(t *testing.T) {
	t.Parallel()
	wantErrors(t, "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      expect: {body_regex: \"a\\n(\", json: {\"$.a\\nb\": [1]}}\n", nil,
		`test.yaml:5:28: check "a": http.expect.body_regex: "a\n(" is not a valid regular expression: missing closing ): `+"`a\\n(`",
		`test.yaml:5:53: check "a": http.expect.json.$.a\nb: expected a string, number, boolean or null, got a list`)
}

// TestAliasedScalars: an alias may stand for a scalar anywhere a scalar is
// read, including status lists and JSON expectations.
func TestAliasedScalars(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
checks:
  - id: a
    interval: &i 45s
    http:
      url: https://example.com/
      expect:
        status: [&ok 200, 3xx]
        json: {$.code: *ok, $.every: *i}
  - id: b
    interval: *i
    http:
      url: https://example.com/b
      expect: {status: [*ok]}
`, nil)
	if got := cfg.Checks[1].HTTP.Expect.Status; len(got) != 1 || !got.Contains(200) {
		t.Errorf("status = %v", got)
	}
	if got := cfg.Checks[0].HTTP.Expect.JSON; len(got) != 2 || got[0].Want != float64(200) || got[1].Want != "45s" {
		t.Errorf("json = %+v", got)
	}
	if cfg.Checks[1].Interval != 45*time.Second {
		t.Errorf("interval = %s", cfg.Checks[1].Interval)
	}
}
