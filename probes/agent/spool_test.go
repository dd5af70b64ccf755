package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// repLogs is a slog.Handler that keeps every record, so tests can count log
// lines.
type repLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (h *repLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *repLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *repLogs) WithGroup(string) slog.Handler            { return h }
func (h *repLogs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

// count returns how many records have a message containing substr.
func (h *repLogs) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func (h *repLogs) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.msgs, "\n")
}

func batchJSON(seq uint64, pad int) []byte {
	return fmt.Appendf(nil, `{"seq":%d,"pad":%q}`, seq, strings.Repeat("x", pad))
}

func openTestSpool(t *testing.T, dir string) (*spool, *repLogs) {
	t.Helper()
	logs := &repLogs{}
	s, err := openSpool(dir, slog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// drain takes every batch oldest first and returns their numbers.
func drainSpool(t *testing.T, s *spool) []uint64 {
	t.Helper()
	var got []uint64
	for {
		seq, data, ok := s.Oldest()
		if !ok {
			return got
		}
		if !strings.HasPrefix(string(data), fmt.Sprintf(`{"seq":%d,`, seq)) {
			t.Fatalf("batch %d holds %s", seq, data)
		}
		got = append(got, seq)
		if err := s.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSpoolOrderAndSize(t *testing.T) {
	s, _ := openTestSpool(t, filepath.Join(t.TempDir(), "a", "b"))
	var total int64
	for _, seq := range []uint64{5, 1, 30, 3} {
		data := batchJSON(seq, 10)
		total += int64(len(data))
		if err := s.Put(seq, data); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != 4 || s.Bytes() != total {
		t.Fatalf("Len, Bytes = %d, %d; want 4, %d", s.Len(), s.Bytes(), total)
	}
	if seq, ok := s.Newest(); !ok || seq != 30 {
		t.Fatalf("Newest = %d, %v; want 30", seq, ok)
	}
	// Replacing a batch keeps one entry and the right size.
	if err := s.Put(3, batchJSON(3, 0)); err != nil {
		t.Fatal(err)
	}
	total -= 10
	if s.Len() != 4 || s.Bytes() != total {
		t.Fatalf("after replace: Len, Bytes = %d, %d; want 4, %d", s.Len(), s.Bytes(), total)
	}
	if got := drainSpool(t, s); !slices.Equal(got, []uint64{1, 3, 5, 30}) {
		t.Fatalf("order %v", got)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("empty spool: Len, Bytes = %d, %d", s.Len(), s.Bytes())
	}
	if err := s.Remove(99); err != nil {
		t.Fatalf("removing a missing batch: %v", err)
	}
}

func TestSpoolFilesAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	s, _ := openTestSpool(t, dir)
	if err := s.Put(42, batchJSON(42, 0)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("spool directory mode %v, want 0700", perm)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "00000000000000000042.json" {
		t.Fatalf("files %v, want only 00000000000000000042.json", ents)
	}
	fi, err = ents[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("batch file mode %v, want 0600", perm)
	}
	// Names sort like numbers.
	if spoolName(9) >= spoolName(10) || spoolName(1<<63) >= spoolName(1<<64-1) {
		t.Error("spool names do not sort by sequence number")
	}
}

func TestSpoolRestartPicksUpAndCleans(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestSpool(t, dir)
	for _, seq := range []uint64{1_700_000_000_000_000_002, 1_700_000_000_000_000_001, 1_700_000_000_000_000_003} {
		if err := s.Put(seq, batchJSON(seq, 5)); err != nil {
			t.Fatal(err)
		}
	}
	// What a crash in the middle of Put leaves (today's temporary and an
	// earlier version's), and files that are not ours.
	leftover := "." + spoolName(4) + ".atomic-123456"
	for name, data := range map[string]string{
		leftover:         `{"seq":`,
		"put-123456.tmp": `{"seq":`,
		"README":         "hello",
		"7.json":         "{}",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, spoolName(5)), 0o700); err != nil {
		t.Fatal(err)
	}

	var observed [2]int64
	again, err := openSpool(dir, slog.New(&repLogs{}), func(b int64, n int, _ int64) { observed = [2]int64{b, int64(n)} })
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{leftover, "put-123456.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("temporary file %s left behind: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("a foreign file was touched: %v", err)
	}
	if again.Len() != 3 || again.Bytes() != s.Bytes() {
		t.Fatalf("reopened: Len, Bytes = %d, %d; want 3, %d", again.Len(), again.Bytes(), s.Bytes())
	}
	if observed != [2]int64{s.Bytes(), 3} {
		t.Errorf("observed %v at open, want [%d 3]", observed, s.Bytes())
	}
	want := []uint64{1_700_000_000_000_000_001, 1_700_000_000_000_000_002, 1_700_000_000_000_000_003}
	if got := drainSpool(t, again); !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if observed != [2]int64{0, 0} {
		t.Errorf("observed %v after draining, want zeros", observed)
	}
}

func TestSpoolTrim(t *testing.T) {
	tests := []struct {
		name        string
		budget      int64
		wantDropped int
		wantLeft    []uint64
	}{
		{"under budget", 1 << 20, 0, []uint64{1, 2, 3, 4, 5}},
		{"exactly at budget", 500, 0, []uint64{1, 2, 3, 4, 5}},
		{"oldest go first", 250, 3, []uint64{4, 5}},
		{"the newest batch stays", 0, 4, []uint64{5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTestSpool(t, t.TempDir())
			for seq := uint64(1); seq <= 5; seq++ {
				data := batchJSON(seq, 0)
				data = append(data[:len(data)-1], strings.Repeat(" ", 100-len(data))+"}"...)
				if err := s.Put(seq, data); err != nil {
					t.Fatal(err)
				}
			}
			if s.Bytes() != 500 {
				t.Fatalf("Bytes = %d, want 500", s.Bytes())
			}
			if n := s.Trim(tc.budget, tc.budget); n != tc.wantDropped {
				t.Errorf("Trim dropped %d, want %d", n, tc.wantDropped)
			}
			if s.Bytes() != int64(100*len(tc.wantLeft)) {
				t.Errorf("Bytes = %d after Trim", s.Bytes())
			}
			if got := drainSpool(t, s); !slices.Equal(got, tc.wantLeft) {
				t.Errorf("left %v, want %v", got, tc.wantLeft)
			}
			if n, _ := filepath.Glob(filepath.Join(s.dir, "*")); len(n) != 0 {
				t.Errorf("files left: %v", n)
			}
		})
	}
}

func TestSpoolSkipsBadFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := openTestSpool(t, dir)
	for seq := uint64(1); seq <= 5; seq++ {
		if err := s.Put(seq, batchJSON(seq, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// 2 is corrupted on disk, 3 is empty, 4 vanished behind our back.
	if err := os.WriteFile(s.path(2), []byte(`{"seq":2,"resu`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(3), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.path(4)); err != nil {
		t.Fatal(err)
	}
	reopened, logs := openTestSpool(t, dir)
	if got := drainSpool(t, reopened); !slices.Equal(got, []uint64{1, 5}) {
		t.Fatalf("delivered %v, want [1 5]", got)
	}
	if n := logs.count("corrupted"); n != 2 {
		t.Errorf("%d corrupted-batch logs, want 2:\n%s", n, logs)
	}
	if _, err := os.Stat(s.path(2)); !os.IsNotExist(err) {
		t.Errorf("corrupted batch left in the spool: %v", err)
	}
	// Kept beside it for inspection, under a name the spool ignores.
	for _, seq := range []uint64{2, 3} {
		if kept, _ := filepath.Glob(s.path(seq) + ".corrupt-*"); len(kept) != 1 {
			t.Errorf("batch %d set aside as %v, want one FILE.corrupt-TIMESTAMP", seq, kept)
		}
	}
	again, _ := openTestSpool(t, dir)
	if again.Len() != 0 {
		t.Errorf("a reopened spool took %d set-aside files for batches", again.Len())
	}
	if reopened.Len() != 0 || reopened.Bytes() != 0 {
		t.Errorf("Len, Bytes = %d, %d after draining", reopened.Len(), reopened.Bytes())
	}

	// A file removed behind the spool's back is skipped with a log too.
	s2, logs2 := openTestSpool(t, t.TempDir())
	for seq := uint64(1); seq <= 2; seq++ {
		if err := s2.Put(seq, batchJSON(seq, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(s2.path(1)); err != nil {
		t.Fatal(err)
	}
	if got := drainSpool(t, s2); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("delivered %v, want [2]", got)
	}
	if n := logs2.count("cannot be read"); n != 1 {
		t.Errorf("%d unreadable-batch logs, want 1:\n%s", n, logs2)
	}
}

func TestSpoolConcurrentPutAndTake(t *testing.T) {
	s, _ := openTestSpool(t, t.TempDir())
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for seq := uint64(1); seq <= n; seq++ {
			if err := s.Put(seq, batchJSON(seq, 0)); err != nil {
				t.Error(err)
				return
			}
			if seq%50 == 0 {
				s.Trim(1<<20, 1<<20)
			}
		}
	})
	var got []uint64
	for len(got) < n && !t.Failed() {
		seq, _, ok := s.Oldest()
		if !ok {
			runtime.Gosched()
			continue
		}
		if len(got) > 0 && seq <= got[len(got)-1] {
			t.Fatalf("batch %d after %d", seq, got[len(got)-1])
		}
		got = append(got, seq)
		if err := s.Remove(seq); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("took %d batches, want %d", len(got), n)
	}
}

func TestSpoolKeepsInMemoryWhatItCannotWrite(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	s, _ := openTestSpool(t, dir)
	if err := s.Put(1, batchJSON(1, 10)); err != nil {
		t.Fatal(err)
	}
	// A file where the directory was: every write fails, even for root.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(2); seq <= 4; seq++ {
		if err := s.Put(seq, batchJSON(seq, 100)); err == nil {
			t.Fatalf("Put %d into a file succeeded", seq)
		}
	}
	if s.Len() != 4 || s.MemBytes() != 3*int64(len(batchJSON(2, 100))) {
		t.Fatalf("len %d, memory %d bytes", s.Len(), s.MemBytes())
	}
	// Over the memory bound only: the oldest batch in memory goes, not the
	// one on disk, and never the newest.
	if n := s.Trim(1<<20, 2*int64(len(batchJSON(2, 100)))); n != 1 {
		t.Fatalf("Trim dropped %d, want 1", n)
	}
	if n := s.Trim(1<<20, 0); n != 1 {
		t.Fatalf("Trim to no memory dropped %d, want 1 (all but the newest)", n)
	}
	// Batch 1's file went with the directory: it is skipped, and the
	// newest, in memory, is delivered.
	if got := drainSpool(t, s); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("delivered %v, want [4]", got)
	}
	if s.MemBytes() != 0 || s.Bytes() != 0 {
		t.Fatalf("memory %d, bytes %d after draining", s.MemBytes(), s.Bytes())
	}

	// Once the directory can be made again, batches go to disk.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(5, batchJSON(5, 10)); err != nil {
		t.Fatalf("Put after the directory was freed: %v", err)
	}
	if s.MemBytes() != 0 {
		t.Fatalf("memory %d bytes, want the batch on disk", s.MemBytes())
	}
	if _, err := os.Stat(s.path(5)); err != nil {
		t.Fatal(err)
	}
}
