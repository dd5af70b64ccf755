package clocktest

import (
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
