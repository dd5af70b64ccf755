package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/history"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// Two days of results every 5 minutes from three regions, the target down from
// 10:00 to 11:00 on the second: the history holds exactly an hour DOWN
// that day, an incident with its trigger and resolve, the probes and
// failures per region, and a restart on the same data dir keeps it all.
func TestHistoryOfTwoDays(t *testing.T) {
	cfg := regionConfig(t, "us-east", `checks:
  - id: web
    failure: {consecutive: 1}
    recovery: {consecutive: 1}
    http: {url: "https://example.test/"}
`)
	day1 := time.Date(2030, 3, 4, 0, 0, 0, 0, time.UTC)
	clk := clocktest.New(day1)
	dir := t.TempDir()
	notes := &notifytest.Recorder{}
	ev, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	down := func(at time.Time) bool {
		return at.Day() == 5 && at.Hour() == 10
	}
	var seq uint64
	end := day1.AddDate(0, 0, 2)
	// A result from every region and a tick every 5 minutes: as often as
	// the time between verdicts may be (history.MaxGap), and few enough
	// batches (each one's sequence is written durably) to keep it short.
	const step = history.MaxGap
	for now := day1; now.Before(end); now = now.Add(step) {
		if d := now.Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		seq++
		for _, region := range cfg.Regions {
			r := wire.Result{V: 1, Check: "web", Region: region, Time: now, OK: !down(now), Duration: 0.040}
			if !r.OK {
				r.Reason = "status 503, want 2xx"
			}
			if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: seq, Created: now, Results: []wire.Result{r}}); err != nil {
				t.Fatal(err)
			}
		}
		ev.tick(context.Background(), now)
	}
	h, ok := ev.History("web")
	if !ok || len(h.Days) != 2 {
		t.Fatalf("history %v, %d days", ok, len(h.Days))
	}
	d2 := h.Days[1]
	if d2.Date != "2030-03-05" || d2.Seconds[history.StateDown] != 3600 || d2.Worst() != history.StateDown {
		t.Errorf("day 2: %s %v worst %d, want an hour DOWN", d2.Date, d2.Seconds, d2.Worst())
	}
	if got := d2.Observed(); got != 86400-300 { // the last step is credited at the next verdict
		t.Errorf("day 2 observed %d s", got)
	}
	if len(d2.Regions) != 3 || d2.Regions[0].Probes != 288 || d2.Regions[0].Failures != 12 {
		t.Errorf("day 2 regions %+v", d2.Regions)
	}
	if p := d2.Regions[0].P50; p < 0.036 || p > 0.044 {
		t.Errorf("p50 %v, want about 40 ms", p)
	}
	if d1 := h.Days[0]; d1.Observed() != 86400 || d1.Worst() != history.StateOK {
		t.Errorf("day 1: %v", d1.Seconds)
	}
	// Each region's result is judged alone (the others' are older than
	// max_result_age), so DOWN comes with the second failing region.
	if len(h.Incidents) != 1 {
		t.Fatalf("incidents %+v", h.Incidents)
	}
	in := h.Incidents[0]
	if in.Kind != "down" || !in.OpenedAt.Equal(day1.AddDate(0, 0, 1).Add(10*time.Hour)) ||
		!in.ResolvedAt.Equal(day1.AddDate(0, 0, 1).Add(11*time.Hour)) || len(in.Regions) != 2 || len(in.Notes) != 2 {
		t.Errorf("incident %+v", in)
	}
	up, _ := h.Uptime(end.Add(-time.Second), 1)
	if want := 1 - 3600.0/float64(86400-300); up != want {
		t.Errorf("uptime of day 2 %v, want %v", up, want)
	}
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}

	restarted, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	again, _ := restarted.History("web")
	if len(again.Days) != 2 || again.Days[1].Seconds != d2.Seconds || again.Days[1].Regions[0].Probes != 288 ||
		len(again.Incidents) != 1 || !again.Incidents[0].ResolvedAt.Equal(in.ResolvedAt) || again.State != "OK" {
		t.Errorf("after a restart: %+v", again)
	}
}
