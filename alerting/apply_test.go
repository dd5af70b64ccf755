package alerting

import (
	"errors"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	f := newFixture(t)
	// ap-south has no agent key: only the in-process agent reports there.
	b := f.batch("ap-south", 1, result("web", "ap-south", false))
	if err := f.ev.Apply(b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := f.ev.Apply(b); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("Apply again: %v, want ErrDuplicate", err)
	}
	b.Seq = 0
	if err := f.ev.Apply(b); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("Apply seq 0: %v, want ErrInvalidBatch", err)
	}
	bad := f.batch("ap-south", 2, result("web", "ap-south", true), result("api", "ap-south", true))
	bad.Results[0].Time = bad.Results[0].Time.AddDate(-1, 0, 0)
	if err := f.ev.Apply(bad); !errors.Is(err, ErrInvalidBatch) || !strings.Contains(err.Error(), `results[0].time`) {
		t.Fatalf("Apply with a bad first result: %v", err)
	}
	if err := f.ev.Apply(f.batch("mars", 2)); !errors.Is(err, ErrInvalidBatch) {
		t.Fatalf("Apply for an unknown region: %v", err)
	}
	w, _ := f.ev.Window("web", "ap-south")
	if len(w.Samples) != 1 || w.Consecutive != 1 {
		t.Fatalf("window = %+v", w)
	}
	if got := f.batches("ap-south", "ok") + f.batches("ap-south", "duplicate") + f.batches("ap-south", "bad_request"); got != 4 {
		t.Errorf("ap-south batches counted %g, want 4", got)
	}
}

func TestConfigDigestMismatch(t *testing.T) {
	f := newFixture(t)
	mismatch := func() float64 {
		v, ok := f.gathered("outpost_config_mismatch", map[string]string{"region": "us-east"})
		if !ok {
			t.Fatal("outpost_config_mismatch{region=us-east} not exported")
		}
		return v
	}
	warnings := func() int { return strings.Count(f.logs.String(), "agent runs another configuration") }

	old := f.batch("us-east", 1)
	old.ConfigDigest = "0123456789abcdef"
	for seq := uint64(1); seq <= 3; seq++ {
		old.Seq = seq
		if code, body := f.sendBatch(old); code != 200 {
			t.Fatalf("batch with another digest: %d %q", code, body)
		}
	}
	if got := mismatch(); got != 1 {
		t.Fatalf("mismatch = %g, want 1", got)
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings for one change, want 1", n)
	}
	s := f.ev.Snapshot()
	if s.Regions[0].ConfigDigestMatch || s.Regions[0].Agents[0].ConfigDigest != "0123456789abcdef" || s.Regions[0].Agents[0].ConfigDigestMatch {
		t.Errorf("snapshot = %+v", s.Regions[0])
	}
	if got, _ := f.gathered("outpost_config_mismatch", map[string]string{"region": "eu-west"}); got != 0 {
		t.Errorf("eu-west mismatch = %g, want 0", got)
	}

	if code, _ := f.sendBatch(f.batch("us-east", 4)); code != 200 {
		t.Fatal("matching batch refused")
	}
	if got := mismatch(); got != 0 {
		t.Fatalf("mismatch after a matching batch = %g, want 0", got)
	}
	if !f.ev.Snapshot().Regions[0].ConfigDigestMatch {
		t.Error("snapshot still shows a mismatch")
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings, want still 1", n)
	}
}

func TestRefusalLogsAreRateLimited(t *testing.T) {
	f := newFixture(t)
	for range 50 {
		f.send("us-east", keyOther, goodBody(f, 1))
	}
	if n := strings.Count(f.logs.String(), "result batch refused"); n != 1 {
		t.Fatalf("%d log lines for 50 refusals within %s, want 1", n, rejectLogEvery)
	}
	f.clock.Advance(rejectLogEvery)
	f.send("us-east", keyOther, goodBody(f, 1))
	if logs := f.logs.String(); strings.Count(logs, "result batch refused") != 2 || !strings.Contains(logs, "suppressed=49") {
		t.Fatalf("logs after the interval:\n%s", logs)
	}
}
