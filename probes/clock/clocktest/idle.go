package clocktest

import (
	"bytes"
	"runtime"
	"slices"
	"time"
)

// WaitIdle blocks until every other goroutine of the test binary is parked:
// waiting on a channel, a lock, a timer or the network, with nothing running,
// runnable or inside a system call. A test that drives a Fake clock calls it
// after each Advance, so that the work the fired timers started (a probe, a
// batch sent over loopback, a decision, a file written) is finished before
// time moves again. This is what keeps a loaded machine from letting the
// fake clock outrun the goroutines under test: the wait is for a state, and
// a slow machine only makes it take longer.
//
// Parked is judged from goroutine dumps taken a short sleep apart. The sleep
// lets the runtime poll the network, so that bytes written to a loopback
// socket wake their reader before the next dump; the dumps must agree, with
// nothing busy, three times in a row. It fails the test after limit of real
// time, naming the goroutines still busy, rather than hang: a goroutine that
// never parks (a spin loop, a leak from an earlier test) is a bug to see.
func WaitIdle(tb Fataler, limit time.Duration) {
	tb.Helper()
	const agreeing = 3
	deadline := time.Now().Add(limit)
	buf := make([]byte, 1<<20)
	var last []byte
	same := 0
	for {
		dump := goroutineDump(&buf)
		busy := busyGoroutines(dump)
		switch {
		case len(busy) > 0:
			same = 0
		case bytes.Equal(dump, last):
			same++
		default:
			same = 1
		}
		if same >= agreeing {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("goroutines still busy after %s:\n%s", limit, bytes.Join(busy, []byte("\n\n")))
			return
		}
		last = append(last[:0], dump...)
		time.Sleep(200 * time.Microsecond)
	}
}

// goroutineDump returns the stacks of every goroutine but the caller's, with
// the wait durations ("chan receive, 2 minutes") cut out so that dumps of an
// unchanged process compare equal.
func goroutineDump(buf *[]byte) []byte {
	for {
		n := runtime.Stack(*buf, true)
		if n < len(*buf) {
			dump := (*buf)[:n]
			// The first goroutine is the caller, running this function.
			if i := bytes.Index(dump, []byte("\n\ngoroutine ")); i >= 0 {
				dump = dump[i+2:]
			} else {
				dump = nil
			}
			return stripWaitTimes(dump)
		}
		*buf = make([]byte, 2*len(*buf))
	}
}

// stripWaitTimes turns "[select, 3 minutes]:" into "[select]:".
func stripWaitTimes(dump []byte) []byte {
	out := make([]byte, 0, len(dump))
	for len(dump) > 0 {
		line, rest, _ := bytes.Cut(dump, []byte("\n"))
		dump = rest
		if bytes.HasPrefix(line, []byte("goroutine ")) {
			if open := bytes.IndexByte(line, '['); open >= 0 {
				if comma := bytes.Index(line[open:], []byte(", ")); comma >= 0 && bytes.HasSuffix(line, []byte("]:")) {
					if isDuration(line[open+comma+2 : len(line)-2]) {
						line = append(append([]byte{}, line[:open+comma]...), "]:"...)
					}
				}
			}
		}
		out = append(append(out, line...), '\n')
	}
	return out
}

func isDuration(s []byte) bool {
	return bytes.HasSuffix(s, []byte(" minutes")) || bytes.HasSuffix(s, []byte(" minute"))
}

// busyStates are the goroutine states that mean work is under way rather
// than awaited.
var busyStates = [][]byte{
	[]byte("[running"), []byte("[runnable"), []byte("[syscall"), []byte("[preempted"),
	[]byte("[copystack"), []byte("[GC assist"),
}

// alwaysWaiting are frames of goroutines that show a busy state while they
// wait: os/signal's receiver sits "in a syscall" for as long as no signal
// comes.
var alwaysWaiting = [][]byte{[]byte("os/signal.signal_recv(")}

// busyGoroutines returns the stacks in dump whose state is busy.
func busyGoroutines(dump []byte) [][]byte {
	var busy [][]byte
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		if slices.ContainsFunc(alwaysWaiting, func(frame []byte) bool { return bytes.Contains(g, frame) }) {
			continue
		}
		for _, s := range busyStates {
			if bytes.Contains(header, s) {
				busy = append(busy, g)
				break
			}
		}
	}
	return busy
}

// WaitFor polls cond until it holds, failing the test after limit of real
// time. It waits for real peers (goroutines, servers, processes), never
// through an interval of Outpost's own, which runs on a Fake clock. Polls
// start a millisecond apart and back off to 100ms, so that a condition met
// at once costs nothing and a slow peer is not hammered.
func WaitFor(tb Fataler, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for poll := time.Millisecond; !cond(); poll = min(2*poll, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", limit, what)
			return
		}
		time.Sleep(poll)
	}
}
