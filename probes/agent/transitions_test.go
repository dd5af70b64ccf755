package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// lineLog is a log destination that keeps lines, for concurrent writers.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *lineLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, `msg="`+msg+`"`) {
			n++
		}
	}
	return n
}

func (l *lineLog) last(msg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.lines) - 1; i >= 0; i-- {
		if strings.Contains(l.lines[i], `msg="`+msg+`"`) {
			return l.lines[i]
		}
	}
	return ""
}

// TestTransitionLogStaysBoundedInAStorm: 300 checks failing at once give
// transitionBurst named lines and, when the minute ends, one summary with
// the rest; their recovery the same; a check that does not change logs
// nothing.
func TestTransitionLogStaysBoundedInAStorm(t *testing.T) {
	clk := clocktest.New(epoch)
	logs := &lineLog{}
	tl := NewTransitionLog(slog.New(slog.NewTextHandler(logs, nil)), clk)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	result := func(i int, ok bool) wire.Result {
		return wire.Result{Check: fmt.Sprintf("c%03d", i), Region: "us-east", OK: ok, Reason: "status 503, want 200"}
	}
	for i := range 300 {
		tl.Observe(result(i, true))
	}
	clk.WaitTimersCreated(t, 1, 10*time.Second)
	step := func() {
		clocktest.WaitIdle(t, 30*time.Second)
		clk.Advance(transitionWindow)
		clocktest.WaitIdle(t, 30*time.Second)
	}
	step()
	if n := logs.count("check passing"); n != transitionBurst {
		t.Fatalf("%d 'check passing' lines for 300 checks, want %d", n, transitionBurst)
	}
	for i := range 300 {
		tl.Observe(result(i, false))
		tl.Observe(result(i, false)) // no change: no line, no count
	}
	step()
	if n := logs.count("check failing"); n != transitionBurst {
		t.Fatalf("%d 'check failing' lines, want %d", n, transitionBurst)
	}
	if s := logs.last("more checks changed state than are logged one by one"); !strings.Contains(s, "started_failing=280") {
		t.Fatalf("summary = %q, want started_failing=280", s)
	}
	for i := range 300 {
		tl.Observe(result(i, true))
	}
	step()
	if s := logs.last("more checks changed state than are logged one by one"); !strings.Contains(s, "recovered=280") || logs.count("check recovered") != transitionBurst {
		t.Fatalf("after recovery: summary %q, %d recovered lines", s, logs.count("check recovered"))
	}
	if total := len(logs.lines); total > 3*(transitionBurst+1) {
		t.Errorf("%d lines for 900 transitions, want at most %d", total, 3*(transitionBurst+1))
	}
}

func TestTransitionLogForgetsRemovedChecks(t *testing.T) {
	tl := NewTransitionLog(slog.New(slog.DiscardHandler), clocktest.New(epoch))
	tl.Observe(wire.Result{Check: "a", Region: "r", OK: true})
	tl.Observe(wire.Result{Check: "b", Region: "r", OK: true})
	tl.Forget(map[string]bool{JobKey("a", "r"): true})
	if _, ok := tl.last[JobKey("b", "r")]; ok || len(tl.last) != 1 {
		t.Errorf("kept %v after forgetting b", tl.last)
	}
}
