package alerting

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// The shape tests drive an evaluator in process with deterministic
// synthetic series: a seeded generator, a fake clock, and results applied
// as the in-process agent applies them. A simulated week takes a second.

// simStart is a Monday, midnight UTC.
var simStart = time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// shapeSim is an evaluator fed by generators.
type shapeSim struct {
	t     *testing.T
	cfg   *checks.Config
	clk   *clocktest.Fake
	ev    *Evaluator
	notes *notifytest.Recorder
	reg   *prometheus.Registry
	rng   *rand.Rand
	// firstFailure is when the first failing result was applied.
	firstFailure time.Time
	// probes counts the samples made per region, for generators that
	// affect an exact share of them.
	probes map[string]int
}

// sample is one probe's outcome as a generator makes it.
type sample struct {
	ok     bool
	phases wire.Phases
	value  float64 // series checks
}

// generator makes check's sample for region at now.
type generator func(s *shapeSim, region string, now time.Time) sample

func newShapeSim(t *testing.T, yaml, dataDir string, start time.Time) *shapeSim {
	t.Helper()
	cfg, err := checks.LoadBytes("shape.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := &shapeSim{t: t, cfg: cfg, clk: clocktest.New(start), notes: &notifytest.Recorder{}, reg: prometheus.NewRegistry(), rng: rand.New(rand.NewPCG(7, 11)), probes: map[string]int{}}
	s.ev, err = New(cfg, Options{Clock: s.clk, Notifier: s.notes, DataDir: dataDir, Registerer: s.reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.ev.Close() })
	return s
}

// run applies one result per region of check every interval until the
// clock reaches end, ticking the evaluator as Run would.
func (s *shapeSim) run(check string, end time.Time, gen generator) {
	s.t.Helper()
	c := s.ev.plan.Load().checks[check]
	for now := s.clk.Now(); now.Before(end); now = s.clk.Now() {
		for _, region := range c.Regions {
			s.probes[region]++
			smp := gen(s, region, now)
			r := wire.Result{V: 1, Check: check, Type: c.Type(), Region: region, Time: now, OK: smp.ok, Phases: smp.phases}
			v := smp.phases.Values()
			for _, x := range v {
				r.Duration += x
			}
			if c.Series != nil {
				val := smp.value
				r.Observed.Value, r.Duration = &val, 0.01
			}
			if !smp.ok {
				r.Reason = "timed out"
				if s.firstFailure.IsZero() {
					s.firstFailure = now
				}
			}
			b := wire.Batch{V: 1, Agent: "sim", Region: region, Seq: uint64(now.UnixNano()), Created: now, ConfigDigest: s.cfg.Digest, Results: []wire.Result{r}}
			if err := s.ev.Apply(b); err != nil {
				s.t.Fatalf("Apply at %s: %v", now, err)
			}
		}
		s.ev.tick(context.Background(), now)
		s.clk.Advance(c.Interval)
	}
}

// shapeNotes returns the shape and forecast notifications sent.
func (s *shapeSim) shapeNotes(kind decide.IncidentKind) []notify.Notification {
	var out []notify.Notification
	for _, n := range s.notes.Delivered() {
		if n.Kind == "check_"+string(kind) {
			out = append(out, n)
		}
	}
	return out
}

// triggers returns the trigger notifications of kind.
func (s *shapeSim) triggers(kind decide.IncidentKind) []notify.Notification {
	var out []notify.Notification
	for _, n := range s.shapeNotes(kind) {
		if n.Action == notify.ActionTrigger {
			out = append(out, n)
		}
	}
	return out
}

// noise is a log-normal factor with the given sigma.
func (s *shapeSim) noise(sigma float64) float64 { return math.Exp(sigma * s.rng.NormFloat64()) }

// seasonal is 1 ± amp over the day, highest at 15:00 UTC.
func seasonal(now time.Time, amp float64) float64 {
	h := float64(now.UTC().Hour()) + float64(now.UTC().Minute())/60
	return 1 + amp*math.Sin(2*math.Pi*(h-9)/24)
}

// normalLatency is a healthy HTTPS probe: 40 ms at p50 varying ±30% over
// the day, log-normal noise, and one probe in 200 three times slower.
func normalLatency(s *shapeSim, _ string, now time.Time) sample {
	f := seasonal(now, 0.3)
	p := wire.Phases{
		Resolve:    0.002 * s.noise(0.2),
		Connect:    0.004 * f * s.noise(0.2),
		TLS:        0.008 * f * s.noise(0.15),
		Processing: 0.025 * f * s.noise(0.15),
		Transfer:   0.001 * s.noise(0.2),
	}
	if s.rng.IntN(200) == 0 {
		p.Processing *= 3
	}
	return sample{ok: true, phases: p}
}

const shapeSimConfig = `version: 1
regions: [us-east, eu-west, ap-south]
checks:
  - id: web
    interval: 30s
    http: {url: "https://127.0.0.1:8443/"}
`

// warmWeek is two days of normal latency: every slot of the day warm.
func warmDays(s *shapeSim, days int) {
	s.run("web", s.clk.Now().Add(time.Duration(days)*day), normalLatency)
	if n := s.shapeNotes(decide.IncidentShape); len(n) > 0 {
		s.t.Fatalf("normal data raised %d shape notifications; first: %s", len(n), n[0].Summary)
	}
}

// tailIn returns a generator that, from start on, slows one probe in seven
// (14%) of the given regions by 80–200 ms in TCP connect (row 4 of
// SCENARIOS.md: a share of requests slow while the median is fine).
func tailIn(start time.Time, regions ...string) generator {
	return func(s *shapeSim, region string, now time.Time) sample {
		smp := normalLatency(s, region, now)
		if !now.Before(start) && slices.Contains(regions, region) && s.probes[region]%7 == 3 {
			smp.phases.Connect += 0.08 + 0.12*s.rng.Float64()
		}
		return smp
	}
}

func TestShapeNoFalseFindingOnANormalWeek(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 7)
	st := s.ev.Snapshot()
	sh := st.Checks[0].Regions[0].Shape
	if sh == nil || !sh.Warm || sh.Latency.Samples < 20 {
		t.Fatalf("after a week the baseline should be warm with a full window: %+v", sh)
	}
	if p50 := sh.Latency.Quantiles.P50; p50 < 0.02 || p50 > 0.08 {
		t.Errorf("window p50 = %v, want about 0.04", p50)
	}
}

