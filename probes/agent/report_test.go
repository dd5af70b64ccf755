package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

var repEpoch = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// repWait bounds, in real time, how long a test waits for goroutines to make
// progress before it fails.
const repWait = 15 * time.Second

// repServer is an evaluator's ingest endpoint on 127.0.0.1: it checks every
// request's headers and signature against the fake clock, decodes the batch
// strictly, and answers with what respond says for the nth request. Like a
// real evaluator it applies a batch once: a batch it accepted before is
// answered 200 again and counted as a duplicate.
type repServer struct {
	t     *testing.T
	clock clock.Clock
	key   []byte
	srv   *httptest.Server
	url   string
	got   chan wire.Batch // every accepted batch

	mu       sync.Mutex
	respond  func(n int) int // nil: 200
	requests int
	seen     map[uint64]bool
	dups     int
	accepted []wire.Batch
	bodies   [][]byte
	headers  []http.Header
}

func newRepServer(t *testing.T, clock clock.Clock, key []byte) *repServer {
	s := &repServer{t: t, clock: clock, key: key, got: make(chan wire.Batch, 1000)}
	s.srv = httptest.NewServer(s)
	s.url = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// setRespond changes how the server answers from the next request on.
func (s *repServer) setRespond(f func(n int) int) {
	s.mu.Lock()
	s.respond = f
	s.mu.Unlock()
}

func (s *repServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	t := s.t
	body, err := io.ReadAll(io.LimitReader(req.Body, wire.MaxBatchBytes+1))
	if err != nil {
		return // the agent gave up on this request
	}
	if req.Method != http.MethodPost || req.URL.Path != wire.ResultsPath {
		t.Errorf("%s %s, want POST %s", req.Method, req.URL.Path, wire.ResultsPath)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if len(body) > wire.MaxBatchBytes {
		t.Errorf("body of %d bytes exceeds MaxBatchBytes", len(body))
	}
	if err := wire.Verify([][]byte{s.key}, req.Header.Get(wire.HeaderTimestamp), req.Header.Get(wire.HeaderSignature), body, s.clock.Now()); err != nil {
		t.Errorf("signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var b wire.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Errorf("decoding batch: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if b.V != 1 || b.Agent != req.Header.Get(wire.HeaderAgent) || b.Region != req.Header.Get(wire.HeaderRegion) || b.Results == nil {
		t.Errorf("batch v=%d agent=%q region=%q results=%v does not match headers %v", b.V, b.Agent, b.Region, b.Results, req.Header)
	}
	s.mu.Lock()
	n := s.requests
	s.requests++
	status := http.StatusOK
	if s.respond != nil {
		status = s.respond(n)
	}
	fresh := status/100 == 2 && !s.seen[b.Seq]
	if fresh {
		if s.seen == nil {
			s.seen = map[uint64]bool{}
		}
		s.seen[b.Seq] = true
		s.accepted = append(s.accepted, b)
		s.bodies = append(s.bodies, body)
		s.headers = append(s.headers, req.Header.Clone())
	} else if status/100 == 2 {
		s.dups++
	}
	s.mu.Unlock()
	if fresh {
		s.got <- b
	}
	w.WriteHeader(status)
	fmt.Fprintln(w, http.StatusText(status))
}

// wait returns the next n accepted batches.
func (s *repServer) wait(n int) []wire.Batch {
	s.t.Helper()
	var out []wire.Batch
	for len(out) < n {
		select {
		case b := <-s.got:
			out = append(out, b)
		case <-time.After(repWait):
			s.t.Fatalf("got %d batches, want %d", len(out), n)
		}
	}
	return out
}

// none fails if a batch has been accepted and not yet waited for.
func (s *repServer) none() {
	s.t.Helper()
	select {
	case b := <-s.got:
		s.t.Fatalf("unexpected batch %d with %d results", b.Seq, len(b.Results))
	default:
	}
}

// request returns the body and headers of the ith accepted batch.
func (s *repServer) request(i int) ([]byte, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[i], s.headers[i]
}

// duplicates returns how many batches arrived again after being accepted.
func (s *repServer) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

func (s *repServer) snapshot() (accepted []wire.Batch, requests int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted), s.requests
}

// repHarness runs one Reporter on a fake clock.
type repHarness struct {
	t     *testing.T
	clock *fakeClock
	reg   *prometheus.Registry
	logs  *repLogs
	opts  ReporterOptions
	r     *Reporter

	cancel context.CancelFunc
	done   chan error
}

var repKey = []byte("us-east-agent-key")

func repReporting(batchSize int) checks.Reporting {
	return checks.Reporting{Heartbeat: time.Hour, BatchSize: batchSize, BatchDelay: time.Second, SpoolSize: 1 << 20}
}

func newRepHarness(t *testing.T, clock *fakeClock, spoolDir string, rep checks.Reporting, evaluators ...string) *repHarness {
	t.Helper()
	return newRepHarnessWith(t, clock, spoolDir, rep, func(o *ReporterOptions) { o.Evaluators = evaluators })
}

// newRepHarnessWith is newRepHarness with the options set by with.
func newRepHarnessWith(t *testing.T, clock *fakeClock, spoolDir string, rep checks.Reporting, with func(*ReporterOptions)) *repHarness {
	t.Helper()
	h := &repHarness{t: t, clock: clock, reg: prometheus.NewRegistry(), logs: &repLogs{}}
	h.opts = ReporterOptions{
		Key:          repKey,
		Region:       "us-east",
		Agent:        "agent-1",
		ConfigDigest: "0123456789abcdef",
		Reporting:    rep,
		SpoolDir:     spoolDir,
		Clock:        clock,
		Registerer:   h.reg,
		Logger:       slog.New(h.logs),
	}
	with(&h.opts)
	r, err := NewReporter(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	return h
}

// start runs the reporter until the test ends or stop is called.
func (h *repHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.r.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *repHarness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(repWait):
		h.t.Fatal("Run did not return after its context ended")
	}
	h.cancel = nil
}

func (h *repHarness) submit(from, to int) {
	for i := from; i < to; i++ {
		h.r.Submit(wire.Result{Check: fmt.Sprintf("check-%03d", i), Type: "http", OK: true, Reason: "status 200", Time: repEpoch})
	}
}

// pump lets the reporter's goroutines run until cond holds, and whenever a
// timer of at most backoffMax is pending (a retry waiting, a batch delay),
// advances the fake clock to it. The heartbeat is longer, so it never fires,
// and the clock stands still while a request is in flight, so signatures
// are checked at the time they were made.
func (h *repHarness) pump(cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(repWait)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("condition not reached; logs:\n%s", h.logs)
		}
		if d, ok := h.nextTimer(); ok && d <= backoffMax {
			h.clock.Advance(d)
		}
		time.Sleep(time.Millisecond)
	}
}

// nextTimer returns how far away the earliest pending timer is.
func (h *repHarness) nextTimer() (time.Duration, bool) { return h.clock.Next() }

// eventually waits, in real time, for goroutines to bring cond about.
func (h *repHarness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(repWait)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued waits until the batcher has taken every submitted result.
func (h *repHarness) queued() {
	h.t.Helper()
	h.eventually("the batcher took every result", func() bool { return len(h.r.queue) == 0 })
}

func (h *repHarness) eval(i int) *evaluator { return h.r.evals[i] }

func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// checkOrder checks that batches have strictly increasing sequence numbers
// and that their results, in order, are check-from ... check-(to-1) with
// strictly increasing result sequence numbers.
func checkOrder(t *testing.T, batches []wire.Batch, from, to int) {
	t.Helper()
	var last, lastResult uint64
	i := from
	for _, b := range batches {
		if b.Seq <= last {
			t.Fatalf("batch seq %d after %d", b.Seq, last)
		}
		last = b.Seq
		for _, r := range b.Results {
			if want := fmt.Sprintf("check-%03d", i); r.Check != want {
				t.Fatalf("result %q, want %q", r.Check, want)
			}
			if r.Seq <= lastResult || r.Agent != "agent-1" || r.Region != "us-east" || r.V != wire.WireVersion {
				t.Fatalf("result %s: seq %d (after %d), agent %q, region %q, v %d", r.Check, r.Seq, lastResult, r.Agent, r.Region, r.V)
			}
			lastResult = r.Seq
			i++
		}
	}
	if i != to {
		t.Fatalf("results up to check-%03d, want up to check-%03d", i-1, to-1)
	}
}

func TestReporterSealsBySize(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	h := newRepHarness(t, clock, t.TempDir(), repReporting(3), srv.url)
	h.start()
	h.submit(0, 7)
	batches := srv.wait(2) // no clock movement: only full batches go
	checkOrder(t, batches, 0, 6)
	for _, b := range batches {
		if len(b.Results) != 3 || b.ConfigDigest != "0123456789abcdef" || !b.Created.Equal(repEpoch) {
			t.Fatalf("batch: %d results, digest %q, created %v", len(b.Results), b.ConfigDigest, b.Created)
		}
	}
	if b := batches[0]; b.Seq != uint64(repEpoch.UnixNano()) || batches[1].Seq != b.Seq+1 {
		t.Errorf("seqs %d, %d; want the clock in nanoseconds, then +1", b.Seq, batches[1].Seq)
	}
	srv.none()
	h.eventually("sent counted", func() bool { return value(h.eval(0).sent) == 2 })
	h.r.SetConfigDigest("fedcba9876543210") // a reload
	h.submit(7, 9)
	if b := srv.wait(1)[0]; b.ConfigDigest != "fedcba9876543210" {
		t.Errorf("digest %q after SetConfigDigest", b.ConfigDigest)
	}
	if got := value(h.r.metrics.results); got != 9 {
		t.Errorf("results_total = %v, want 9", got)
	}
	h.eventually("spool emptied", func() bool { return h.eval(0).spool.Len() == 0 })
}

func TestReporterSealsByDelay(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	rep := repReporting(100)
	rep.BatchDelay = 2 * time.Second
	h := newRepHarness(t, clock, t.TempDir(), rep, srv.url)
	h.start()
	clock.waitCreated(t, 1) // the heartbeat timer
	h.submit(0, 2)
	clock.waitCreated(t, 2) // the first result armed the delay
	h.queued()
	if n := clock.Advance(rep.BatchDelay - time.Nanosecond); n != 0 {
		t.Fatalf("%d timers fired before the batch delay", n)
	}
	srv.none()
	if n := clock.Advance(time.Nanosecond); n != 1 {
		t.Fatalf("%d timers fired at the batch delay, want 1", n)
	}
	b := srv.wait(1)
	checkOrder(t, b, 0, 2)
	if want := repEpoch.Add(rep.BatchDelay); !b[0].Created.Equal(want) {
		t.Errorf("created %v, want %v", b[0].Created, want)
	}
}

func TestReporterHeartbeat(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	rep := repReporting(100)
	rep.Heartbeat = 10 * time.Second
	h := newRepHarness(t, clock, t.TempDir(), rep, srv.url)
	h.start()
	clock.waitCreated(t, 1)
	if n := clock.Advance(10 * time.Second); n != 1 {
		t.Fatalf("%d timers fired at the heartbeat, want 1", n)
	}
	hb := srv.wait(1)[0]
	if len(hb.Results) != 0 || !hb.Created.Equal(repEpoch.Add(10*time.Second)) {
		t.Fatalf("heartbeat has %d results, created %v", len(hb.Results), hb.Created)
	}
	if body, _ := srv.request(0); !bytes.Contains(body, []byte(`"results":[]`)) {
		t.Errorf("an empty batch should carry an empty list: %s", body)
	}

	// A result sealed by delay resets the heartbeat: the next empty batch
	// comes a heartbeat after it, not after the previous one.
	clock.waitCreated(t, 2)
	clock.Advance(5 * time.Second) // t=15s
	h.submit(0, 1)
	clock.waitCreated(t, 3)
	clock.Advance(time.Second) // t=16s: the delay
	checkOrder(t, srv.wait(1), 0, 1)
	clock.waitCreated(t, 4)
	if n := clock.Advance(9 * time.Second); n != 0 { // t=25s
		t.Fatalf("heartbeat fired %s after the last batch", 9*time.Second)
	}
	clock.Advance(time.Second) // t=26s
	hb2 := srv.wait(1)[0]
	if len(hb2.Results) != 0 || hb2.Seq <= hb.Seq {
		t.Fatalf("second heartbeat: %d results, seq %d after %d", len(hb2.Results), hb2.Seq, hb.Seq)
	}
}

func TestReporterSignsAtSendTime(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	srv.setRespond(func(n int) int {
		if n == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	h := newRepHarness(t, clock, t.TempDir(), repReporting(1), srv.url)
	h.start()
	h.submit(0, 1)
	h.eventually("first attempt failed", func() bool { return value(h.eval(0).failures) == 1 })
	// Long past the skew window of the sealing time: the retry must be
	// signed with the time it is sent.
	clock.Advance(wire.MaxClockSkew + time.Minute)
	h.pump(func() bool { a, _ := srv.snapshot(); return len(a) == 1 })
	b := srv.wait(1)[0]
	if !b.Created.Equal(repEpoch) {
		t.Fatalf("created %v, want the sealing time %v", b.Created, repEpoch)
	}
	body, hdr := srv.request(0)
	now := clock.Now()
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		"User-Agent":         "outpost-agent",
		wire.HeaderRegion:    "us-east",
		wire.HeaderAgent:     "agent-1",
		wire.HeaderTimestamp: strconv.FormatInt(now.Unix(), 10),
	} {
		if got := hdr.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := wire.Verify([][]byte{repKey}, hdr.Get(wire.HeaderTimestamp), hdr.Get(wire.HeaderSignature), body, now); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := wire.Verify([][]byte{[]byte("another key")}, hdr.Get(wire.HeaderTimestamp), hdr.Get(wire.HeaderSignature), body, now); err == nil {
		t.Error("the signature verifies with another key")
	}
}

func TestReporterFansOutToEveryEvaluator(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	a, b := newRepServer(t, clock, repKey), newRepServer(t, clock, repKey)
	dir := t.TempDir()
	h := newRepHarness(t, clock, dir, repReporting(2), a.url, b.url+"/")
	h.start()
	h.submit(0, 4)
	ga, gb := a.wait(2), b.wait(2)
	// Timers: the first heartbeat, then per batch a delay and a heartbeat.
	clock.waitCreated(t, 5)
	clock.Advance(time.Hour) // a heartbeat too
	ga, gb = append(ga, a.wait(1)...), append(gb, b.wait(1)...)
	checkOrder(t, ga, 0, 4)
	for i := range ga {
		ba, _ := a.request(i)
		bb, _ := b.request(i)
		if ga[i].Seq != gb[i].Seq || !bytes.Equal(ba, bb) {
			t.Fatalf("batch %d differs between evaluators:\n%s\n%s", i, ba, bb)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name() == ents[1].Name() {
		t.Fatalf("spool subdirectories %v, want one per evaluator", ents)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("spool %s: %v, mode %v", e.Name(), err, fi.Mode())
		}
	}
}

func TestReporterRetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	const failing = 6
	srv.setRespond(func(n int) int {
		switch {
		case n >= failing:
			return http.StatusOK
		case n%2 == 0:
			return http.StatusTooManyRequests
		}
		return http.StatusServiceUnavailable
	})
	h := newRepHarness(t, clock, t.TempDir(), repReporting(2), srv.url)
	h.start()
	h.submit(0, 10)
	h.pump(func() bool { a, _ := srv.snapshot(); return len(a) == 5 })
	batches := srv.wait(5)
	checkOrder(t, batches, 0, 10)
	h.eventually("spool emptied", func() bool { return h.eval(0).spool.Len() == 0 })
	if _, requests := srv.snapshot(); requests != failing+5 || srv.duplicates() != 0 {
		t.Errorf("%d requests with %d duplicates, want %d: a batch was sent again after it was accepted",
			requests, srv.duplicates(), failing+5)
	}
	if got := value(h.eval(0).failures); got != failing {
		t.Errorf("send_failures_total = %v, want %d", got, failing)
	}
	if got := value(h.eval(0).sent); got != 5 {
		t.Errorf("batches_sent_total = %v, want 5", got)
	}
	if n := h.logs.count("cannot deliver"); n != 1 {
		t.Errorf("%d failure logs for %d failures within a minute, want 1", n, failing)
	}
	if n := h.logs.count("accepts batches again"); n != 1 {
		t.Errorf("%d recovery logs, want 1", n)
	}
}

func TestReporterEvaluatorDownThenBack(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	url := closedAddrURL(t) // down: connections are refused
	addr := strings.TrimPrefix(url, "http://")
	h := newRepHarness(t, clock, t.TempDir(), repReporting(1), url)
	h.start()
	const n = 5
	h.submit(0, n)
	h.pump(func() bool { return value(h.eval(0).failures) >= 3 && h.eval(0).spool.Len() == n })
	clock.Advance(10 * time.Minute) // beyond the skew window of the sealing time

	// Back on the same address.
	srv := &repServer{t: t, clock: clock, key: repKey, got: make(chan wire.Batch, 100)}
	var ln2 net.Listener
	h.eventually("listening again on "+addr, func() bool {
		var err error
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv.srv = httptest.NewUnstartedServer(srv)
	srv.srv.Listener.Close()
	srv.srv.Listener = ln2
	srv.srv.Start()
	t.Cleanup(srv.srv.Close)

	h.pump(func() bool { a, _ := srv.snapshot(); return len(a) == n })
	checkOrder(t, srv.wait(n), 0, n)
	h.eventually("spool emptied", func() bool { return h.eval(0).spool.Len() == 0 })
	if d := srv.duplicates(); d != 0 {
		t.Errorf("%d batches delivered twice", d)
	}
}

func TestReporterDropsRefusedBatches(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	srv.setRespond(func(n int) int {
		if n < 3 {
			return http.StatusUnauthorized
		}
		return http.StatusOK
	})
	h := newRepHarness(t, clock, t.TempDir(), repReporting(1), srv.url)
	h.start()
	h.submit(0, 4)
	b := srv.wait(1) // the clock never moves: refusals are not retried
	if len(b[0].Results) != 1 || b[0].Results[0].Check != "check-003" {
		t.Fatalf("accepted %+v, want the fourth batch", b[0].Results)
	}
	if got := value(h.eval(0).rejected.WithLabelValues("401")); got != 3 {
		t.Errorf("rejected_total{status=401} = %v, want 3", got)
	}
	if n := h.logs.count("refused a batch"); n != 1 {
		t.Errorf("%d refusal logs in a minute, want 1", n)
	}
	h.eventually("spool emptied", func() bool { return h.eval(0).spool.Len() == 0 })

	// A minute later, the next refusal is logged again, with the count.
	srv.setRespond(func(int) int { return http.StatusRequestEntityTooLarge })
	clock.Advance(time.Minute)
	h.submit(4, 5)
	h.eventually("the 413 logged", func() bool { return h.logs.count("refused a batch") == 2 })
	if got := value(h.eval(0).rejected.WithLabelValues("413")); got != 1 {
		t.Errorf("rejected_total{status=413} = %v, want 1", got)
	}
}

func TestPermanentStatuses(t *testing.T) {
	for status, want := range map[int]bool{
		400: true, 401: true, 403: true, 413: true,
		404: false, 408: false, 429: false, 500: false, 502: false, 503: false, 308: false,
	} {
		if permanent(status, "", "signature does not match") != want {
			t.Errorf("permanent(%d) = %v, want %v", status, !want, want)
		}
	}
	// The evaluator's clock-skew refusal heals when a clock is fixed, and
	// every attempt is signed anew: it must be retried, not dropped.
	if permanent(401, "", "timestamp outside the allowed clock skew: 10m0s off") {
		t.Error("a clock-skew 401 is treated as permanent")
	}
	for attempt := 1; attempt < 100; attempt++ {
		ceiling := min(backoffMax, backoffMin<<min(attempt-1, 15))
		if d := backoff(attempt, 0); d < 0 || d >= ceiling {
			t.Fatalf("backoff(%d) = %v, want in [0, %v)", attempt, d, ceiling)
		}
		// Capped at the heartbeat: an evaluator's start grace allows that.
		if d := backoff(attempt, 10*time.Second); d < 0 || d >= min(ceiling, 10*time.Second) {
			t.Fatalf("backoff(%d) under a 10s heartbeat = %v", attempt, d)
		}
	}
}

func TestReporterSpoolLimit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	rep := repReporting(1)
	rep.SpoolSize = 1000 // two or three batches of one result
	h := newRepHarness(t, clock, t.TempDir(), rep, srv.url)
	e := h.eval(0)
	h.start()

	const n = 10
	h.submit(0, n)
	// Every batch sealed, and the sender waiting to retry: no request is in
	// flight when the evaluator comes back.
	h.eventually("every batch sealed", func() bool {
		_, requests := srv.snapshot()
		return int(value(e.spoolDropped))+e.spool.Len() == n && value(e.failures) >= 1 && requests >= 1
	})
	dropped := int(value(e.spoolDropped))
	if e.spool.Bytes() > int64(rep.SpoolSize) || dropped < n/2 {
		t.Fatalf("spool holds %d bytes in %d batches with %d dropped, want under %d bytes", e.spool.Bytes(), e.spool.Len(), dropped, rep.SpoolSize)
	}
	if got := value(h.r.metrics.spoolBytes.WithLabelValues(srv.url)); got != float64(e.spool.Bytes()) {
		t.Errorf("spool_bytes = %v, spool holds %d", got, e.spool.Bytes())
	}
	if got := value(h.r.metrics.spoolBatches.WithLabelValues(srv.url)); got != float64(e.spool.Len()) {
		t.Errorf("spool_batches = %v, spool holds %d", got, e.spool.Len())
	}
	if c := h.logs.count("spool full"); c != 1 {
		t.Errorf("%d spool-full logs for one overflow, want 1", c)
	}

	srv.setRespond(nil)
	h.pump(func() bool { a, _ := srv.snapshot(); return len(a) == n-dropped })
	checkOrder(t, srv.wait(n-dropped), dropped, n) // the newest survive
	h.eventually("spool emptied", func() bool { return e.spool.Len() == 0 })
	if d := srv.duplicates(); d != 0 {
		t.Errorf("%d batches delivered twice", d)
	}

	// A second outage is a second episode, logged again.
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	h.submit(n, 2*n)
	h.eventually("second overflow", func() bool { return int(value(e.spoolDropped))+e.spool.Len() == n+dropped })
	if c := h.logs.count("spool full"); c != 2 {
		t.Errorf("%d spool-full logs for two overflows, want 2", c)
	}
}

func TestReporterRestartDeliversSpooled(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after the server stops

	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	first := newRepHarness(t, clock, dir, repReporting(2), srv.url)
	first.start()
	first.submit(0, 5) // two full batches; the fifth result is sealed on stop
	first.eventually("two batches spooled", func() bool { return first.eval(0).spool.Len() >= 2 })
	first.stop()
	files, err := filepath.Glob(filepath.Join(first.eval(0).spool.dir, "*.json"))
	if err != nil || len(files) != 3 {
		t.Fatalf("spool files %v (%v), want 3", files, err)
	}
	if accepted, _ := srv.snapshot(); len(accepted) != 0 {
		t.Fatalf("%d batches accepted during the outage", len(accepted))
	}

	// A request the first agent gave up on may still be answered 200 once
	// the evaluator is back, and then arrive again from the second: the
	// evaluator applies it once (at-least-once delivery, idempotent ingest).
	srv.setRespond(nil)
	second := newRepHarness(t, clock, dir, repReporting(2), srv.url)
	if got := value(second.r.metrics.spoolBatches.WithLabelValues(srv.url)); got != 3 {
		t.Errorf("spool_batches = %v at start, want 3", got)
	}
	second.start()
	replayed := srv.wait(3)
	checkOrder(t, replayed, 0, 5)
	// The clock has not moved since: new batches still follow the old ones.
	second.submit(5, 7)
	more := srv.wait(1)
	if more[0].Seq <= replayed[2].Seq {
		t.Fatalf("new batch seq %d not after replayed %d", more[0].Seq, replayed[2].Seq)
	}
	checkOrder(t, append(replayed, more...), 0, 7)
	second.stop()
}

func TestReporterStopSealsWhatIsQueued(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	h := newRepHarness(t, clock, t.TempDir(), repReporting(2), closedAddrURL(t))
	h.submit(0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var batches []wire.Batch
	s := h.eval(0).spool
	for {
		seq, data, ok := s.Oldest()
		if !ok {
			break
		}
		var b wire.Batch
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
		s.Remove(seq)
	}
	if len(batches) != 2 {
		t.Fatalf("%d batches spooled, want 2", len(batches))
	}
	checkOrder(t, batches, 0, 3)
}

// closedAddrURL returns the URL of a loopback port nobody listens on.
func closedAddrURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String()
}

func TestReporterStopCancelsInFlightRequest(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	clock := newFakeClock(repEpoch)
	arrived := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done() // never answers; the agent must give up
	}))
	t.Cleanup(srv.Close)
	h := newRepHarness(t, clock, t.TempDir(), repReporting(1), srv.URL)
	h.start()
	h.submit(0, 1)
	select {
	case <-arrived:
	case <-time.After(repWait):
		t.Fatal("no request arrived")
	}
	h.stop()
	if n := h.eval(0).spool.Len(); n != 1 {
		t.Fatalf("%d batches spooled after an interrupted send, want 1", n)
	}
	if got := value(h.eval(0).failures); got != 0 {
		t.Errorf("a cancelled send counted as %v failures", got)
	}
}

func TestReporterSubmitNeverBlocks(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	h := newRepHarness(t, clock, t.TempDir(), repReporting(2), closedAddrURL(t))
	done := make(chan struct{})
	go func() {
		h.submit(0, minQueue+20) // nobody runs the reporter
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(repWait):
		t.Fatal("Submit blocked on a full queue")
	}
	if got := value(h.r.metrics.dropped.WithLabelValues("queue_full")); got != 20 {
		t.Errorf("dropped_total{queue_full} = %v, want 20", got)
	}
	if n := h.logs.count("queue full"); n != 1 {
		t.Errorf("%d queue-full logs, want 1", n)
	}
}

func TestReporterSplitsOversizedBatches(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	h := newRepHarness(t, clock, t.TempDir(), repReporting(4), srv.url)
	h.start()
	// Four results that together exceed the limit go as two batches.
	big := strings.Repeat("x", wire.MaxBatchBytes/4)
	for i := range 4 {
		h.r.Submit(wire.Result{Check: fmt.Sprintf("check-%03d", i), Reason: big})
	}
	checkOrder(t, srv.wait(2), 0, 4)

	// One result over the limit on its own is dropped; its neighbours go.
	h.r.Submit(wire.Result{Check: "huge", Reason: strings.Repeat("x", wire.MaxBatchBytes)})
	h.submit(4, 7)
	checkOrder(t, srv.wait(2), 4, 7)
	if got := value(h.r.metrics.dropped.WithLabelValues("too_large")); got != 1 {
		t.Errorf("dropped_total{too_large} = %v, want 1", got)
	}
	srv.none()
}

func TestNewReporterOptions(t *testing.T) {
	valid := func() ReporterOptions {
		return ReporterOptions{Evaluators: []string{"http://127.0.0.1:9797"}, Key: repKey,
			Region: "us-east", Agent: "a", SpoolDir: t.TempDir()}
	}
	tests := []struct {
		name   string
		change func(*ReporterOptions)
		want   string
	}{
		{"no evaluator", func(o *ReporterOptions) { o.Evaluators = nil }, "no evaluator URL"},
		{"no key", func(o *ReporterOptions) { o.Key = nil }, "no key"},
		{"no agent", func(o *ReporterOptions) { o.Agent = "" }, "region and agent name are required"},
		{"no spool", func(o *ReporterOptions) { o.SpoolDir = "" }, "no spool directory"},
		{"bad scheme", func(o *ReporterOptions) { o.Evaluators = []string{"ftp://x"} }, `evaluator "ftp://x": want an http://`},
		{"no host", func(o *ReporterOptions) { o.Evaluators = []string{"http://"} }, "want an http://"},
		{"twice", func(o *ReporterOptions) {
			o.Evaluators = []string{"http://127.0.0.1:9797", "http://127.0.0.1:9797/v1/results"}
		}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.change(&o)
			_, err := NewReporter(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}

	t.Run("defaults and metrics", func(t *testing.T) {
		o := valid()
		reg := prometheus.NewRegistry()
		o.Registerer = reg
		o.Evaluators = []string{"http://user:secret@127.0.0.1:9797/"}
		r, err := NewReporter(o)
		if err != nil {
			t.Fatal(err)
		}
		if r.batchSize != checks.DefaultBatchSize || r.heartbeat != checks.DefaultHeartbeat ||
			r.batchDelay != checks.DefaultBatchDelay || r.spoolSize != checks.DefaultSpoolSize {
			t.Errorf("defaults: %d %v %v %d", r.batchSize, r.heartbeat, r.batchDelay, r.spoolSize)
		}
		if cap(r.queue) != max(4*checks.DefaultBatchSize, minQueue) {
			t.Errorf("queue capacity %d", cap(r.queue))
		}
		if r.evals[0].endpoint != "http://user:secret@127.0.0.1:9797"+wire.ResultsPath {
			t.Errorf("endpoint %q", r.evals[0].endpoint)
		}
		problems, err := testutil.GatherAndLint(reg)
		if err != nil || len(problems) != 0 {
			t.Errorf("metrics lint: %v %v", problems, err)
		}
		var out bytes.Buffer
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			fmt.Fprintln(&out, mf.String())
		}
		if strings.Contains(out.String(), "secret") {
			t.Errorf("a credential in the evaluator URL leaked into the metrics:\n%s", out.String())
		}
		if _, err := NewReporter(o); err == nil {
			t.Error("a second reporter registered the same metrics")
		}
	})
}
