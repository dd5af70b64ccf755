package alerting

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/probes/wire"
)

// staleNotes returns, for each time region was declared STALE, "silent
// since HH:MM:SS", from the evaluator's log: the transition itself, which
// the meta page follows meta.for later.
func staleNotes(f *fixture, region string) []string {
	var out []string
	for _, line := range strings.Split(f.logs.String(), "\n") {
		if !strings.Contains(line, `msg="region silent: out of every quorum" region=`+region+" ") {
			continue
		}
		_, since, _ := strings.Cut(line, "silent_since=")
		if t, err := time.Parse(time.RFC3339, strings.Fields(since)[0]); err == nil {
			out = append(out, "silent since "+t.Format(time.TimeOnly))
		}
	}
	return out
}

// postAsync posts b signed now for its region and returns the answer's
// status (or an error) on a channel, for a request that is expected to
// block.
func postAsync(f *fixture, b wire.Batch) <-chan error {
	body := mustJSON(f.t, b)
	key := map[string][]byte{"us-east": keyUS, "eu-west": keyEU}[b.Region]
	ts, sig := wire.Sign(key, f.clock.Now(), body)
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+wire.ResultsPath, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set(wire.HeaderRegion, b.Region)
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	done := make(chan error, 1)
	go func() {
		resp, err := f.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	return done
}

// TestIngestHeldUpPagesNothing: an evaluator whose ingest is held up for
// four times stale_after while an agent keeps sending declares no region
// STALE, says it is lagging in a log line and outpost_evaluator_lagging,
// and once caught up still pages a real silence.
func TestIngestHeldUpPagesNothing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	f := newFixture(t)
	advance := runLoop(t, f)
	seqs := map[string]uint64{}
	report := func(region string) {
		t.Helper()
		seqs[region]++
		if code, body := f.sendBatch(f.batch(region, seqs[region])); code != 200 {
			t.Fatalf("%s: %d %q", region, code, body)
		}
	}
	report("us-east")
	report("eu-west")
	advance(time.Second)

	// us-east's agent's batches are stuck behind its lock, as behind a
	// slow disk or a decision that takes minutes; its agent sends one at
	// a time, so one request waits. eu-west reports every 10s.
	a := f.ev.regions["us-east"].agents["a1"]
	a.mu.Lock()
	var unlock sync.Once
	release := func() { unlock.Do(a.mu.Unlock) }
	t.Cleanup(release) // before the server closes, should the test fail
	seqs["us-east"]++
	stuck := postAsync(f, f.batch("us-east", seqs["us-east"]))
	clockWaitPending(t, f, "us-east")
	for i := range 120 {
		advance(time.Second)
		if i%10 == 9 {
			report("eu-west")
		}
	}
	if got := staleNotes(f, "us-east"); len(got) != 0 {
		t.Fatalf("paged while ingest was held up: %v", got)
	}
	if f.state("us-east") != decide.RegionLive {
		t.Fatalf("us-east %s while its batch was in ingest", f.state("us-east"))
	}
	if v, _ := f.gathered("outpost_evaluator_lagging", nil); v != 1 {
		t.Errorf("outpost_evaluator_lagging = %v while ingest was held up, want 1", v)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "evaluator lagging") || !strings.Contains(logs, "region=us-east why=batch_in_ingest") {
		t.Errorf("logs do not say why nothing was paged:\n%s", logs)
	}

	// Ingest catches up; the agent, answered, sends its next batch.
	release()
	if err := <-stuck; err != nil {
		t.Fatalf("the held-up batch: %v", err)
	}
	report("us-east")
	report("eu-west")
	advance(time.Second)
	if v, _ := f.gathered("outpost_evaluator_lagging", nil); v != 0 {
		t.Errorf("outpost_evaluator_lagging = %v after catching up, want 0", v)
	}
	if got := append(staleNotes(f, "us-east"), staleNotes(f, "eu-west")...); len(got) != 0 {
		t.Fatalf("paged after catching up: %v", got)
	}

	// A real silence still pages: us-east stops, eu-west goes on.
	for i := range 60 {
		advance(time.Second)
		if i%10 == 9 {
			report("eu-west")
		}
	}
	if got := staleNotes(f, "us-east"); len(got) != 1 {
		t.Fatalf("us-east silent for a minute: pages %v, want one", got)
	}
	if got := staleNotes(f, "eu-west"); len(got) != 0 {
		t.Fatalf("eu-west reporting: pages %v", got)
	}
}

