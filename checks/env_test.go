package checks

import (
	"slices"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{
		"A":          "alpha",
		"B":          "beta",
		"EMPTY":      "",
		"lower_case": "lc",
		"_X1":        "x1",
	})
	tests := []struct {
		name, in, want string
		fromEnv, refs  []string
	}{
		{"no reference", "plain text", "plain text", nil, nil},
		{"dollar without brace", "cost: $5 and $A", "cost: $5 and $A", nil, nil},
		{"whole value", "${A}", "alpha", []string{"alpha"}, []string{"A"}},
		{"embedded", "x-${A}-y", "x-alpha-y", []string{"alpha"}, []string{"A"}},
		{"two references", "${A}${B}", "alphabeta", []string{"alpha", "beta"}, []string{"A", "B"}},
		{"default unused", "${A:-fallback}", "alpha", []string{"alpha"}, []string{"A"}},
		{"default for unset", "${UNSET:-fallback}", "fallback", nil, []string{"UNSET"}},
		{"default for empty", "${EMPTY:-fallback}", "fallback", nil, []string{"EMPTY"}},
		{"empty default", "${UNSET:-}", "", nil, []string{"UNSET"}},
		{"empty without default", "${EMPTY}", "", nil, []string{"EMPTY"}},
		{"default with colon and dash", "${UNSET:-a:-b}", "a:-b", nil, []string{"UNSET"}},
		{"default with dollar", "${UNSET:-$5}", "$5", nil, []string{"UNSET"}},
		{"escaped", "$${A}", "${A}", nil, nil},
		{"escaped then reference", "$${A} ${A}", "${A} alpha", []string{"alpha"}, []string{"A"}},
		{"escaped unterminated", "$${A", "${A", nil, nil},
		{"dollar before escape", "$$${A}", "$${A}", nil, nil},
		{"lower-case name", "${lower_case}", "lc", []string{"lc"}, []string{"lower_case"}},
		{"underscore name", "${_X1}", "x1", []string{"x1"}, []string{"_X1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x, err := expandEnv(tt.in, env)
			if err != nil {
				t.Fatalf("expandEnv(%q): %v", tt.in, err)
			}
			if x.value != tt.want || !slices.Equal(x.fromEnv, tt.fromEnv) || !slices.Equal(x.refs, tt.refs) {
				t.Errorf("expandEnv(%q) = %q fromEnv %q refs %q, want %q %q %q", tt.in, x.value, x.fromEnv, x.refs, tt.want, tt.fromEnv, tt.refs)
			}
		})
	}
}

func TestExpandEnvErrors(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{"A": "alpha"})
	tests := []struct{ name, in, want string }{
		{"unset", "${UNSET}", "environment variable UNSET is not set (use ${UNSET:-default} to give a default)"},
		{"unset after set", "${A}/${MISSING}", "environment variable MISSING is not set (use ${MISSING:-default} to give a default)"},
		{"unterminated", "${A", "unterminated ${ reference (write $${ for a literal ${)"},
		{"unterminated at end", "abc ${", "unterminated ${ reference (write $${ for a literal ${)"},
		{"empty name", "${}", `invalid environment variable name "" in ${...}`},
		{"empty name with default", "${:-x}", `invalid environment variable name "" in ${...}`},
		{"leading digit", "${1A}", `invalid environment variable name "1A" in ${...}`},
		{"dash", "${A-B}", `invalid environment variable name "A-B" in ${...}`},
		{"space", "${ A}", `invalid environment variable name " A" in ${...}`},
		{"shell default syntax", "${A:default}", `invalid environment variable name "A:default" in ${...}`},
		{"shell error syntax", "${A:?required}", `invalid environment variable name "A:?required" in ${...}`},
		{"non-ASCII", "${É}", `invalid environment variable name "É" in ${...}`},
		{"nested default", "${UNSET:-${A}}", "a default cannot contain ${...}; write $${ for a literal ${"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x, err := expandEnv(tt.in, env)
			if err == nil {
				t.Fatalf("expandEnv(%q) = %q, want an error", tt.in, x.value)
			}
			if err.Error() != tt.want {
				t.Errorf("expandEnv(%q) error:\ngot  %s\nwant %s", tt.in, err, tt.want)
			}
		})
	}
}

// TestEnvInConfig checks expansion through Load: every scalar is expanded,
// keys are not, and a failed expansion names the variable at its position.
func TestEnvInConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOST": "api.example.com", "EVERY": "45s", "EMPTY": "", "Q": "2"}
	t.Run("expanded", func(t *testing.T) {
		t.Parallel()
		cfg := mustLoad(t, `
regions: ["${R1:-us-east}", eu-west]
checks:
  - id: a
    interval: ${EVERY}
    quorum: ${Q}
    http:
      url: "https://${HOST}/${EMPTY:-health}"
      query: {"${HOST}": "$${not-expanded}"}
`, env)
		c := cfg.Checks[0]
		if c.Interval.String() != "45s" || c.HTTP.URL != "https://api.example.com/health" {
			t.Errorf("interval %s url %q", c.Interval, c.HTTP.URL)
		}
		if n, ok := c.Quorum.Fixed(); !ok || n != 2 {
			t.Errorf("quorum %v", c.Quorum)
		}
		if !slices.Equal(cfg.Regions, []string{"us-east", "eu-west"}) {
			t.Errorf("regions %v", cfg.Regions)
		}
		if got := c.HTTP.Query["${HOST}"]; got != "${not-expanded}" {
			t.Errorf("query = %q, want keys unexpanded and $${ unescaped", c.HTTP.Query)
		}
		if !slices.Equal(cfg.secrets, []string{"2", "45s", "api.example.com"}) {
			t.Errorf("secrets = %q", cfg.secrets)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		wantErrors(t, "checks:\n  - id: a\n    http:\n      url: https://${API_HOST}/x\n", env,
			`test.yaml:4:12: check "a": http.url: environment variable API_HOST is not set (use ${API_HOST:-default} to give a default)`)
	})
	t.Run("missing in defaults", func(t *testing.T) {
		t.Parallel()
		wantErrors(t, "defaults:\n  interval: ${INTERVAL}\nchecks:\n  - id: a\n    tcp: {address: \"example.com:1\"}\n", env,
			`test.yaml:2:13: defaults.interval: environment variable INTERVAL is not set (use ${INTERVAL:-default} to give a default)`)
	})
	t.Run("unterminated and invalid", func(t *testing.T) {
		t.Parallel()
		wantErrors(t, "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      headers:\n        X-A: \"${HOST\"\n        X-B: \"${HOST-NAME}\"\n", env,
			`test.yaml:6:14: check "a": http.headers.X-A: unterminated ${ reference (write $${ for a literal ${)`,
			`test.yaml:7:14: check "a": http.headers.X-B: invalid environment variable name "HOST-NAME" in ${...}`)
	})
}