func TestShapeTailShiftInOneRegionIsThatRegionsPath(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	start := s.clk.Now()
	s.run("web", start.Add(40*time.Minute), tailIn(start, "eu-west"))
	tr := s.triggers(decide.IncidentShape)
	if len(tr) != 1 {
		t.Fatalf("got %d shape triggers, want 1: %+v", len(tr), tr)
	}
	n := tr[0]
	if n.Details["shape.scope"] != decide.ScopeRegion || !strings.Contains(n.Summary, "eu-west only") || n.Route != checks.RouteWarning {
		t.Errorf("want a warning scoped to eu-west's path; got route %s, details %v, summary %q", n.Route, n.Details, n.Summary)
	}
	if !strings.Contains(n.Details["shape.detectors"], shape.DetectorTailShift) || !strings.Contains(n.Summary, "p50 stayed") {
		t.Errorf("want a tail shift with the median stable; got %q", n.Summary)
	}
	if !strings.Contains(n.Summary, "TCP connect") {
		t.Errorf("the slow phase is connect; summary %q", n.Summary)
	}
	if _, ok := n.Details["shape.us-east"]; ok {
		t.Errorf("us-east saw nothing, yet has details: %v", n.Details)
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
	}{
		{"outpost_shape_finding", map[string]string{"region": "eu-west", "detector": shape.DetectorTailShift}},
		{"outpost_latency_seconds", map[string]string{"region": "eu-west", "q": "0.99"}},
		{"outpost_latency_usual_seconds", map[string]string{"region": "us-east", "q": "0.5"}},
		{"outpost_shape_memory_bytes", nil},
	} {
		if v, ok := gatheredFrom(t, s.reg, m.name, m.labels); !ok || v <= 0 {
			t.Errorf("metric %s%v = %v, %v; want a positive value", m.name, m.labels, v, ok)
		}
	}
	if _, ok := gatheredFrom(t, s.reg, "outpost_shape_finding", map[string]string{"region": "us-east"}); ok {
		t.Error("us-east has no finding, yet outpost_shape_finding has it")
	}
	// Back to normal: the warning resolves.
	s.run("web", s.clk.Now().Add(30*time.Minute), normalLatency)
	if got := len(s.shapeNotes(decide.IncidentShape)); got != 2 || s.shapeNotes(decide.IncidentShape)[1].Action != notify.ActionResolve {
		t.Errorf("want the trigger then a resolve, got %d notifications", got)
	}
}

func TestShapeTailShiftInEveryRegionIsTheService(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	start := s.clk.Now()
	s.run("web", start.Add(40*time.Minute), tailIn(start, "us-east", "eu-west", "ap-south"))
	tr := s.triggers(decide.IncidentShape)
	if len(tr) != 1 {
		t.Fatalf("got %d shape triggers, want 1", len(tr))
	}
	if tr[0].Details["shape.scope"] != decide.ScopeService || !strings.Contains(tr[0].Summary, "the service itself") {
		t.Errorf("want scope service; got %v / %q", tr[0].Details, tr[0].Summary)
	}
}

