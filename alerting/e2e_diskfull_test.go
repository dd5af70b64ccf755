package alerting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and returns
// it, or skips the test: mounting needs root (CAP_SYS_ADMIN), which CI
// containers may not give.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk needs a small tmpfs, and mounting one needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes dir's filesystem full and returns the filler's path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// The last pages too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			return path
		}
	}
}

// TestEndToEndDataDirFullBlamesTheEvaluator is issue 13's wrong blame: the
// evaluator's data dir (state and outbox) fills up while three agents
// report. The agents are fine and must look fine: no region goes STALE and
// no agent is called silent. The evaluator says what is wrong with itself
// (Health, for /healthz) and pages PagerDuty about its own disk, under its
// own name; when the disk has room again the page resolves.
func TestEndToEndDataDirFullBlamesTheEvaluator(t *testing.T) {
	disk := smallDisk(t, 4<<20)
	pd := notifytest.NewFakePagerDuty(t)
	target := startTarget(t)
	env := e2eEnv()
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: "%s"}, routes: [critical, meta]}
checks:
  - id: web
    interval: 2s
    timeout: 1s
    http: {url: "http://%s/"}
`, pd.URL(), target)), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ns, err := receivers.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := outbox.Open(outbox.Options{Notifiers: ns, Routes: receivers.Routes(cfg), Dir: filepath.Join(disk, "outbox"), Clock: clk, Redact: cfg.Redactor()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pipeDone := make(chan struct{})
	go func() { defer close(pipeDone); pipe.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-pipeDone; pipe.Close() })
	dataDir := filepath.Join(disk, "eval")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ev, err := New(cfg, Options{Clock: clk, Notifier: pipe, DataDir: dataDir, Name: "eval-a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	url := serveHandler(t, ev)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{url}, t.TempDir(), probes.Options{})
	}
	allLive := func() bool {
		for _, r := range cfg.Regions {
			if stateOf(ev, r) != decide.RegionLive {
				return false
			}
		}
		return true
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "every region live", allLive)

	filler := fill(t, disk)
	stale := map[string]bool{} // "region STATE" seen while the disk was full
	noteStale := func() {
		for _, r := range cfg.Regions {
			if s := stateOf(ev, r); s != decide.RegionLive {
				stale[r+" "+string(s)] = true
			}
		}
	}
	pageOf := func(action string) *notifytest.Event {
		for _, e := range pd.Events() {
			if e.EventAction == action && strings.HasPrefix(e.DedupKey, "outpost:evaluator-fault:eval-a:data_dir") {
				return &e
			}
		}
		return nil
	}
	advanceUntil(t, clk, 250*time.Millisecond, 2*time.Minute, "the page about the evaluator's disk", func() bool {
		noteStale()
		return pageOf("trigger") != nil
	})
	page := pageOf("trigger")
	if want := "evaluator eval-a cannot write its data dir " + dataDir + ": "; !strings.HasPrefix(page.Payload.Summary, want) || !strings.Contains(page.Payload.Summary, "no space left on device") {
		t.Errorf("page summary %q, want it to start %q and say no space left on device", page.Payload.Summary, want)
	}
	if h := ev.Health(); !strings.Contains(h, "no space left on device") {
		t.Errorf("Health = %q while the disk is full", h)
	}
	// A minute of full disk: the agents stay LIVE, nobody blames them.
	fullAt := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, 2*time.Minute, "a minute of full disk", func() bool {
		noteStale()
		return clk.Now().Sub(fullAt) >= time.Minute
	})
	if len(stale) > 0 {
		t.Errorf("regions not LIVE while the evaluator's disk was full: %v", slices.Sorted(maps.Keys(stale)))
	}
	for _, e := range pd.Events() {
		if !strings.HasPrefix(e.DedupKey, "outpost:evaluator-fault:") {
			t.Errorf("a page other than the evaluator's own: %s %q", e.DedupKey, e.Payload.Summary)
		}
	}

	// Room again: the page resolves a minute after the disk works.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clk, 500*time.Millisecond, 3*time.Minute, "the page resolved", func() bool { return pageOf("resolve") != nil })
	if h := ev.Health(); h != "" {
		t.Errorf("Health = %q after the disk recovered", h)
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Errorf("PagerDuty refused events: %v", bad)
	}
}
