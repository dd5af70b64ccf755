package clocktest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestFakeFiresOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := New(start)
	a, b := f.NewTimer(time.Second), f.NewTimer(3*time.Second)
	if n := f.Advance(999 * time.Millisecond); n != 0 {
		t.Fatalf("fired %d before due", n)
	}
	if n := f.Advance(time.Millisecond); n != 1 {
		t.Fatalf("fired %d at 1s, want 1", n)
	}
	if got := <-a.C(); !got.Equal(start.Add(time.Second)) {
		t.Errorf("fired at %v", got)
	}
	if !b.Stop() || b.Stop() {
		t.Error("Stop should report true once, for a pending timer")
	}
	if n := f.Advance(time.Hour); n != 0 {
		t.Errorf("a stopped timer fired")
	}
	if z := f.NewTimer(0); len(z.C()) != 1 {
		t.Error("a zero timer should fire at once")
	}
	if got := f.TimersCreated(); got != 3 {
		t.Errorf("created = %d, want 3", got)
	}
	f.WaitTimersCreated(t, 3, time.Second)
}

// TestWaitIdleWaitsForTheWorkATimerStarted: a timer's goroutine makes a
// loopback HTTP round trip; WaitIdle returns only once it is done, however
// long the machine takes, because a goroutine waiting on the network is
// woken before the dumps agree.
func TestWaitIdleWaitsForTheWorkATimerStarted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	f := New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := 0; i < 20; i++ {
		tm := f.NewTimer(time.Second)
		var done atomic.Bool
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			<-tm.C()
			resp, err := http.Get(srv.URL)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done.Store(true)
		}()
		f.Advance(time.Second)
		WaitIdle(t, 30*time.Second)
		if !done.Load() {
			t.Fatalf("round %d: WaitIdle returned while the round trip was under way", i)
		}
		<-stopped
	}
}

// TestWaitIdleFailsOnAGoroutineThatNeverParks names the busy goroutine.
func TestWaitIdleFailsOnAGoroutineThatNeverParks(t *testing.T) {
	var stop atomic.Bool
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for !stop.Load() {
			runtime.Gosched()
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-spun })
	rec := &recordFatal{}
	WaitIdle(rec, 50*time.Millisecond)
	if !strings.Contains(rec.msg, "still busy") || !strings.Contains(rec.msg, "TestWaitIdleFailsOnAGoroutineThatNeverParks") {
		t.Fatalf("WaitIdle reported %q, want the spinning goroutine named", rec.msg)
	}
}

type recordFatal struct{ msg string }

func (r *recordFatal) Helper() {}
func (r *recordFatal) Fatalf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}

// TestWaitIdleWithSignalsWatched: os/signal's receiver, which a binary
// that watches signals always has, is "in a syscall" while it waits; it
// must not count as busy.
func TestWaitIdleWithSignalsWatched(t *testing.T) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	t.Cleanup(func() { signal.Stop(c) })
	rec := &recordFatal{}
	WaitIdle(rec, 10*time.Second)
	if rec.msg != "" {
		t.Fatalf("WaitIdle failed: %s", rec.msg)
	}
}
