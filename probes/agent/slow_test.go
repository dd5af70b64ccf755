package agent

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

func TestEvaluatorsLost(t *testing.T) {
	const lostAfter = time.Minute
	t0 := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name      string
		answerDue time.Time
		now       time.Time
		want      bool
	}{
		{"answered within lost_after", time.Time{}, at(lostAfter), false},
		{"silent past lost_after, nothing in flight", time.Time{}, at(lostAfter + time.Second), true},
		{"silent past lost_after, an answer may still come", at(lostAfter + 5*time.Second), at(lostAfter + time.Second), false},
		{"the answer's deadline passed", at(lostAfter + 5*time.Second), at(lostAfter + 6*time.Second), true},
		{"in flight, but silent a send timeout past lost_after", at(lostAfter + sendTimeout + 5*time.Second), at(lostAfter + sendTimeout + time.Second), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EvaluatorsLost(t0, tc.answerDue, tc.now, lostAfter); got != tc.want {
				t.Fatalf("EvaluatorsLost = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBusyEvaluatorIsReached: a 503 an evaluator gives itself (it says so
// in wire.HeaderEvaluator) means it is there; a 503 without it, from a
// proxy that found no evaluator, does not.
func TestBusyEvaluatorIsReached(t *testing.T) {
	for _, tc := range []struct {
		name      string
		evaluator bool
	}{{"evaluator busy", true}, {"proxy without an evaluator", false}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock(repEpoch)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if tc.evaluator {
					w.Header().Set(wire.HeaderEvaluator, "1")
				}
				http.Error(w, "busy; retry later", http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			h := newRepHarness(t, clock, t.TempDir(), repReporting(1), srv.URL)
			made := h.r.LastReached()
			clock.Advance(time.Minute)
			h.start()
			h.submit(0, 1)
			e := h.eval(0)
			h.eventually("a refused attempt", func() bool { return value(e.failures) >= 1 })
			if got := h.r.LastReached().After(made); got != tc.evaluator {
				t.Fatalf("reached after the 503: %v, want %v", got, tc.evaluator)
			}
			if e.spool.Len() != 1 {
				t.Fatalf("spool holds %d batches, want the refused one kept for retry", e.spool.Len())
			}
		})
	}
}

// TestSlowAnswerAwaited: while a batch waits for a slow evaluator's answer,
// AnswerDue says until when, and WatchEvaluators' verdict waits for it.
func TestSlowAnswerAwaited(t *testing.T) {
	clock := newFakeClock(repEpoch)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set(wire.HeaderEvaluator, "1")
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(unblock) // runs first: the server can then close
	h := newRepHarness(t, clock, t.TempDir(), repReporting(1), srv.URL)
	h.start()
	h.submit(0, 1)
	<-arrived
	due := h.r.AnswerDue()
	if want := clock.Now().Add(sendTimeout); !due.Equal(want) {
		t.Fatalf("AnswerDue = %v while a batch is in flight, want %v", due, want)
	}
	const lostAfter = 2 * time.Second
	clock.Advance(lostAfter + time.Second) // the answer is slower than lost_after
	if EvaluatorsLost(h.r.LastReached(), h.r.AnswerDue(), clock.Now(), lostAfter) {
		t.Fatal("lost while an answer was still due")
	}
	unblock()
	h.eventually("the answer", func() bool { return h.r.AnswerDue().IsZero() && value(h.eval(0).sent) == 1 })
	if EvaluatorsLost(h.r.LastReached(), h.r.AnswerDue(), clock.Now(), lostAfter) {
		t.Fatal("lost right after an answer")
	}
}
