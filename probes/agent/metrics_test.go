package agent

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func sampleResults() []wire.Result {
	return []wire.Result{
		{V: 1, Check: "web-home", Type: "http", Region: "us-east", OK: true, Duration: 0.25,
			Phases:   wire.Phases{Resolve: 0.01, Connect: 0.02, TLS: 0.05, Processing: 0.1, Transfer: 0.07},
			Observed: wire.Observed{StatusCode: 200, TLS: &wire.TLSObservation{Version: "1.3", NotAfter: time.Unix(1_900_000_000, 0)}}},
		{V: 1, Check: "web-home", Type: "http", Region: "eu-west", OK: false, Duration: 10,
			Reason: "timed out", Phases: wire.Phases{Resolve: 0.5}},
		{V: 1, Check: "redis", Type: "tcp", Region: "us-east", OK: true, Duration: 0.001},
		{V: 1, Check: "www-a", Type: "dns", Region: "us-east", OK: false, Duration: 0.002, Phases: wire.Phases{Resolve: 0.002},
			Observed: wire.Observed{DNS: []wire.DNSObservation{{Resolver: "system", Rcode: "NOERROR", Answers: []string{"198.51.100.7"}}}}},
		{V: 1, Check: "rps", Type: "series", Region: "us-east", OK: true, Duration: 0.01, Reason: "value 1234.5",
			Observed: wire.Observed{StatusCode: 200, Value: new(1234.5)}},
		{V: 1, Check: "rps", Type: "series", Region: "eu-west", OK: false, Duration: 0.01, Reason: "query returned no series"},
	}
}

// gathered returns the value of the series name{labels}, and whether it
// exists, from everything reg exposes.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.Metric {
			have := map[string]string{}
			for _, lp := range m.Label {
				have[lp.GetName()] = lp.GetValue()
			}
			if len(have) != len(labels) {
				continue
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			}
		}
	}
	return 0, false
}

func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.Metric)
		}
	}
	return 0
}

func TestMetricsValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sampleResults() {
		m.Observe(&r)
	}
	cr := func(check, region string, extra ...string) map[string]string {
		l := map[string]string{"check": check, "region": region}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"success us-east", "probe_success", cr("web-home", "us-east"), 1},
		{"success eu-west", "probe_success", cr("web-home", "eu-west"), 0},
		{"duration", "probe_duration_seconds", cr("web-home", "eu-west"), 10},
		{"status", "probe_http_status_code", cr("web-home", "us-east"), 200},
		{"tls phase", "probe_http_duration_seconds", cr("web-home", "us-east", "phase", "tls"), 0.05},
		{"cert expiry", "probe_ssl_earliest_cert_expiry", cr("web-home", "us-east"), 1_900_000_000},
		{"dns lookup", "probe_dns_lookup_time_seconds", cr("web-home", "eu-west"), 0.5},
		{"failures counted", "outpost_probes_total", cr("web-home", "eu-west", "result", "failure"), 1},
		{"successes counted", "outpost_probes_total", cr("web-home", "eu-west", "result", "success"), 0},
		{"series value", "probe_series_value", cr("rps", "us-east"), 1234.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := gathered(t, reg, tc.metric, tc.labels)
			if !ok || got != tc.want {
				t.Errorf("%s%v = %v (present %v), want %v", tc.metric, tc.labels, got, ok, tc.want)
			}
		})
	}
	if n := seriesCount(t, reg, "probe_http_status_code"); n != 2 {
		t.Errorf("probe_http_status_code has %d series, want 2 (tcp and dns checks have none)", n)
	}
	if n := seriesCount(t, reg, "probe_series_value"); n != 1 {
		t.Errorf("probe_series_value has %d series, want 1 (only the series check that read a value)", n)
	}
	keep := map[string]bool{}
	for _, r := range sampleResults() {
		keep[JobKey(r.Check, r.Region)] = true
	}
	delete(keep, JobKey("web-home", "eu-west"))
	m.Keep(keep)
	if n := seriesCount(t, reg, "probe_success"); n != len(sampleResults())-1 {
		t.Errorf("after a reload without web-home in eu-west probe_success has %d series, want %d", n, len(sampleResults())-1)
	}
}

