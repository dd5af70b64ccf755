package alerting

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEndToEndAgentSpoolUnwritableKeepsRegionLive: an agent whose spool
// cannot be written (here a path under a regular file, which fails even for
// root) still delivers from memory, so its region stays LIVE and its
// results keep arriving. One agent's spool is unusable from the start,
// another's breaks while it runs.
func TestEndToEndAgentSpoolUnwritableKeepsRegionLive(t *testing.T) {
	cfg := e2eConfig(t, startTarget(t))
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	e := startEvaluator(t, cfg, clk)
	ev, notes := e.ev, e.notes

	notADir := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(notADir, []byte("a file where the state dir should be"), 0o600); err != nil {
		t.Fatal(err)
	}
	breaking := t.TempDir()
	startAgent(t, cfg, clk, "us-east", e.url, filepath.Join(notADir, "spool"))
	startAgent(t, cfg, clk, "eu-west", e.url, breaking)
	startAgent(t, cfg, clk, "ap-south", e.url, t.TempDir())
	advanceUntil(t, clk, 100*time.Millisecond, 30*time.Second, "every check from every region", func() bool {
		return allRegionsReported(ev, cfg)
	})
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "all regions live", func() bool {
		return stateOf(ev, "us-east") == decide.RegionLive && stateOf(ev, "eu-west") == decide.RegionLive && stateOf(ev, "ap-south") == decide.RegionLive
	})

	// eu-west's spool becomes a file under the running agent.
	if err := os.RemoveAll(breaking); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(breaking, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	lastSeen := func(region string) time.Time {
		w, ok := ev.Window("web", region)
		if !ok || w.Last == nil {
			return time.Time{}
		}
		return w.Last.Time
	}
	before := map[string]time.Time{"us-east": lastSeen("us-east"), "eu-west": lastSeen("eu-west")}
	// Three times stale_after: long enough for a silent region to go STALE.
	for range 3 * int(cfg.Reporting.StaleAfter/(100*time.Millisecond)) {
		clk.Advance(100 * time.Millisecond)
		clocktest.WaitIdle(t, settleLimit)
		for _, region := range cfg.Regions {
			if s := stateOf(ev, region); s != decide.RegionLive {
				t.Fatalf("%s is %s with its agent running", region, s)
			}
		}
	}
	for region, t0 := range before {
		if got := lastSeen(region); !got.After(t0) {
			t.Errorf("no new result from %s since %v (last %v)", region, t0, got)
		}
	}
	if stale := notesOf(notes, "region_stale"); len(stale) != 0 {
		t.Errorf("stale notifications %+v", stale)
	}
}
