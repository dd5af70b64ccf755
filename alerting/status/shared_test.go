package status

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// get is s.Get for producers that never fail.
func get(s *Shared, produce func() []byte) []byte {
	b, _ := s.Get(func() ([]byte, error) { return produce(), nil })
	return b
}

// TestSharedBuildServesACrowdFromOneBuild: readers that ask while a build
// is under way wait for it and get its body; a reader after it builds
// anew.
func TestSharedBuildServesACrowdFromOneBuild(t *testing.T) {
	var s Shared
	var builds atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan []byte)
	go func() {
		first <- get(&s, func() []byte { builds.Add(1); close(started); <-release; return []byte("one") })
	}()
	<-started
	var wg sync.WaitGroup
	bodies := make([][]byte, 10)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = get(&s, func() []byte { builds.Add(1); return []byte("another") })
		}()
	}
	clocktest.WaitIdle(t, 30*time.Second) // every reader waits on the build
	close(release)
	wg.Wait()
	if got := <-first; string(got) != "one" {
		t.Fatalf("first reader got %q", got)
	}
	for i, b := range bodies {
		if string(b) != "one" {
			t.Errorf("reader %d got %q, want the shared build's body", i, b)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds for 11 readers at once, want 1", n)
	}
	if got := get(&s, func() []byte { builds.Add(1); return []byte("later") }); string(got) != "later" || builds.Load() != 2 {
		t.Errorf("a later reader got %q after %d builds, want a build of its own", got, builds.Load())
	}
}