// TestMetricsPassPromtool lints the exposition with Prometheus's own linter.
// CI installs promtool (Debian package prometheus); locally the test skips
// without it, but never in CI.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found in CI; .ci/run must install the prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CI runs this test")
	}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sampleResults() {
		m.Observe(&r)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s\nexposition:\n%s", err, out, buf.String())
	}
}

func TestMetricsDNSAnswerInfoFollowsChanges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := func(answers ...string) *wire.Result {
		return &wire.Result{Check: "www-a", Type: "dns", Region: "us-east", OK: true, Observed: wire.Observed{DNS: []wire.DNSObservation{
			{Resolver: "system", Server: "127.0.0.53:53", Rcode: "NOERROR", Answers: answers},
			{Resolver: "authoritative", NS: "ns1.example.com", Rcode: "NOERROR", Answers: []string{"203.0.113.10"}},
		}}}
	}
	m.Observe(res("203.0.113.10"))
	first := answersHash(&wire.DNSObservation{Rcode: "NOERROR", Answers: []string{"203.0.113.10"}})
	info := func(resolver, hash string) map[string]string {
		return map[string]string{"check": "www-a", "region": "us-east", "resolver": resolver, "answers_hash": hash}
	}
	if got, _ := gathered(t, reg, "probe_dns_answer_info", info("system", first)); got != 1 {
		t.Fatalf("info for the first answer set = %v", got)
	}
	m.Observe(res("198.51.100.7", "203.0.113.10"))
	if n := seriesCount(t, reg, "probe_dns_answer_info"); n != 2 {
		t.Errorf("probe_dns_answer_info has %d series after a change, want 2 (one per server; the old set deleted)", n)
	}
	if _, ok := gathered(t, reg, "probe_dns_answer_info", info("system", first)); ok {
		t.Errorf("the old answer set's info series is still there")
	}
	if got, _ := gathered(t, reg, "probe_dns_answer_rrs", map[string]string{"check": "www-a", "region": "us-east", "resolver": "system"}); got != 2 {
		t.Errorf("probe_dns_answer_rrs = %v, want 2", got)
	}
	// The authoritative server's unchanged answer keeps its hash; equal
	// answers from different servers hash the same.
	if got, _ := gathered(t, reg, "probe_dns_answer_info", info("ns1.example.com", first)); got != 1 {
		t.Errorf("authoritative info series lost: %v", got)
	}
}

// probe_series_value is exposed only while the latest probe read a value:
// a failed read removes it rather than leaving the last number looking
// current.
func TestMetricsSeriesValueOnlyWhileRead(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"check": "rps", "region": "us-east"}
	steps := []struct {
		name    string
		ok      bool
		value   *float64
		want    float64
		present bool
	}{
		{"read", true, new(10.0), 10, true},
		{"failed read", false, nil, 0, false},
		{"read again", true, new(12.5), 12.5, true},
	}
	for _, st := range steps {
		m.Observe(&wire.Result{Check: "rps", Type: "series", Region: "us-east", OK: st.ok, Observed: wire.Observed{Value: st.value}})
		got, ok := gathered(t, reg, "probe_series_value", labels)
		if ok != st.present || got != st.want {
			t.Errorf("after %s: probe_series_value = %v (present %v), want %v (present %v)", st.name, got, ok, st.want, st.present)
		}
	}
	m.Observe(&wire.Result{Check: "web", Type: "http", Region: "us-east", OK: true, Observed: wire.Observed{Value: new(1.0)}})
	if n := seriesCount(t, reg, "probe_series_value"); n != 1 {
		t.Errorf("probe_series_value has %d series, want 1: only series checks have one", n)
	}
}
