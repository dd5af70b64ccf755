package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// seqServer is an evaluator's sequence rule on 127.0.0.1: it accepts a
// batch numbered above the highest it accepted and refuses the others as
// replays (401, wire.RefusedReplay), or refuses every batch with
// alwaysReplay; it answers GET wire.SeqPath, signed, with its highest.
type seqServer struct {
	t   *testing.T
	clk *fakeClock
	url string

	mu           sync.Mutex
	highest      uint64
	alwaysReplay bool
	posts, gets  int
	accepted     []wire.Batch
}

func newSeqServer(t *testing.T, clk *fakeClock, highest uint64, alwaysReplay bool) *seqServer {
	s := &seqServer{t: t, clk: clk, highest: highest, alwaysReplay: alwaysReplay}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *seqServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ts, sig := req.Header.Get(wire.HeaderTimestamp), req.Header.Get(wire.HeaderSignature)
	region, agent := req.Header.Get(wire.HeaderRegion), req.Header.Get(wire.HeaderAgent)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.Method == http.MethodGet && req.URL.Path == wire.SeqPath:
		s.gets++
		if err := wire.Verify([][]byte{repKey}, ts, sig, wire.SeqPayload(region, agent), s.clk.Now()); err != nil {
			s.t.Errorf("sequence query: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(wire.SeqAnswer{Highest: s.highest})
	case req.Method == http.MethodPost && req.URL.Path == wire.ResultsPath:
		s.posts++
		body, _ := io.ReadAll(req.Body)
		if err := wire.Verify([][]byte{repKey}, ts, sig, body, s.clk.Now()); err != nil {
			s.t.Errorf("batch: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b wire.Batch
		if err := json.Unmarshal(body, &b); err != nil {
			s.t.Errorf("batch: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if s.alwaysReplay || b.Seq <= s.highest {
			w.Header().Set(wire.HeaderRefused, wire.RefusedReplay)
			http.Error(w, "replayed or out-of-order sequence", http.StatusUnauthorized)
			return
		}
		s.highest = b.Seq
		s.accepted = append(s.accepted, b)
		io.WriteString(w, "ok")
	default:
		s.t.Errorf("%s %s", req.Method, req.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func (s *seqServer) counts() (posts, gets int, accepted []wire.Batch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, s.gets, append([]wire.Batch(nil), s.accepted...)
}

// TestRebaseDeliversEveryBatchInOrder: an evaluator that accepted a number
// a minute ahead of the agent's clock refuses its batches as replays; the
// agent re-bases and every batch is delivered, in order, none dropped.
func TestRebaseDeliversEveryBatchInOrder(t *testing.T) {
	clk := newFakeClock(repEpoch)
	ahead := uint64(repEpoch.Add(time.Minute).UnixNano())
	srv := newSeqServer(t, clk, ahead, false)
	h := newRepHarness(t, clk, t.TempDir(), repReporting(1), srv.url)
	h.start()
	h.submit(0, 6)
	h.pump(func() bool { _, _, acc := srv.counts(); return len(acc) >= 6 })
	_, _, acc := srv.counts()
	if acc[0].Seq <= ahead {
		t.Errorf("first batch delivered as seq %d, want above the evaluator's highest %d", acc[0].Seq, ahead)
	}
	checkOrder(t, acc, 0, 6)
	e := h.eval(0)
	if n := value(e.rebases); n < 1 {
		t.Errorf("rebases = %v, want at least 1", n)
	}
	if n := value(e.rejected.WithLabelValues("401")); n != 0 {
		t.Errorf("rejected{401} = %v: batches were dropped", n)
	}
	h.eventually("the spool empty", func() bool { return e.spool.Len() == 0 })
	// Batches sealed after the re-base are numbered above it too.
	h.submit(6, 7)
	h.pump(func() bool { _, _, acc := srv.counts(); return len(acc) >= 7 })
	_, _, acc = srv.counts()
	checkOrder(t, acc, 0, 7)
}

// TestRebaseDoesNotLoop: an evaluator that refuses every batch as a replay
// (say another agent runs under the same name) gets one re-base per
// backoff, not a tight loop, and the batch is kept, not dropped.
func TestRebaseDoesNotLoop(t *testing.T) {
	clk := newFakeClock(repEpoch)
	srv := newSeqServer(t, clk, 0, true)
	h := newRepHarness(t, clk, t.TempDir(), repReporting(1), srv.url)
	h.start()
	h.submit(0, 1)
	const rounds = 5
	for range rounds {
		clocktest.WaitIdle(t, repWait)
		clk.Advance(backoffMax)
	}
	clocktest.WaitIdle(t, repWait)
	posts, gets, _ := srv.counts()
	if gets < 2 || gets > rounds+1 {
		t.Errorf("%d sequence queries over %d backoffs, want between 2 and %d", gets, rounds, rounds+1)
	}
	if posts > 2*(rounds+1) {
		t.Errorf("%d posts over %d backoffs: re-basing loops", posts, rounds)
	}
	e := h.eval(0)
	if e.spool.Len() == 0 || value(e.rejected.WithLabelValues("401")) != 0 {
		t.Errorf("the refused batch was dropped (spool %d, rejected %v)", e.spool.Len(), value(e.rejected.WithLabelValues("401")))
	}
}

// TestPermanentRefusals: a replay or a number ahead of the clock is never
// a reason to drop a batch, whatever the status.
func TestPermanentRefusals(t *testing.T) {
	for _, c := range []struct {
		status  int
		refused string
		want    bool
	}{
		{http.StatusUnauthorized, wire.RefusedReplay, false},
		{http.StatusBadRequest, wire.RefusedAhead, false},
		{http.StatusUnauthorized, "", true},
		{http.StatusBadRequest, "", true},
	} {
		if got := permanent(c.status, c.refused, "x"); got != c.want {
			t.Errorf("permanent(%d, %q) = %v, want %v", c.status, c.refused, got, c.want)
		}
	}
}

func TestWithSeqKeepsTheRest(t *testing.T) {
	b := wire.Batch{V: 1, Agent: "a", Region: "us-east", Seq: 5, ConfigDigest: "d", Created: repEpoch,
		Results: []wire.Result{{V: 1, Check: "web", Region: "us-east", OK: true, Reason: "r", Time: repEpoch, Seq: 3}}}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := withSeq(data, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Batch
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := b
	want.Seq = 1 << 62
	got.Created, want.Created = got.Created.UTC(), want.Created.UTC()
	got.Results[0].Time, want.Results[0].Time = got.Results[0].Time.UTC(), want.Results[0].Time.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withSeq:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := withSeq([]byte(`{"v":1}`), 7); err == nil {
		t.Error("withSeq of a batch without seq: no error")
	}
}
