package state

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// commits records what the writer reports.
type commits struct {
	mu  sync.Mutex
	all []Commit
}

func (c *commits) add(x Commit) { c.mu.Lock(); c.all = append(c.all, x); c.mu.Unlock() }

func (c *commits) list() []Commit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Commit(nil), c.all...)
}

func (c *commits) reset() { c.mu.Lock(); c.all = nil; c.mu.Unlock() }

func open(t *testing.T, path string, c *commits) *Store {
	t.Helper()
	opts := Options{Buckets: []string{"a", "b"}}
	if c != nil {
		opts.OnCommit = c.add
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func records(t *testing.T, s *Store, bucket string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.ForEach(bucket, func(k string, v []byte) error { out[k] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// gate holds the writer in its next commits until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func hold(s *Store) *gate {
	g := &gate{entered: make(chan struct{}, 100), release: make(chan struct{})}
	s.beforeWrite = func() error {
		g.entered <- struct{}{}
		<-g.release
		return nil
	}
	return g
}

func (s *Store) pendingLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// A state write touches only the changed record: with 3,000 records in
// the file, changing one writes one record and a handful of pages.
func TestWriteTouchesOnlyTheChangedRecord(t *testing.T) {
	var c commits
	s := open(t, filepath.Join(t.TempDir(), "state.db"), &c)
	value := make([]byte, 400) // about a saved decider's size
	for i := range 3000 {
		if err := s.Put("a", fmt.Sprintf("check-%04d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.reset()
	if err := s.Put("a", "check-1234", []byte("changed")); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.list()
	if len(got) != 1 || got[0].Records != 1 || got[0].Bytes != len("check-1234")+len("changed") || got[0].Err != nil {
		t.Fatalf("commits = %+v, want one of one record, %d bytes", got, len("check-1234")+len("changed"))
	}
	// A leaf, its branch, the bucket's root, the freelist and a meta page:
	// nowhere near the 300 pages the records fill.
	if got[0].Pages > 6 {
		t.Errorf("one record's change wrote %d pages", got[0].Pages)
	}
	t.Logf("one change among 3000 records: %d record, %d bytes, %d pages", got[0].Records, got[0].Bytes, got[0].Pages)
	if r := records(t, s, "a"); len(r) != 3000 || r["check-1234"] != "changed" {
		t.Fatalf("%d records, check-1234 = %q", len(r), r["check-1234"])
	}
}

// Writers that arrive while a commit runs share the next one: one
// transaction, one fsync, for all of them.
func TestGroupCommitSharesOneFsync(t *testing.T) {
	var c commits
	s := open(t, filepath.Join(t.TempDir(), "state.db"), &c)
	g := hold(s)
	s.Put("a", "first", []byte("1"))
	<-g.entered // the first commit is under way and held

	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			if err := s.Put("b", fmt.Sprint(i), []byte("x")); err != nil {
				errs <- err
				return
			}
			errs <- s.Sync(context.Background())
		})
	}
	clocktest.WaitFor(t, 10*time.Second, "every writer to queue", func() bool { return s.pendingLen() == writers })
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := c.list()
	if len(got) != 2 || got[0].Records != 1 || got[1].Records != writers {
		t.Fatalf("commits = %+v, want 2: the held one, then all %d writers together", got, writers)
	}
	if st := s.Stats(); st.Commits != 2 || st.Records != writers+1 || st.Failed != 0 || st.Queued != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// Changes to one key while a commit runs coalesce: the last value wins
// and is written once.
func TestChangesToOneKeyCoalesce(t *testing.T) {
	var c commits
	s := open(t, filepath.Join(t.TempDir(), "state.db"), &c)
	g := hold(s)
	s.Put("a", "other", []byte("o"))
	<-g.entered
	for i := range 100 {
		s.Put("a", "k", []byte(fmt.Sprint(i)))
	}
	s.Delete("a", "other")
	close(g.release)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.list()
	if len(got) != 2 || got[1].Records != 2 {
		t.Fatalf("commits = %+v, want the 101 changes written as 2 records", got)
	}
	if r := records(t, s, "a"); len(r) != 1 || r["k"] != "99" {
		t.Fatalf("records = %v", r)
	}
}

func TestSyncBarrier(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync with nothing queued = %v", err)
	}
	g := hold(s)
	s.Put("a", "k", []byte("v"))
	<-g.entered
	t.Run("a context that ends first", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Sync(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync = %v, want the context's error", err)
		}
	})
	t.Run("the commit under way", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- s.Sync(context.Background()) }()
		select {
		case err := <-done:
			t.Fatalf("Sync returned %v before its change was written", err)
		case <-time.After(20 * time.Millisecond): // a chance to return too early
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r := records(t, s, "a"); r["k"] != "v" {
			t.Fatalf("after Sync: %v", r)
		}
	})
}

// A failed commit is reported to Sync and its changes are written by the
// next, unless a newer value for the key came meanwhile.
func TestFailedCommitIsRetried(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	var mu sync.Mutex
	fail := true
	s.beforeWrite = func() error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("disk full")
		}
		return nil
	}
	s.Put("a", "k", []byte("v"))
	s.Put("a", "j", []byte("v"))
	if err := s.Sync(context.Background()); err == nil {
		t.Fatal("Sync = nil after a failed commit")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	s.Put("a", "j", []byte("newer"))
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := records(t, s, "a"); r["k"] != "v" || r["j"] != "newer" {
		t.Fatalf("records = %v", r)
	}
}

func TestBadRecordsAreRefusedAtOnce(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"), nil)
	for name, err := range map[string]error{
		"empty key":      s.Put("a", "", []byte("v")),
		"unknown bucket": s.Put("zz", "k", []byte("v")),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := s.ForEach("zz", func(string, []byte) error { return nil }); !errors.Is(err, ErrNoBucket) {
		t.Errorf("ForEach on an unknown bucket = %v", err)
	}
}

// Close writes what is queued; a reopened store has it all.
func TestCloseWritesPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Buckets: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	g := hold(s)
	s.Put("a", "k0", []byte("v"))
	<-g.entered
	for i := 1; i < 500; i++ {
		s.Put("a", fmt.Sprint("k", i), []byte("v"))
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Put("a", "late", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if err := s.Sync(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
	again := open(t, path, nil)
	if r := records(t, again, "a"); len(r) != 500 {
		t.Fatalf("%d records after reopening, want 500", len(r))
	}
}

// Close returns within its bound even when the disk does not answer.
func TestCloseIsBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Buckets: []string{"a"}, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := hold(s)
	s.Put("a", "k", []byte("v"))
	<-g.entered
	s.Put("a", "k2", []byte("v"))
	start := time.Now()
	err = s.Close()
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Fatalf("Close = %v after %s, want an error within its bound", err, took)
	}
	t.Logf("Close with a stuck commit: %v", err)
	close(g.release) // the writer finishes and returns: nothing leaks
	<-s.exited
	s.db.Close()
}

// A NoRetry bucket's change that failed to commit is dropped: its writer
// was told and acted as if it never happened.
func TestNoRetryBucketDropsFailedChanges(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{
		Buckets:      []string{"a", "b"},
		NoRetry:      []string{"b"},
		BeforeCommit: func() error { return map[bool]error{true: errors.New("disk full")}[fail.Load()] },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Put("a", "k", []byte("kept"))
	s.Put("b", "k", []byte("dropped"))
	if err := s.Sync(context.Background()); err == nil {
		t.Fatal("Sync = nil after a failed commit")
	}
	fail.Store(false)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a, b := records(t, s, "a"), records(t, s, "b"); a["k"] != "kept" || len(b) != 0 {
		t.Fatalf("a = %v, b = %v", a, b)
	}
}

// PutSync learns of the commit that failed to write its change, even in
// a NoRetry bucket, where the change is dropped at once.
func TestPutSyncReportsItsCommit(t *testing.T) {
	var fail atomic.Bool
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{
		Buckets:      []string{"b"},
		NoRetry:      []string{"b"},
		BeforeCommit: func() error { return map[bool]error{true: errors.New("disk full")}[fail.Load()] },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 20 {
		fail.Store(i%2 == 0)
		err := s.PutSync(context.Background(), "b", "k", []byte(fmt.Sprint(i)))
		if (err != nil) != fail.Load() {
			t.Fatalf("PutSync %d = %v, commit failing %v", i, err, fail.Load())
		}
	}
	if r := records(t, s, "b"); r["k"] != "19" {
		t.Fatalf("records = %v", r)
	}
}