// clockWaitPending waits until a batch of region is in ingest.
func clockWaitPending(t *testing.T, f *fixture, region string) {
	t.Helper()
	waitFor(t, "a batch of "+region+" in ingest", func() bool { return f.ev.regions[region].pending.Load() > 0 })
}

// TestClockJumpPagesNothing: the clock jumps five minutes in one step
// while agents were reporting right up to it. No region is declared STALE
// at the jump; agents heard from after it keep their regions LIVE, and one
// that stays silent is STALE once stale_after has been watched after the
// jump, not before.
func TestClockJumpPagesNothing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	f := newFixture(t)
	advance, jump := runLoopJumps(t, f)
	seqs := map[string]uint64{}
	report := func(region string) {
		t.Helper()
		seqs[region]++
		if code, body := f.sendBatch(f.batch(region, seqs[region])); code != 200 {
			t.Fatalf("%s: %d %q", region, code, body)
		}
	}
	for range 2 {
		report("us-east")
		report("eu-west")
		advance(10 * time.Second)
	}
	report("us-east")
	report("eu-west")
	jump(5 * time.Minute)
	if got := append(staleNotes(f, "us-east"), staleNotes(f, "eu-west")...); len(got) != 0 {
		t.Fatalf("paged at the jump: %v", got)
	}
	jumpedAt := f.clock.Now()
	report("us-east") // eu-west's agent is not heard from after the jump
	advance(time.Second)
	for f.clock.Now().Sub(jumpedAt) < 30*time.Second {
		if f.state("eu-west") != decide.RegionLive {
			t.Fatalf("eu-west %s %s after the jump, before stale_after was watched", f.state("eu-west"), f.clock.Now().Sub(jumpedAt))
		}
		advance(time.Second)
		if f.clock.Now().Sub(jumpedAt)%(10*time.Second) == 0 {
			report("us-east")
		}
	}
	advance(2 * time.Second)
	if got := staleNotes(f, "eu-west"); len(got) != 1 || !strings.Contains(got[0], "silent since 12:00:20") {
		t.Fatalf("eu-west silent after the jump: pages %v, want one", got)
	}
	if got := staleNotes(f, "us-east"); len(got) != 0 {
		t.Fatalf("us-east reporting: pages %v", got)
	}
}

// TestAnswersSayEvaluator: every answer to a batch, a refusal or a 503
// included, says that an evaluator gave it, so agents do not count a busy
// evaluator as an unreachable one.
func TestAnswersSayEvaluator(t *testing.T) {
	f := newFixture(t)
	for _, r := range []request{
		{region: "us-east", key: keyUS, signAt: f.clock.Now(), body: mustJSON(t, f.batch("us-east", 1))},
		{region: "us-east", key: keyOther, signAt: f.clock.Now(), body: mustJSON(t, f.batch("us-east", 2))},
	} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+wire.ResultsPath, bytes.NewReader(r.body))
		req.Header.Set(wire.HeaderRegion, r.region)
		ts, sig := wire.Sign(r.key, r.signAt, r.body)
		req.Header.Set(wire.HeaderTimestamp, ts)
		req.Header.Set(wire.HeaderSignature, sig)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get(wire.HeaderEvaluator) == "" {
			t.Errorf("answer %d lacks %s", resp.StatusCode, wire.HeaderEvaluator)
		}
	}
}
