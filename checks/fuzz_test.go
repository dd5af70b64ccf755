package checks

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzSecret is the value of every variable in fuzzEnv; it must never
// appear in an error.
const fuzzSecret = "s3cr3t-Fuzz-Value"

var fuzzEnv = map[string]string{
	"PAGERDUTY_ROUTING_KEY": fuzzSecret,
	"SLACK_WEBHOOK":         "https://hooks.slack.example/" + fuzzSecret,
	"OUTPOST_KEY_US_EAST":   fuzzSecret,
	"API_TOKEN":             fuzzSecret,
	"SECRET":                fuzzSecret,
	"EMPTY":                 "",
}

// FuzzLoad feeds arbitrary bytes to LoadBytes: it must not panic, and it
// returns either a fully defaulted config or an error of one
// "fuzz.yaml:..." line per problem, none of which shows an environment value.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("checks:\n  - id: a\n    http: {url: \"https://example.com/\"}\n"))
	f.Add([]byte("checks:\n  - id: a\n    tcp: {address: \"${SECRET}\"}\n"))
	f.Add([]byte("checks:\n  - id: a\n    dns: {name: www.example.com, type: txt, expect: {answers: ['v=spf1 -all']}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		cfg, err := LoadBytes(name, data, mapEnv(fuzzEnv))
		if err != nil {
			if cfg != nil {
				t.Fatalf("LoadBytes returned a config and an error")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, line := range lines {
				if !strings.HasPrefix(line, name+":") {
					t.Fatalf("error line does not start with %q: %q", name+":", line)
				}
				if strings.Contains(line, fuzzSecret) && !strings.Contains(string(data), "s3cr3t") {
					t.Fatalf("error line shows an environment value: %q", line)
				}
			}
			if n := len(Errors(err)); n != len(lines) {
				t.Fatalf("Errors() has %d errors for %d lines", n, len(lines))
			}
			return
		}
		checkLoaded(t, cfg)
	})
}

// checkLoaded asserts what every successfully loaded config promises.
func checkLoaded(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Checks) == 0 || len(cfg.Regions) == 0 {
		t.Fatalf("loaded config has %d checks and %d regions", len(cfg.Checks), len(cfg.Regions))
	}
	ids := map[string]bool{}
	for _, c := range cfg.Checks {
		if ids[c.ID] || !idRE.MatchString(c.ID) {
			t.Fatalf("check id %q is duplicate or invalid", c.ID)
		}
		ids[c.ID] = true
		switch c.Type() {
		case "http", "tcp", "tls", "dns", "series", "heartbeat":
		default:
			t.Fatalf("check %q has type %q", c.ID, c.Type())
		}
		checkShape(t, c)
		if c.Interval < time.Second || c.Timeout <= 0 || c.Timeout >= c.Interval {
			t.Fatalf("check %q: interval %v, timeout %v", c.ID, c.Interval, c.Timeout)
		}
		if c.Quorum.IsZero() || c.Failure == nil || len(c.Regions) == 0 {
			t.Fatalf("check %q not defaulted: quorum %v failure %v regions %v", c.ID, c.Quorum, c.Failure, c.Regions)
		}
		if n, ok := c.Quorum.Fixed(); ok && n > len(c.Regions) {
			t.Fatalf("check %q: quorum %d over %d regions", c.ID, n, len(c.Regions))
		}
		if need := c.Quorum.Need(len(c.Regions)); need < 1 {
			t.Fatalf("check %q: Need = %d", c.ID, need)
		}
		if d := c.DNS; d != nil {
			if d.Type == "" || d.Transport == "" || len(d.Resolvers) == 0 || d.Retries < 0 || d.AuthoritativePort < 1 || d.Expect != nil && d.Expect.Rcode == "" {
				t.Fatalf("check %q: dns not defaulted: %+v", c.ID, d)
			}
		}
		if h := c.HTTP; h != nil {
			if h.FollowRedirects == nil || h.MaxBodyBytes < 1 || h.MaxBodyBytes > MaxBodyBytesLimit {
				t.Fatalf("check %q: http not defaulted: %+v", c.ID, h)
			}
			if len(h.Steps) == 0 && (h.URL == "" || h.Method == "") {
				t.Fatalf("check %q: url %q method %q", c.ID, h.URL, h.Method)
			}
			for _, s := range h.Steps {
				if s.URL == "" || s.Method == "" || s.Name == "" {
					t.Fatalf("check %q: step %+v not defaulted", c.ID, s)
				}
			}
		}
	}
}

