package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// recordingApplier keeps every batch Local applies.
type recordingApplier struct {
	mu      sync.Mutex
	batches []wire.Batch
	err     error // returned by every Apply
}

func (a *recordingApplier) Apply(b wire.Batch) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, b)
	return a.err
}

func (a *recordingApplier) got() []wire.Batch {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.batches)
}

// refusalLogs keeps the results_since_last_log of every refusal logged.
type refusalLogs struct {
	mu     sync.Mutex
	counts []int64
}

func (h *refusalLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *refusalLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *refusalLogs) WithGroup(string) slog.Handler            { return h }
func (h *refusalLogs) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "results_since_last_log" {
			h.mu.Lock()
			h.counts = append(h.counts, a.Value.Int64())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *refusalLogs) got() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.counts)
}

const (
	localHeartbeat  = 10 * time.Second
	localBatchDelay = time.Second
	localBatchSize  = 3
)

type localHarness struct {
	t     *testing.T
	clock *clocktest.Fake
	ev    *recordingApplier
	logs  *refusalLogs
	l     *Local
	stop  func()
}

// newLocal returns a Local on a fake clock, not yet running.
func newLocal(t *testing.T) *localHarness {
	cfg := &checks.Config{Digest: "0123456789abcdef", Reporting: checks.Reporting{
		Heartbeat: localHeartbeat, BatchDelay: localBatchDelay, BatchSize: localBatchSize}}
	h := &localHarness{t: t, clock: clocktest.New(epoch), ev: &recordingApplier{}, logs: &refusalLogs{}}
	h.l = NewLocal(h.ev, cfg, "us-east", slog.New(h.logs), h.clock)
	return h
}

// start runs h's Local until the test ends or h.stop is called, and waits
// for its announcement.
func (h *localHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.l.Run(ctx) }()
	h.stop = sync.OnceFunc(func() { cancel(); <-done })
	h.t.Cleanup(h.stop)
	h.idle()
	if b := h.ev.got(); len(b) != 1 || len(b[0].Results) != 0 {
		h.t.Fatalf("at start: %d batches (%+v), want one empty announcement", len(b), b)
	}
}

// idle waits until Local has done all it can at the current fake time.
func (h *localHarness) idle() { clocktest.WaitIdle(h.t, 30*time.Second) }

func (h *localHarness) advance(d time.Duration) {
	h.clock.Advance(d)
	h.idle()
}

func (h *localHarness) submit(checkIDs ...string) {
	for _, id := range checkIDs {
		h.l.Submit(wire.Result{V: wire.WireVersion, Check: id, Region: "us-east", Time: h.clock.Now(), OK: true})
	}
	h.idle()
}

// checkIDs lists the checks of b's results, in order.
func checkIDs(b wire.Batch) []string {
	var ids []string
	for _, r := range b.Results {
		ids = append(ids, r.Check)
	}
	return ids
}

func TestLocalBatchesBySize(t *testing.T) {
	h := newLocal(t)
	h.start()
	h.submit("a", "b")
	if n := len(h.ev.got()); n != 1 {
		t.Fatalf("%d batches with 2 of 3 results pending, want only the announcement", n)
	}
	h.submit("c", "d")
	got := h.ev.got()
	if len(got) != 2 || !slices.Equal(checkIDs(got[1]), []string{"a", "b", "c"}) {
		t.Fatalf("batches = %+v, want the announcement and [a b c]", got)
	}
	b := got[1]
	if b.V != wire.WireVersion || b.Agent != "local" || b.Region != "us-east" || b.ConfigDigest != "0123456789abcdef" ||
		!b.Created.Equal(epoch) || b.Seq <= got[0].Seq {
		t.Errorf("batch header = v%d %q %q %q %v seq %d (announcement seq %d)", b.V, b.Agent, b.Region, b.ConfigDigest, b.Created, b.Seq, got[0].Seq)
	}
	for _, r := range b.Results {
		if r.Agent != "local" {
			t.Errorf("result %s has agent %q, want local", r.Check, r.Agent)
		}
	}
	// "d" waits for the delay counted from its own arrival.
	h.advance(localBatchDelay)
	if got := h.ev.got(); len(got) != 3 || !slices.Equal(checkIDs(got[2]), []string{"d"}) {
		t.Fatalf("after the delay: %+v, want [d] sealed", got)
	}
}