func TestShapeSlowRiseSeenBeforeTheFirstFailure(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	// Row 2 of SCENARIOS.md: latency climbs for 47 minutes, everywhere,
	// until probes time out (10s).
	start := s.clk.Now()
	rise := func(s *shapeSim, region string, now time.Time) sample {
		smp := normalLatency(s, region, now)
		smp.phases.Processing += 0.15 * now.Sub(start).Minutes() * s.noise(0.1)
		if smp.phases.Processing > 9.9 {
			smp.ok = false
		}
		return smp
	}
	s.run("web", start.Add(80*time.Minute), rise)
	if s.firstFailure.IsZero() {
		t.Fatal("the rise never made a probe fail; the test is not testing anything")
	}
	// The rise first shows as a tail shift; the incident's update names the
	// slow rise.
	var n notify.Notification
	for _, tr := range s.triggers(decide.IncidentShape) {
		if strings.Contains(tr.Details["shape.detectors"], shape.DetectorSlowRise) {
			n = tr
			break
		}
	}
	if n.Summary == "" {
		t.Fatalf("no slow_rise finding for a 47-minute rise; triggers: %+v", s.triggers(decide.IncidentShape))
	}
	lead := s.firstFailure.Sub(n.Time)
	t.Logf("slow rise found %s after it began, %s before the first failure: %s", n.Time.Sub(start), lead, n.Summary)
	if lead < 15*time.Minute {
		t.Errorf("found the rise only %s before the first failure, want at least 15m", lead)
	}
	if n.Details["shape.scope"] != decide.ScopeService || n.Key != decide.DedupKey("web", decide.IncidentShape) {
		t.Errorf("want slow_rise scoped to the service, under the shape incident's key; got %v", n.Details)
	}
	if !strings.Contains(n.Summary, "server processing") {
		t.Errorf("the phase that rose is processing; got %q", n.Summary)
	}
	// The down page supersedes the warning.
	if res := s.shapeNotes(decide.IncidentShape); res[len(res)-1].Action != notify.ActionResolve {
		t.Errorf("the shape warning should resolve once the check is DOWN")
	}
}

func TestShapeDNSSlowdownAttributedToDNS(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	// Row 1 of SCENARIOS.md: a rate-limited resolver makes every lookup
	// from ap-south slow.
	start := s.clk.Now()
	dns := func(s *shapeSim, region string, now time.Time) sample {
		smp := normalLatency(s, region, now)
		if region == "ap-south" {
			smp.phases.Resolve += 0.25 * s.noise(0.3)
		}
		return smp
	}
	s.run("web", start.Add(45*time.Minute), dns)
	tr := s.triggers(decide.IncidentShape)
	if len(tr) != 1 {
		t.Fatalf("got %d shape triggers, want 1", len(tr))
	}
	n := tr[0]
	if !strings.Contains(n.Details["shape.ap-south"], "mostly DNS lookup") || n.Details["shape.scope"] != decide.ScopeRegion {
		t.Errorf("want the DNS phase named, in ap-south only; got %v", n.Details)
	}
}

func TestShapeNoVerdictBeforeWarmUp(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	// A tail from the first minute: nothing is known yet to compare with.
	s.run("web", simStart.Add(3*time.Hour), tailIn(simStart, "us-east", "eu-west", "ap-south"))
	if n := s.shapeNotes(decide.IncidentShape); len(n) > 0 {
		t.Fatalf("a finding before any slot was warm: %s", n[0].Summary)
	}
	if sh := s.ev.Snapshot().Checks[0].Regions[0].Shape; sh.Findings != nil {
		t.Fatalf("findings before warm-up: %+v", sh.Findings)
	}
}

func TestShapeDetectorSwitchedOff(t *testing.T) {
	s := newShapeSim(t, shapeSimConfig+"    shape: {tail_shift: false}\n", "", simStart)
	warmDays(s, 2)
	start := s.clk.Now()
	s.run("web", start.Add(40*time.Minute), tailIn(start, "us-east", "eu-west", "ap-south"))
	if n := s.triggers(decide.IncidentShape); len(n) > 0 {
		t.Fatalf("tail_shift is off, yet: %s", n[0].Summary)
	}
}

// TestShapeMetricsPassPromtool lints the shape metrics, findings and
// baselines included, with Prometheus's own linter; it skips without
// promtool, except in CI.
func TestShapeMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found in CI; .ci/run must install the prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus); CI runs this test")
	}
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	start := s.clk.Now()
	s.run("web", start.Add(40*time.Minute), tailIn(start, "eu-west"))
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), "outpost_shape_finding{") {
		t.Fatalf("no finding in the exposition; the lint would prove little:\n%s", buf.String())
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