const fuzzJSON = `{
  "status": "ok", "version": 3, "odd.key": true, "with space": null,
  "items": [{"name": "a", "tags": ["x"]}, {"name": "b", "tags": ["x", "y"]}],
  "nested": {"a": {"b": [1, [2, 3], {"c": "d"}]}}, "": "empty key"
}`

func fuzzJSONDoc(tb testing.TB) any {
	tb.Helper()
	var doc any
	if err := json.Unmarshal([]byte(fuzzJSON), &doc); err != nil {
		tb.Fatal(err)
	}
	return doc
}

// FuzzJSONPath parses arbitrary paths and evaluates them on a fixed
// document: no panic, a parsed path round-trips through String, and Eval
// fails only with ErrNoValue.
func FuzzJSONPath(f *testing.F) {
	doc := fuzzJSONDoc(f)
	for _, s := range []string{"$", "$.status", "$.items[1].tags[0]", "$['odd.key']", `$["with space"]`, "$.nested.a.b[1][0]", "$['']"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseJSONPath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("String() = %q, want %q", p.String(), s)
		}
		q, err := ParseJSONPath(p.String())
		if err != nil {
			t.Fatalf("ParseJSONPath(%q) succeeded, then failed on its String(): %v", s, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip of %q: %#v != %#v", s, p, q)
		}
		if len(p.steps) > maxPathSteps {
			t.Fatalf("%q has %d steps", s, len(p.steps))
		}
		if _, err := p.Eval(doc); err != nil && !errors.Is(err, ErrNoValue) {
			t.Fatalf("Eval(%q) = %v, want ErrNoValue", s, err)
		}
	})
}

// checkShape asserts that a loaded check's shape block is defaulted and
// coherent: detectors can always give a verdict.
func checkShape(t *testing.T, c *Check) {
	t.Helper()
	s := c.Shape
	if s == nil {
		return
	}
	if c.Heartbeat != nil || s.Seasonality == "" || s.HalfLife <= 0 || s.Warmup <= 0 || s.Slots() < 1 {
		t.Fatalf("check %q: shape not defaulted: %+v", c.ID, s)
	}
	if c.Series != nil {
		if s.TailShift != nil || s.SlowRise != nil || s.Recurring != nil && s.Spike == nil {
			t.Fatalf("check %q: series shape has latency detectors or recurring without spike: %+v", c.ID, s)
		}
		return
	}
	if s.Spike != nil || s.Drop != nil || s.Dip != nil || s.LevelShift != nil || s.Recurring != nil || s.Window < c.Interval || s.MinSamples < 5 ||
		int(s.Window/c.Interval) < s.MinSamples || s.Bucket() <= 0 {
		t.Fatalf("check %q: latency shape incoherent: %+v", c.ID, s)
	}
	if r := s.SlowRise; r != nil && (r.For < 3*s.Bucket() || r.Ratio <= 1 || s.TrendBuckets() > maxTrendBuckets) {
		t.Fatalf("check %q: slow_rise %+v with bucket %s", c.ID, r, s.Bucket())
	}
	if r := s.TailShift; r != nil && (r.Ratio <= 1 || r.MedianRatio <= 1) {
		t.Fatalf("check %q: tail_shift %+v", c.ID, r)
	}
}