func TestLocalBatchesByDelay(t *testing.T) {
	h := newLocal(t)
	h.start()
	h.submit("a")
	h.advance(localBatchDelay / 2)
	h.submit("b") // does not restart the delay: it runs from the first pending result
	h.advance(localBatchDelay/2 - time.Millisecond)
	if n := len(h.ev.got()); n != 1 {
		t.Fatalf("%d batches before the delay ran out, want only the announcement", n)
	}
	h.advance(time.Millisecond)
	got := h.ev.got()
	if len(got) != 2 || !slices.Equal(checkIDs(got[1]), []string{"a", "b"}) {
		t.Fatalf("batches = %+v, want [a b] once the first waited batch_delay", got)
	}
	if want := epoch.Add(localBatchDelay); !got[1].Created.Equal(want) {
		t.Errorf("created %v, want %v", got[1].Created, want)
	}
	h.advance(10 * localBatchDelay)
	if n := len(h.ev.got()); n != 2 {
		t.Errorf("%d batches with nothing pending, want 2", n)
	}
}

// With nothing to send, Local sends an empty batch once a heartbeat passes
// without a batch; a heartbeat that saw a batch sends none.
func TestLocalHeartbeat(t *testing.T) {
	h := newLocal(t)
	h.start()
	// The announcement counts for the first heartbeat.
	h.advance(localHeartbeat)
	if n := len(h.ev.got()); n != 1 {
		t.Fatalf("%d batches after one heartbeat, want only the announcement", n)
	}
	h.advance(localHeartbeat)
	got := h.ev.got()
	if len(got) != 2 || len(got[1].Results) != 0 || !got[1].Created.Equal(epoch.Add(2*localHeartbeat)) {
		t.Fatalf("batches = %+v, want an empty heartbeat at %v", got, epoch.Add(2*localHeartbeat))
	}
	// A batch of results within the next heartbeat stands in for it.
	h.submit("a", "b", "c")
	h.advance(localHeartbeat)
	if got := h.ev.got(); len(got) != 3 || len(got[2].Results) != 3 {
		t.Fatalf("batches = %+v, want the results and no heartbeat", got)
	}
	h.advance(localHeartbeat)
	if got := h.ev.got(); len(got) != 4 || len(got[3].Results) != 0 {
		t.Fatalf("batches = %+v, want a heartbeat after a quiet interval", got)
	}
	// The heartbeat keeps to its grid from the start.
	if want := epoch.Add(4 * localHeartbeat); !h.ev.got()[3].Created.Equal(want) {
		t.Errorf("heartbeat at %v, want %v", h.ev.got()[3].Created, want)
	}
}

// Stopping applies what is pending and what is still queued: a SIGTERM
// loses nothing.
func TestLocalFlushesAtShutdown(t *testing.T) {
	h := newLocal(t)
	h.start()
	h.submit("a", "b")
	h.stop()
	got := h.ev.got()
	if len(got) != 2 || !slices.Equal(checkIDs(got[1]), []string{"a", "b"}) {
		t.Fatalf("batches = %+v, want [a b] applied at shutdown", got)
	}

	// Results queued but not yet taken are applied too.
	h = newLocal(t)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		h.l.Submit(wire.Result{Check: id})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.l.Run(ctx)
	var ids []string
	for _, b := range h.ev.got() {
		ids = append(ids, checkIDs(b)...)
	}
	if !slices.Equal(ids, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("applied %v, want every queued result, in order", ids)
	}
}

// A full queue drops results rather than block the probe, and counts them
// in a log line at most once a minute of the injected clock.
func TestLocalCountsQueueFull(t *testing.T) {
	h := newLocal(t) // not running: nothing takes from the queue
	for range 4*localBatchSize + 3 {
		h.l.Submit(wire.Result{Check: "a"})
	}
	if got := h.logs.got(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("refusals logged %v, want one line counting 1", got)
	}
	h.clock.Advance(time.Minute)
	h.l.Submit(wire.Result{Check: "a"})
	if got := h.logs.got(); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("refusals logged %v, want a second line a minute later counting the 2 held back and this one", got)
	}
}

// A batch the evaluator refuses is counted in the same rate-limited log.
func TestLocalLogsRefusedBatches(t *testing.T) {
	h := newLocal(t)
	h.ev.err = errors.New("invalid batch")
	h.start() // the announcement is refused and logged
	h.submit("a", "b", "c")
	h.advance(time.Minute)
	h.submit("d")
	h.advance(localBatchDelay)
	if got := h.logs.got(); !slices.Equal(got, []int64{0, 4}) {
		t.Fatalf("refusals logged %v, want the empty announcement, then a minute later the 4 results since", got)
	}
}
