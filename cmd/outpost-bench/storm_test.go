package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStormSmoke runs a small storm end to end against a freshly built
// evaluator and asserts it ends with every check OK and every region LIVE.
// It asserts no duration: the machine may be slow.
func TestStormSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs an evaluator")
	}
	bin := filepath.Join(t.TempDir(), "outpost")
	if out, err := exec.Command("go", "build", "-o", bin, "../outpost").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Cleanup(killChildren)
	var out bytes.Buffer
	o := stormOptions{checks: 50, regions: 3, interval: time.Second, warmup: 2 * time.Second,
		settle: time.Second, limit: 2 * time.Minute, poll: 250 * time.Millisecond, outpost: bin, out: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	figs, err := runStorm(ctx, o)
	if err != nil {
		t.Fatalf("storm: %v\n%s", err, out.String())
	}
	printStorm(&out, o, figs)
	t.Log(out.String())
	if len(figs) != 1 {
		t.Fatalf("%d evaluators measured, want 1", len(figs))
	}
	f := figs[0]
	if !f.allOK || f.toOK < 0 || f.toDown < 0 {
		t.Errorf("storm did not go DOWN and back to OK: %+v", f)
	}
	if f.transitions < 2*o.checks {
		t.Errorf("%d transitions seen, want at least %d (every check down and up)", f.transitions, 2*o.checks)
	}
	if f.pd.Triggers == 0 || f.pd.Invalid > 0 {
		t.Errorf("PagerDuty got %d triggers and %d invalid events", f.pd.Triggers, f.pd.Invalid)
	}
	if f.rejected > 0 {
		t.Errorf("%d batches refused: %s", f.rejected, f.firstReject)
	}
	if !strings.Contains(out.String(), "CPU-s per 1,000 transitions") {
		t.Errorf("no CPU per transition in the output:\n%s", out.String())
	}
}
