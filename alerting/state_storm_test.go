package alerting

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// stormEvaluator is an evaluator of n checks in 3 regions, one failure
// making a region fail, with a data dir.
func stormEvaluator(t *testing.T, n int, dir string) (*Evaluator, *clocktest.Fake, []string) {
	t.Helper()
	regions := []string{"r1", "r2", "r3"}
	var y strings.Builder
	fmt.Fprintf(&y, "regions: [%s]\ndefaults: {interval: 30s, failure: {consecutive: 1}, recovery: {consecutive: 1}}\nchecks:\n", strings.Join(regions, ", "))
	for i := range n {
		fmt.Fprintf(&y, "  - {id: c%05d, http: {url: \"https://example.test/%d\"}}\n", i, i)
	}
	cfg, err := checks.LoadBytes("storm.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	ev, err := New(cfg, Options{Clock: clk, Notifier: &timingNotifier{}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return ev, clk, regions
}

// stormRound sends every region batches of n results, failing unless ok
// says otherwise for the check, and returns how many batches: each writes
// its agent's sequence record.
func stormRound(t *testing.T, ev *Evaluator, clk *clocktest.Fake, regions []string, n int, seq uint64, ok func(check, region string) bool) (batches int64) {
	t.Helper()
	for _, region := range regions {
		for start := 0; start < n; start += wire.MaxBatchResults {
			var res []wire.Result
			for i := start; i < min(start+wire.MaxBatchResults, n); i++ {
				id := fmt.Sprintf("c%05d", i)
				r := wire.Result{V: 1, Check: id, Type: "http", Region: region, Time: clk.Now(), OK: ok(id, region), Duration: 0.05}
				if !r.OK {
					r.Reason = "status 503, want 200"
				}
				res = append(res, r)
			}
			b := wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: seq*10000 + uint64(start), Created: clk.Now(), Results: res}
			if err := ev.Apply(b); err != nil {
				t.Fatal(err)
			}
			batches++
		}
	}
	return batches
}

// In a storm of 1,000 failing checks, each decision writes its own
// check's record and nothing else; once the storm is recorded, one check
// recovering in one region writes one record; and Close returns within
// seconds with the storm's state on disk. (BenchmarkStateSave measures
// 3,000; 1,000 keep this test at a few seconds under -race.)
func TestStormWritesOnlyWhatChanged(t *testing.T) {
	const n = 1000
	dir := t.TempDir()
	ev, clk, regions := stormEvaluator(t, n, dir)
	clk.Advance(2 * time.Minute) // past the warm-up
	failing := func(string, string) bool { return false }
	batches := stormRound(t, ev, clk, regions, n, 1, failing)
	if err := ev.state.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	storm := ev.state.Stats()
	open := 0
	for _, cd := range ev.plan.Load().deciders {
		if cd.state.AnyOpen() {
			open++
		}
	}
	if open != n {
		t.Fatalf("%d incidents open, want %d", open, n)
	}
	// Each check's state changes a few times in a storm (a region
	// failing, DOWN, the incident open, paged), each change one record:
	// never the whole set of checks per change.
	if storm.Records-batches > 3*n {
		t.Errorf("the storm wrote %d records for %d checks", storm.Records, n)
	}
	t.Logf("storm of %d checks: %d commits, %d records (%d of them the batches' sequence records), %d bytes (%.0f bytes a record)",
		n, storm.Commits, storm.Records, batches, storm.Bytes, float64(storm.Bytes)/float64(storm.Records))

	clk.Advance(30 * time.Second)
	batches = stormRound(t, ev, clk, regions, n, 2, func(check, region string) bool { return check == "c00007" && region == "r1" })
	if err := ev.state.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	one := ev.state.Stats()
	if got := one.Records - storm.Records - batches; got != 1 {
		t.Fatalf("one region of one check recovering wrote %d records besides the %d batches' sequence records, want 1", got, batches)
	}
	t.Logf("one check's change after the storm: %d records (%d of them the batches' sequence records), %d bytes", one.Records-storm.Records, batches, one.Bytes-storm.Bytes)

	clk.Advance(30 * time.Second)
	stormRound(t, ev, clk, regions, n, 3, func(string, string) bool { return true }) // every check resolves
	queued := ev.state.Stats().Queued
	start := time.Now()
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took > 5*time.Second {
		t.Errorf("Close took %s", took)
	}
	t.Logf("Close with %d changes queued: %s", queued, took)

	again, _, _ := stormEvaluator(t, n, dir)
	defer again.Close()
	if left := again.state.Stats(); left.Queued != 0 {
		t.Fatal(left)
	}
	records := 0
	again.state.ForEach(bucketIncidents, func(string, []byte) error { records++; return nil })
	if records != 0 {
		t.Fatalf("%d incident records after every check resolved, want none", records)
	}
}
