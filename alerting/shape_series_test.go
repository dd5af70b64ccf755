package alerting

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
)

const seriesSimConfig = `version: 1
regions: [us-east]
checks:
  - id: rps
    interval: 1m
    series:
      prometheus: {url: "http://127.0.0.1:9090", query: "sum(rate(http_requests_total[1m]))"}
    shape:
      page: true
      spike: {max_ratio: 4}
      recurring: {lead: 15m}
`

// trafficOn is requests per second: 100 on average, ±50% over the day,
// with 10% noise, and spikes at 09:00 UTC for the minutes and heights the
// spikes map gives per day (counted from simStart).
func trafficOn(spikes map[int]float64) generator {
	return func(s *shapeSim, _ string, now time.Time) sample {
		v := 100 * seasonal(now, 0.5) * s.noise(0.1)
		d := int(now.Sub(simStart) / day)
		since := now.Sub(now.Truncate(day).Add(9 * time.Hour))
		if h, ok := spikes[d]; ok && since >= 0 && since < 7*time.Minute {
			v *= h
		}
		return sample{ok: true, value: v}
	}
}

func TestSeriesDailySpikePagedAndTheNextWarnedAhead(t *testing.T) {
	s := newShapeSim(t, seriesSimConfig, "", simStart)
	// Row 1 of SCENARIOS.md: fleets hit the host at the same minute every
	// day; the spike grows from 3.3× (under the 4× threshold) to 6×.
	s.run("rps", simStart.Add(8*day), trafficOn(map[int]float64{4: 3.3, 5: 3.3, 6: 6, 7: 6}))

	spikes := s.triggers(decide.IncidentShape)
	if len(spikes) != 2 {
		t.Fatalf("got %d spike pages, want 2 (days 7 and 8): %+v", len(spikes), spikes)
	}
	for i, n := range spikes {
		want := simStart.Add(time.Duration(6+i)*day + 9*time.Hour)
		if n.Time.Before(want) || n.Time.After(want.Add(3*time.Minute)) || n.Route != checks.RouteCritical {
			t.Errorf("spike page %d at %s on route %s, want critical within 3m of %s", i, n.Time, n.Route, want)
		}
		if !strings.Contains(n.Summary, "spike:") || !strings.Contains(n.Summary, "usual") {
			t.Errorf("spike page should explain itself: %q", n.Summary)
		}
	}
	ahead := s.triggers(decide.IncidentForecast)
	if len(ahead) != 2 {
		t.Fatalf("got %d spike warnings ahead, want 2 (days 7 and 8): %+v", len(ahead), ahead)
	}
	for i, n := range ahead {
		due := simStart.Add(time.Duration(6+i)*day + 9*time.Hour)
		if lead := due.Sub(n.Time); lead < 5*time.Minute || lead > 15*time.Minute || n.Route != checks.RouteWarning {
			t.Errorf("warning %d came %s ahead on route %s, want 5–15m ahead on warning: %s", i, lead, n.Route, n.Summary)
		}
		if !strings.Contains(n.Summary, "spike expected") || !strings.Contains(n.Summary, "09:0") {
			t.Errorf("warning should say when: %q", n.Summary)
		}
	}
	if n := s.shapeNotes(decide.IncidentForecast); n[len(n)-1].Action != notify.ActionResolve {
		t.Errorf("the warning ahead should resolve once the spike's time has passed")
	}
}

func TestSeriesDropToNearZero(t *testing.T) {
	s := newShapeSim(t, seriesSimConfig, "", simStart)
	s.run("rps", simStart.Add(2*day+14*time.Hour), trafficOn(nil))
	if n := s.shapeNotes(decide.IncidentShape); len(n) > 0 {
		t.Fatalf("normal traffic raised: %s", n[0].Summary)
	}
	dead := func(s *shapeSim, region string, now time.Time) sample {
		return sample{ok: true, value: 0.5 * s.noise(0.1)}
	}
	s.run("rps", s.clk.Now().Add(10*time.Minute), dead)
	tr := s.triggers(decide.IncidentShape)
	if len(tr) != 1 || !strings.Contains(tr[0].Details["shape.detectors"], shape.DetectorDrop) || !strings.Contains(tr[0].Summary, "% of the usual") {
		t.Fatalf("want one drop page; got %+v", tr)
	}
}

func TestShapeBaselineSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	before := s.ev.Snapshot().Checks[0].Regions[1].Shape
	// Learning ran without a data dir, which would fsync every batch's
	// sequence number; the baselines are saved to one now.
	s.ev.dataDir = dir
	if err := s.ev.saveShapes(); err != nil {
		t.Fatal(err)
	}

	// A new evaluator on the same data dir.
	restart := s.clk.Now()
	s2 := newShapeSim(t, shapeSimConfig, dir, restart)
	after := s2.ev.Snapshot().Checks[0].Regions[1].Shape
	if !after.Warm || after.Usual != before.Usual {
		t.Fatalf("restored baseline: warm %v usual %+v, want warm and %+v", after.Warm, after.Usual, before.Usual)
	}
	// No warm-up after the restart: a tail shift is found within the
	// window and the settling bucket.
	s2.run("web", restart.Add(40*time.Minute), tailIn(restart, "eu-west"))
	if tr := s2.triggers(decide.IncidentShape); len(tr) != 1 || !strings.Contains(tr[0].Summary, "eu-west only") {
		t.Fatalf("after a restart, want the tail shift found at once; got %+v", tr)
	}
}

func TestShapeCorruptBaselineFileStartsAfresh(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, shapesFile), []byte("not a gob file"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newShapeSim(t, shapeSimConfig, dir, simStart)
	if sh := s.ev.Snapshot().Checks[0].Regions[0].Shape; sh.Warm {
		t.Fatal("a corrupt file cannot give a warm baseline")
	}
	setAsideOf(t, filepath.Join(dir, shapesFile))
	s.run("web", simStart.Add(time.Hour), normalLatency)
	if err := s.ev.saveShapes(); err != nil {
		t.Fatalf("saving over a corrupt file: %v", err)
	}
}

// A restart in the middle of a shape incident neither resolves it (the
// new windows are empty, which is not the all-clear) nor pages it again.
func TestShapeIncidentSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := newShapeSim(t, shapeSimConfig, "", simStart)
	warmDays(s, 2)
	s.ev.dataDir = dir // from here on, incidents are saved (see above)
	if err := s.ev.openState(dir); err != nil {
		t.Fatal(err)
	}
	start := s.clk.Now()
	s.run("web", start.Add(30*time.Minute), tailIn(start, "eu-west"))
	if tr := s.triggers(decide.IncidentShape); len(tr) != 1 {
		t.Fatalf("before the restart: %d triggers, want 1", len(tr))
	}
	if err := s.ev.saveShapes(); err != nil {
		t.Fatal(err)
	}
	if err := s.ev.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := newShapeSim(t, shapeSimConfig, dir, s.clk.Now())
	s2.run("web", s2.clk.Now().Add(30*time.Minute), tailIn(start, "eu-west"))
	if n := s2.shapeNotes(decide.IncidentShape); len(n) != 0 {
		t.Fatalf("the restart sent %s: %s", n[0].Action, n[0].Summary)
	}
	s2.run("web", s2.clk.Now().Add(30*time.Minute), normalLatency)
	if n := s2.shapeNotes(decide.IncidentShape); len(n) != 1 || n[0].Action != notify.ActionResolve {
		t.Fatalf("after recovery want one resolve, got %+v", n)
	}
}

// A series check's model survives a restart through the data dir's
// shapes.gob: the restored tracker judges at once, against the same usual
// value, and a drop right after the restart pages without a warm-up.
func TestSeriesModelSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := newShapeSim(t, seriesSimConfig, "", simStart)
	s.run("rps", simStart.Add(2*day+14*time.Hour), trafficOn(nil))
	before := s.ev.Snapshot().Checks[0].Regions[0].Shape
	s.ev.dataDir = dir
	if err := s.ev.saveShapes(); err != nil {
		t.Fatal(err)
	}
	if !before.Warm {
		t.Fatal("not warm before the restart")
	}

	restart := s.clk.Now()
	s2 := newShapeSim(t, seriesSimConfig, dir, restart)
	dead := func(s *shapeSim, region string, now time.Time) sample {
		return sample{ok: true, value: 0.5 * s.noise(0.1)}
	}
	s2.run("rps", restart.Add(3*time.Minute), dead)
	tr := s2.triggers(decide.IncidentShape)
	if len(tr) != 1 || !strings.Contains(tr[0].Summary, "drop:") {
		t.Fatalf("after a restart, want a drop paged at once; got %+v", tr)
	}
	if tr[0].Time.Sub(restart) > time.Minute {
		t.Errorf("paged %s after the restart, want within a minute", tr[0].Time.Sub(restart))
	}
}
