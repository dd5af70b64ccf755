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

// historyDays is the configuration of the history tests: web pages,
// secret is private.
const historyChecks = `checks:
  - id: web
    failure: {consecutive: 1}
    recovery: {consecutive: 1}
    labels: {service: storefront}
    http: {url: "https://example.test/"}
  - id: secret
    private: true
    failure: {consecutive: 1}
    recovery: {consecutive: 1}
    http: {url: "https://internal.example.test/"}
`

// feedTwoDays runs an evaluator with dir as its data dir through two days
// from day1: a result from every region and a tick every 5 minutes (as
// often as the time between verdicts may be, history.MaxGap, and few
// enough batches, each one's sequence written durably, to keep it short),
// every target down from 10:00 to 11:00 on the second day.
func feedTwoDays(t *testing.T, dir string, day1 time.Time) (*Evaluator, *clocktest.Fake) {
	t.Helper()
	cfg := regionConfig(t, "us-east", historyChecks)
	clk := clocktest.New(day1)
	ev, err := New(cfg, Options{Clock: clk, Notifier: &notifytest.Recorder{}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	end := day1.AddDate(0, 0, 2)
	for now := day1; now.Before(end); now = now.Add(history.MaxGap) {
		if d := now.Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		seq++
		down := now.Day() == day1.Day()+1 && now.Hour() == 10
		for _, region := range cfg.Regions {
			var rs []wire.Result
			for _, id := range []string{"web", "secret"} {
				r := wire.Result{V: 1, Check: id, Region: region, Time: now, OK: !down, Duration: 0.040}
				if down {
					r.Reason = "status 503 from https://internal.example.test/, want 2xx"
				}
				rs = append(rs, r)
			}
			if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: seq, Created: now, Results: rs}); err != nil {
				t.Fatal(err)
			}
		}
		ev.tick(context.Background(), now)
	}
	return ev, clk
}

// Two days of results every 5 minutes from three regions, the target down
// from 10:00 to 11:00 on the second: the history holds exactly an hour
// DOWN that day, an incident with its trigger and resolve, the probes and
// failures per region, and a restart on the same data dir keeps it all.
func TestHistoryOfTwoDays(t *testing.T) {
	day1 := time.Date(2030, 3, 4, 0, 0, 0, 0, time.UTC)
	end := day1.AddDate(0, 0, 2)
	dir := t.TempDir()
	ev, clk := feedTwoDays(t, dir, day1)
	cfg := ev.Config()
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
	if p, _ := d2.Regions[0].Quantiles(); p < 0.036 || p > 0.044 {
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

	restarted, err := New(cfg, Options{Clock: clk, Notifier: &notifytest.Recorder{}, DataDir: dir})
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
