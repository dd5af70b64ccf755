package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// These tests are about an agent's identity: its key signs for it alone,
// and no sequence number anyone sends, nor a clock set back, nor a lost
// spool, makes an evaluator refuse its batches for good.

var (
	identityKeyA   = []byte("identity-key-agent-a-0001")
	identityKeyB   = []byte("identity-key-agent-b-0002")
	identityKeyAny = []byte("identity-key-any-agent-03")
)

// identityConfig has agents a and b in us-east, each with its own key,
// and, with anyAgent, a region-only key of us-east too.
func identityConfig(t *testing.T, anyAgent bool) *checks.Config {
	t.Helper()
	extra := ""
	if anyAgent {
		extra = "\n  - {region: us-east, key: \"${K_ANY}\"}"
	}
	yaml := `version: 1
regions: [us-east, eu-west]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms, batch_size: 50}
agents:
  - {region: us-east, name: a, key: "${K_A}"}
  - {region: us-east, name: b, key: "${K_B}"}` + extra + `
defaults: {interval: 2s, timeout: 1s}
checks:
  - id: web
    http: {url: "http://127.0.0.1:1/"}
`
	env := map[string]string{"K_A": string(identityKeyA), "K_B": string(identityKeyB), "K_ANY": string(identityKeyAny)}
	cfg, err := checks.LoadBytes("identity.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// identityEvaluator runs an evaluator for cfg on loopback, recording the
// results of every batch it applies.
func identityEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake) (*Evaluator, string, *appliedLog) {
	t.Helper()
	ev, err := New(cfg, Options{Clock: clk, Notifier: &notifytest.Recorder{}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	applied := &appliedLog{}
	srv := httptest.NewServer(applied.wrap(ev.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done; ev.Close() })
	return ev, srv.URL, applied
}

// identityAgent is a real reporter of agent name in us-east.
type identityAgent struct {
	rep    *agent.Reporter
	reg    *prometheus.Registry
	clk    clock.Clock
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	n      int // results submitted
}

func startIdentityAgent(t *testing.T, cfg *checks.Config, clk clock.Clock, url, name string, key []byte, spool string) *identityAgent {
	t.Helper()
	a := &identityAgent{reg: prometheus.NewRegistry(), clk: clk, done: make(chan struct{})}
	var err error
	a.rep, err = agent.NewReporter(agent.ReporterOptions{
		Evaluators: []string{url}, Key: key, Region: "us-east", Agent: name,
		ConfigDigest: cfg.Digest, Reporting: cfg.Reporting, SpoolDir: spool, Clock: clk, Registerer: a.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { defer close(a.done); a.rep.Run(ctx) }()
	t.Cleanup(a.stop)
	return a
}

func (a *identityAgent) stop() { a.once.Do(func() { a.cancel(); <-a.done }) }

// submit hands the reporter one result, told apart from the others by its
// reason.
func (a *identityAgent) submit(tag string) string {
	a.n++
	reason := fmt.Sprintf("%s-%d", tag, a.n)
	a.rep.Submit(wire.Result{V: wire.WireVersion, Check: "web", Region: "us-east", OK: true, Reason: reason, Time: a.clk.Now()})
	return reason
}

func (a *identityAgent) metric(t *testing.T, name string) float64 {
	v, _ := gatheredFrom(t, a.reg, name, nil)
	return v
}

// reasonsApplied counts the applied results by reason.
func reasonsApplied(l *appliedLog) map[string]int {
	out := map[string]int{}
	for _, r := range l.all() {
		out[r.Reason]++
	}
	return out
}

// deliveredOnce reports whether every reason in want was applied exactly
// once; it fails the test on one applied twice.
func deliveredOnce(t *testing.T, l *appliedLog, want []string) bool {
	t.Helper()
	got := reasonsApplied(l)
	for _, r := range want {
		switch got[r] {
		case 0:
			return false
		case 1:
		default:
			t.Fatalf("result %s applied %d times, want once", r, got[r])
		}
	}
	return true
}

// forge posts b as an attacker would: signed with key at signAt, with the
// given X-Outpost-Agent header ("" for none). It returns the status, the
// X-Outpost-Refused header and the body.
func forge(t *testing.T, url, headerAgent string, key []byte, signAt time.Time, b wire.Batch) (int, string, string) {
	t.Helper()
	body := mustJSON(t, b)
	req, err := http.NewRequest(http.MethodPost, url+wire.ResultsPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts, sig := wire.Sign(key, signAt, body)
	req.Header.Set(wire.HeaderRegion, b.Region)
	if headerAgent != "" {
		req.Header.Set(wire.HeaderAgent, headerAgent)
	}
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(wire.HeaderRefused), strings.TrimSpace(string(got))
}

// advanceBoth moves both clocks by step until cond holds, waiting after
// each step for the work it set off; it fails after limit.
func advanceBoth(t *testing.T, a, b *clocktest.Fake, step, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for simulated := time.Duration(0); simulated <= limit; simulated += step {
		clocktest.WaitIdle(t, settleLimit)
		if cond() {
			return
		}
		a.Advance(step)
		b.Advance(step)
	}
	t.Fatalf("%s: not reached within %s of simulated time", what, limit)
}

// TestLockoutAttemptsFail is the security review's lockout, tried again:
// agent b's key cannot sign as agent a; someone holding a's key cannot
// push a's sequence far ahead; and when they push it ahead within the
// bound, a's real reporter re-bases and every one of its results is
// delivered, within seconds rather than after the push has expired.
func TestLockoutAttemptsFail(t *testing.T) {
	cfg := identityConfig(t, false)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev, url, applied := identityEvaluator(t, cfg, clk)
	r := ev.regions["us-east"]
	forged := func(seq uint64) wire.Batch {
		return wire.Batch{V: wire.WireVersion, Agent: "a", Region: "us-east", Seq: seq, ConfigDigest: cfg.Digest, Created: clk.Now(),
			Results: []wire.Result{{V: wire.WireVersion, Check: "web", Region: "us-east", Agent: "a", OK: false, Reason: "forged", Time: clk.Now()}}}
	}
	now := uint64(clk.Now().UnixNano())

	t.Run("b's key signing as a", func(t *testing.T) {
		for _, c := range []struct {
			name, header string
			want         int
		}{
			{"header a", "a", http.StatusUnauthorized},
			{"no header", "", http.StatusUnauthorized},
			// The header picks b's key, the batch claims a: refused too.
			{"header b", "b", http.StatusBadRequest},
		} {
			t.Run(c.name, func(t *testing.T) {
				status, _, body := forge(t, url, c.header, identityKeyB, clk.Now(), forged(now))
				if status != c.want {
					t.Errorf("status %d (%s), want %d", status, body, c.want)
				}
			})
		}
		if h := r.highestSeq("a"); h != 0 {
			t.Errorf("a's sequence memory is at %d after b's attempts, want untouched", h)
		}
	})

	t.Run("a's key, seq far ahead", func(t *testing.T) {
		ahead := now + uint64(wire.MaxSeqAhead+time.Second)
		status, refused, body := forge(t, url, "a", identityKeyA, clk.Now(), forged(ahead))
		if status != http.StatusBadRequest || refused != wire.RefusedAhead {
			t.Errorf("status %d, %s %q (%s), want 400 %s", status, wire.HeaderRefused, refused, body, wire.RefusedAhead)
		}
		if h := r.highestSeq("a"); h != 0 {
			t.Errorf("a's sequence memory is at %d after a refused batch, want untouched", h)
		}
	})
	if got := reasonsApplied(applied)["forged"]; got != 0 {
		t.Fatalf("%d forged results applied", got)
	}

	// a's real agent reports.
	a := startIdentityAgent(t, cfg, clk, url, "a", identityKeyA, t.TempDir())
	var want []string
	for range 5 {
		want = append(want, a.submit("before"))
	}
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "a's first results", func() bool { return deliveredOnce(t, applied, want) })

	// Someone with a's key sends an empty batch 290s ahead: within the
	// bound, so it is accepted.
	push := uint64(clk.Now().Add(290 * time.Second).UnixNano())
	empty := forged(push)
	empty.Results = []wire.Result{}
	if status, _, body := forge(t, url, "a", identityKeyA, clk.Now(), empty); status != http.StatusOK {
		t.Fatalf("the push within the bound: status %d (%s), want 200", status, body)
	}
	for range 20 {
		want = append(want, a.submit("after"))
		clk.Advance(100 * time.Millisecond)
		clocktest.WaitIdle(t, settleLimit)
	}
	// Far less than the 290s the push would have locked a out for.
	advanceUntil(t, clk, 100*time.Millisecond, 10*time.Second, "every result of a delivered", func() bool { return deliveredOnce(t, applied, want) })
	if h := r.highestSeq("a"); h <= push {
		t.Errorf("a's highest sequence is %d, want above the push %d", h, push)
	}
	if n := a.metric(t, "outpost_reporter_rebases_total"); n < 1 {
		t.Errorf("outpost_reporter_rebases_total = %v, want at least 1", n)
	}
	if n := a.metric(t, "outpost_reporter_rejected_total"); n != 0 {
		t.Errorf("outpost_reporter_rejected_total = %v: the agent dropped batches", n)
	}
}

// TestAgentResumesAfterSpoolLossAndClockBack: an agent whose clock ran
// fast, then was set back, and whose spool was deleted meanwhile, resumes
// delivering without losing a result.
func TestAgentResumesAfterSpoolLossAndClockBack(t *testing.T) {
	cfg := identityConfig(t, false)
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	eclk := clocktest.New(start)
	_, url, applied := identityEvaluator(t, cfg, eclk)
	spool := t.TempDir()

	// The agent's clock runs three minutes fast: within the skew, so its
	// batches, numbered from it, are accepted.
	fast := clocktest.New(start.Add(3 * time.Minute))
	a := startIdentityAgent(t, cfg, fast, url, "a", identityKeyA, spool)
	var want []string
	for range 10 {
		want = append(want, a.submit("fast"))
		eclk.Advance(100 * time.Millisecond)
		fast.Advance(100 * time.Millisecond)
		clocktest.WaitIdle(t, settleLimit)
	}
	advanceBoth(t, eclk, fast, 100*time.Millisecond, 10*time.Second, "results of the fast clock", func() bool { return deliveredOnce(t, applied, want) })
	a.stop()

	// The spool is lost and the clock set right: every new batch is
	// numbered below what the evaluator accepted.
	if err := os.RemoveAll(spool); err != nil {
		t.Fatal(err)
	}
	right := clocktest.New(eclk.Now())
	a = startIdentityAgent(t, cfg, right, url, "a", identityKeyA, spool)
	for range 10 {
		want = append(want, a.submit("right"))
		eclk.Advance(100 * time.Millisecond)
		right.Advance(100 * time.Millisecond)
		clocktest.WaitIdle(t, settleLimit)
	}
	advanceBoth(t, eclk, right, 100*time.Millisecond, 10*time.Second, "results after the clock was set back", func() bool { return deliveredOnce(t, applied, want) })
	if n := a.metric(t, "outpost_reporter_rebases_total"); n < 1 {
		t.Errorf("outpost_reporter_rebases_total = %v, want at least 1", n)
	}
	if n := a.metric(t, "outpost_reporter_rejected_total"); n != 0 {
		t.Errorf("outpost_reporter_rejected_total = %v: the agent dropped batches", n)
	}
}

// TestRegionOnlyKeySignsForAnyAgent: an agents: entry without a name
// keeps its meaning (any agent of the region), beside named ones, and
// validation warns about it; a named key still signs for its agent only.
func TestRegionOnlyKeySignsForAnyAgent(t *testing.T) {
	cfg := identityConfig(t, true)
	if w := cfg.Warnings(); len(w) != 1 || !strings.Contains(w[0], "agents[2]: no name") {
		t.Errorf("warnings = %q, want one about agents[2]", w)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	_, url, _ := identityEvaluator(t, cfg, clk)
	seq := uint64(clk.Now().UnixNano())
	for _, c := range []struct {
		name, agent string
		key         []byte
		want        int
	}{
		{"region-only key as a named agent", "a", identityKeyAny, http.StatusOK},
		{"region-only key as an unlisted agent", "c", identityKeyAny, http.StatusOK},
		{"named key as an unlisted agent", "d", identityKeyA, http.StatusUnauthorized},
		{"named key as its own agent", "b", identityKeyB, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			seq++
			b := wire.Batch{V: wire.WireVersion, Agent: c.agent, Region: "us-east", Seq: seq, ConfigDigest: cfg.Digest, Created: clk.Now(), Results: []wire.Result{}}
			if status, _, body := forge(t, url, c.agent, c.key, clk.Now(), b); status != c.want {
				t.Errorf("status %d (%s), want %d", status, body, c.want)
			}
		})
	}
}

// TestSeqQuery: GET /v1/seq answers the highest sequence accepted from the
// agent it is signed for, and only to a key that may sign for it.
func TestSeqQuery(t *testing.T) {
	cfg := identityConfig(t, false)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	_, url, _ := identityEvaluator(t, cfg, clk)
	seq := uint64(clk.Now().UnixNano())
	b := wire.Batch{V: wire.WireVersion, Agent: "a", Region: "us-east", Seq: seq, ConfigDigest: cfg.Digest, Created: clk.Now(), Results: []wire.Result{}}
	if status, _, body := forge(t, url, "a", identityKeyA, clk.Now(), b); status != http.StatusOK {
		t.Fatalf("batch: status %d (%s)", status, body)
	}
	ask := func(region, agent string, key []byte, signAt time.Time) (int, wire.SeqAnswer) {
		req, err := http.NewRequest(http.MethodGet, url+wire.SeqPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts, sig := wire.Sign(key, signAt, wire.SeqPayload(region, agent))
		req.Header.Set(wire.HeaderRegion, region)
		req.Header.Set(wire.HeaderAgent, agent)
		req.Header.Set(wire.HeaderTimestamp, ts)
		req.Header.Set(wire.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a wire.SeqAnswer
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, a
	}
	for _, c := range []struct {
		name          string
		region, agent string
		key           []byte
		signAt        time.Time
		want          int
		highest       uint64
	}{
		{"own key", "us-east", "a", identityKeyA, clk.Now(), http.StatusOK, seq},
		{"an agent never heard from", "us-east", "b", identityKeyB, clk.Now(), http.StatusOK, 0},
		{"another agent's key", "us-east", "a", identityKeyB, clk.Now(), http.StatusUnauthorized, 0},
		{"signed too long ago", "us-east", "a", identityKeyA, clk.Now().Add(-wire.MaxClockSkew - time.Minute), http.StatusUnauthorized, 0},
		{"no agent", "us-east", "", identityKeyA, clk.Now(), http.StatusUnauthorized, 0},
		{"unknown region", "nowhere", "a", identityKeyA, clk.Now(), http.StatusUnauthorized, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, a := ask(c.region, c.agent, c.key, c.signAt)
			if status != c.want || a.Highest != c.highest {
				t.Errorf("status %d, highest %d; want %d, %d", status, a.Highest, c.want, c.highest)
			}
		})
	}
}
