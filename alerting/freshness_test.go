package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/probes/wire"
)

// probedAt is a result of check from region probed at at.
func probedAt(check, region string, ok bool, at time.Time) wire.Result {
	r := result(check, region, ok)
	r.Time = at
	return r
}

// apply applies a batch of results from agent a1 of region at the
// fixture's clock, failing the test if it is refused.
func (f *fixture) apply(region string, seq uint64, results ...wire.Result) {
	f.t.Helper()
	b := f.batch(region, seq, results...)
	b.Created = f.clock.Now()
	if err := f.ev.Apply(b); err != nil {
		f.t.Fatalf("Apply: %v", err)
	}
}

// TestLateResultsAreHistory: results that arrive older than the check's
// max_result_age (71s for web: two 30s intervals, the 10s timeout and the
// 1s batch delay) are kept and counted in metrics, but are not the
// window's latest result and no failure rule counts them.
func TestLateResultsAreHistory(t *testing.T) {
	f := newFixture(t)
	if got := f.cfg.Checks[0].MaxResultAge; got != 71*time.Second {
		t.Fatalf("web's max_result_age = %s, want 71s", got)
	}
	old := f.clock.Now().Add(-5 * time.Minute)
	f.apply("us-east", 1, probedAt("web", "us-east", false, old), probedAt("web", "us-east", false, old.Add(30*time.Second)),
		probedAt("web", "us-east", false, old.Add(time.Minute)))
	w, _ := f.ev.Window("web", "us-east")
	if len(w.Samples) != 3 || !w.Samples[0].Late || w.Last != nil || w.Failures != 0 || w.Consecutive != 0 {
		t.Fatalf("after three late failures: %+v", w)
	}
	if got, _ := f.gathered("outpost_ingest_late_results_total", map[string]string{"region": "us-east"}); got != 3 {
		t.Errorf("late results counted %g, want 3", got)
	}

	// Fresh failures count; the late ones still do not.
	now := f.clock.Now()
	f.apply("us-east", 2, probedAt("web", "us-east", false, now.Add(-70*time.Second)), probedAt("web", "us-east", false, now))
	w, _ = f.ev.Window("web", "us-east")
	if w.Last == nil || !w.Last.Time.Equal(now) || w.Failures != 2 || w.Consecutive != 2 {
		t.Fatalf("after two fresh failures: last %+v, %d failures, %d consecutive; want 2 and 2", w.Last, w.Failures, w.Consecutive)
	}
	failing, _ := decide.RegionHealth(w, f.cfg.Checks[0].Failure, f.cfg.Checks[0].Recovery, false)
	if failing {
		t.Error("three late and two fresh failures tripped a rule of three consecutive")
	}
}

// TestRegionBackFromSilence: a region silent for stale_after or more
// counts again only with what it probed after it came back; what its
// agent spooled meanwhile, however recent, is history.
func TestRegionBackFromSilence(t *testing.T) {
	f := newFixture(t)
	f.apply("us-east", 1, probedAt("web", "us-east", true, f.clock.Now()))
	f.clock.Advance(2 * time.Minute) // silent beyond stale_after (30s)
	back := f.clock.Now()
	// The spool: failures from while the region was cut off, the last
	// ones well within max_result_age.
	var spooled []wire.Result
	for at := back.Add(-110 * time.Second); at.Before(back); at = at.Add(10 * time.Second) {
		spooled = append(spooled, probedAt("web", "us-east", false, at))
	}
	f.apply("us-east", 2, spooled...)
	w, _ := f.ev.Window("web", "us-east")
	if w.Consecutive != 0 || w.Failures != 0 || !w.Last.Time.Equal(back.Add(-2*time.Minute)) {
		t.Fatalf("the replayed failures were judged: %d failures, last from %s", w.Failures, w.Last.Time)
	}
	f.clock.Advance(time.Second)
	f.apply("us-east", 3, probedAt("web", "us-east", false, f.clock.Now()))
	if w, _ = f.ev.Window("web", "us-east"); w.Consecutive != 1 {
		t.Fatalf("a failure probed after the return: %d consecutive, want 1", w.Consecutive)
	}
}

// TestAgedEvidenceDoesNotCount: regions whose latest result for a check
// has aged past its max_result_age (the agents still send heartbeats, but
// no longer this check's results) are live but no longer vote on it.
func TestAgedEvidenceDoesNotCount(t *testing.T) {
	f := newFixture(t)
	seq := map[string]uint64{}
	next := func(r string) uint64 { seq[r]++; return seq[r] }
	for _, r := range []string{"us-east", "eu-west", "ap-south"} {
		f.apply(r, next(r), probedAt("web", r, true, f.clock.Now()))
	}
	state := func() (decide.CheckState, string) {
		f.ev.evaluate(context.Background(), f.clock.Now(), "web")
		for _, c := range f.ev.Snapshot().Checks {
			if c.ID == "web" {
				return c.State, c.Summary
			}
		}
		t.Fatal("web is not in the snapshot")
		return "", ""
	}
	if s, sum := state(); s != decide.StateOK {
		t.Fatalf("fresh passes: %s (%s)", s, sum)
	}
	for range 4 { // 80s of heartbeats only
		f.clock.Advance(20 * time.Second)
		for _, r := range []string{"us-east", "eu-west", "ap-south"} {
			f.apply(r, next(r))
		}
	}
	if s, sum := state(); s != decide.StateUnknown || !strings.Contains(sum, "(no fresh result: ap-south, eu-west, us-east)") {
		t.Fatalf("evidence 80s old: %s (%s), want UNKNOWN for want of fresh results", s, sum)
	}
}
