package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// breakDir replaces the directory dir by a regular file, so that every write
// under it fails with "not a directory", even for root; the returned
// function makes it a directory again.
func breakDir(t *testing.T, dir string) (repair func()) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a spool"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

// A spool that cannot be written costs the agent its restart safety, not its
// delivery: batches and heartbeats go on reaching the evaluator from memory,
// and the agent says so in its health, its metrics and one log line each way.
func TestReporterSendsFromMemoryWhenTheSpoolFails(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	rep := repReporting(2)
	rep.Heartbeat = 10 * time.Minute
	dir := t.TempDir()
	h := newRepHarness(t, clock, dir, rep, srv.url)
	e := h.eval(0)
	h.start()
	h.submit(0, 2)
	checkOrder(t, srv.wait(1), 0, 2)
	if got := h.r.SpoolHealth(); got != "" {
		t.Fatalf("health %q with a writable spool", got)
	}

	repair := breakDir(t, e.spool.dir)
	h.submit(2, 6)
	checkOrder(t, srv.wait(2), 2, 6)
	// A batch kept in memory may be sent before the reporter has marked
	// the spool failing.
	h.eventually("the spool marked failing", func() bool { return value(e.spoolFailing) == 1 && value(e.spoolErrors) == 2 })
	if got, want := value(e.spoolErrors), 2.0; got != want {
		t.Errorf("spool_errors_total = %v, want %v", got, want)
	}
	if got := value(e.spoolFailing); got != 1 {
		t.Errorf("spool_failing = %v, want 1", got)
	}
	want := "spool " + dir + " cannot be written: not a directory; batches are sent from memory"
	if got := h.r.SpoolHealth(); got != want {
		t.Errorf("health %q, want %q", got, want)
	}

	// The heartbeat too: the region stays alive.
	h.queued()
	h.eventually("the sender caught up", func() bool { return e.spool.Len() == 0 })
	if d, ok := h.nextTimer(); !ok || d > rep.Heartbeat {
		t.Fatalf("next timer in %v (%v), want the heartbeat", d, ok)
	}
	clock.Advance(rep.Heartbeat)
	if hb := srv.wait(1)[0]; len(hb.Results) != 0 {
		t.Fatalf("heartbeat with %d results", len(hb.Results))
	}

	// An evaluator that does not answer meanwhile: batches wait in memory,
	// in order, within the bound, and arrive once it is back.
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	h.submit(6, 10)
	h.eventually("batches waiting in memory", func() bool { return e.spool.Len() == 2 && value(e.failures) >= 1 })
	if got := value(h.r.metrics.spoolMemBytes.WithLabelValues(srv.url)); got == 0 || got != float64(e.spool.MemBytes()) {
		t.Errorf("spool_memory_bytes = %v, memory holds %d", got, e.spool.MemBytes())
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*", "*.json")); len(files) != 0 {
		t.Errorf("batch files %v while the spool is a file", files)
	}
	srv.setRespond(nil)
	h.pump(func() bool { return e.spool.Len() == 0 })
	checkOrder(t, srv.wait(2), 6, 10)

	if c := h.logs.count("spool cannot be written"); c != 1 {
		t.Errorf("%d logs of the failing spool for one episode, want 1:\n%s", c, h.logs)
	}

	// Writable again: back to disk, said once.
	repair()
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	h.submit(10, 12)
	// The file is on disk a moment before the reporter marks the spool
	// healthy again.
	h.eventually("batch spooled on disk and the spool healthy", func() bool {
		files, _ := filepath.Glob(filepath.Join(e.spool.dir, "*.json"))
		return len(files) == 1 && h.r.SpoolHealth() == ""
	})
	if got := value(e.spoolFailing); got != 0 {
		t.Errorf("spool_failing = %v after recovery", got)
	}
	if c := h.logs.count("spool writable again"); c != 1 {
		t.Errorf("%d recovery logs, want 1", c)
	}
	srv.setRespond(nil)
	h.pump(func() bool { return e.spool.Len() == 0 })
	checkOrder(t, srv.wait(1), 10, 12)
	if d := srv.duplicates(); d != 0 {
		t.Errorf("%d batches delivered twice", d)
	}
}

// While the spool cannot be written, memory holds at most the spool size
// (and never more than maxMemSpool): the oldest batches go, counted.
func TestReporterMemorySpoolIsBounded(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	rep := repReporting(1)
	rep.SpoolSize = 1000 // two or three batches of one result
	h := newRepHarness(t, clock, t.TempDir(), rep, srv.url)
	e := h.eval(0)
	if h.r.memSize != 1000 {
		t.Fatalf("memory bound %d, want the spool size", h.r.memSize)
	}
	breakDir(t, e.spool.dir)
	h.start()
	const n = 10
	h.submit(0, n)
	h.eventually("every batch sealed", func() bool {
		return int(value(e.spoolDropped))+e.spool.Len() == n && value(e.failures) >= 1
	})
	dropped := int(value(e.spoolDropped))
	if e.spool.MemBytes() > 1000 || dropped < n/2 {
		t.Fatalf("memory holds %d bytes in %d batches with %d dropped", e.spool.MemBytes(), e.spool.Len(), dropped)
	}
	srv.setRespond(nil)
	h.pump(func() bool { return e.spool.Len() == 0 })
	checkOrder(t, srv.wait(n-dropped), dropped, n) // the newest survive
}

// An agent whose spool directory cannot even be created starts anyway and
// delivers from memory, and writes there once it can.
func TestReporterStartsWithoutItsSpool(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(repEpoch)
	srv := newRepServer(t, clock, repKey)
	file := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "spool")
	h := newRepHarness(t, clock, dir, repReporting(1), srv.url)
	e := h.eval(0)
	if got := h.r.SpoolHealth(); !strings.HasPrefix(got, "spool "+dir+" cannot be written: not a directory") {
		t.Fatalf("health %q", got)
	}
	if got := value(e.spoolFailing); got != 1 {
		t.Errorf("spool_failing = %v at start, want 1", got)
	}
	if c := h.logs.count("spool cannot be written"); c != 1 {
		t.Errorf("%d logs at start, want 1", c)
	}
	h.start()
	h.submit(0, 1)
	checkOrder(t, srv.wait(1), 0, 1)

	// The directory can be made now: the spool is used again.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	srv.setRespond(func(int) int { return http.StatusServiceUnavailable })
	h.submit(1, 2)
	// The file is on disk a moment before the spool marks itself healthy.
	h.eventually("batch spooled on disk and the spool healthy", func() bool {
		files, _ := filepath.Glob(filepath.Join(e.spool.dir, "*.json"))
		return len(files) == 1 && h.r.SpoolHealth() == ""
	})
	srv.setRespond(nil)
	h.pump(func() bool { return e.spool.Len() == 0 })
	checkOrder(t, srv.wait(1), 1, 2)
}
