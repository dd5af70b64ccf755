package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/outposthq/outpost/probes/atomicfile"
)

// Spool file names: a batch is "%020d.json" by its sequence number, so that
// lexical order is delivery order; ".tmp" marks a write in progress.
const (
	spoolExt    = ".json"
	spoolTmpExt = ".tmp"
	spoolDigits = 20 // math.MaxUint64 has 20 digits
)

// spool is the directory queue of batches waiting for one evaluator: one file
// per batch, oldest first. A batch is written to a temporary file, synced and
// renamed into place, so a crash leaves the whole batch or nothing. The
// in-memory index (sequence number and size per file) is rebuilt from the
// directory on open, which is how an agent restarted during an outage picks
// up where it stopped. One spool per directory: two processes sharing a
// directory would deliver and delete each other's batches.
//
// A spool is safe for concurrent use; it holds its lock only around index
// updates, never across file reads.
type spool struct {
	dir string
	log *slog.Logger
	// observe, if set, is told the new size after every change, under the
	// lock, so that gauges never go backwards out of order.
	observe func(bytes int64, batches int)

	mu      sync.Mutex
	entries []spoolEntry // ascending by seq
	bytes   int64
}

type spoolEntry struct {
	seq  uint64
	size int64
}

// openSpool opens the spool in dir, creating it with mode 0700 if needed.
// Leftover temporary files (a write cut short by a crash) are removed, and
// files whose names are not batch names are ignored.
func openSpool(dir string, log *slog.Logger, observe func(bytes int64, batches int)) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &spool{dir: dir, log: log, observe: observe}
	ignored := 0
	for _, de := range des {
		name := de.Name()
		// What a crash left between a temporary file and its rename;
		// spoolTmpExt is the name of earlier versions' temporaries.
		if atomicfile.IsTemp(name) || strings.HasSuffix(name, spoolTmpExt) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Warn("spool: cannot remove a leftover temporary file", "file", name, "err", err)
			}
			continue
		}
		seq, ok := parseSpoolName(name)
		if !ok || !de.Type().IsRegular() {
			ignored++
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		s.entries = append(s.entries, spoolEntry{seq, info.Size()})
		s.bytes += info.Size()
	}
	if ignored > 0 {
		log.Warn("spool: ignoring files that are not batches", "dir", dir, "files", ignored)
	}
	// ReadDir sorts by name, and fixed-width names sort by number; sort
	// anyway so that the index invariant does not rest on that.
	slices.SortFunc(s.entries, func(a, b spoolEntry) int { return cmp.Compare(a.seq, b.seq) })
	s.changed()
	return s, nil
}

func spoolName(seq uint64) string { return fmt.Sprintf("%0*d%s", spoolDigits, seq, spoolExt) }

func parseSpoolName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, spoolExt)
	if !ok || len(digits) != spoolDigits {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

func (s *spool) path(seq uint64) string { return filepath.Join(s.dir, spoolName(seq)) }

// Put stores data as the batch seq, replacing any batch of that number.
func (s *spool) Put(seq uint64, data []byte) error {
	// Through the one atomic writer: synced, renamed, and the directory
	// synced, so that a batch acknowledged to the scheduler survives a
	// power cut whole or not at all.
	if err := atomicfile.WriteFile(s.path(seq), data); err != nil {
		return fmt.Errorf("spool put %d: %w", seq, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(seq)
	if found {
		s.bytes -= s.entries[i].size
		s.entries[i].size = int64(len(data))
	} else {
		s.entries = slices.Insert(s.entries, i, spoolEntry{seq, int64(len(data))})
	}
	s.bytes += int64(len(data))
	s.changed()
	return nil
}

// Oldest returns the batch with the lowest sequence number. A file that
// cannot be read or does not hold JSON is logged, removed and skipped, so
// one bad file never blocks the queue. ok is false when the spool is empty.
func (s *spool) Oldest() (seq uint64, data []byte, ok bool) {
	for {
		s.mu.Lock()
		if len(s.entries) == 0 {
			s.mu.Unlock()
			return 0, nil, false
		}
		seq = s.entries[0].seq
		s.mu.Unlock()

		data, err := os.ReadFile(s.path(seq))
		if err == nil && json.Valid(data) {
			return seq, data, true
		}
		s.mu.Lock()
		_, present := s.find(seq)
		s.mu.Unlock()
		if !present {
			continue // trimmed or removed while we read it
		}
		if err != nil {
			s.log.Error("spool: skipping a batch that cannot be read", "file", s.path(seq), "err", err)
		} else {
			s.log.Error("spool: skipping a corrupted batch", "file", s.path(seq), "bytes", len(data))
		}
		if err := s.Remove(seq); err != nil {
			s.log.Error("spool: cannot delete a skipped batch", "err", err)
		}
	}
}

// Remove deletes the batch seq; removing a batch that is not there is not an
// error. The batch leaves the index even if its file cannot be deleted (it
// would then come back, and be delivered again, after a restart).
func (s *spool) Remove(seq uint64) error {
	_, err := s.remove(seq)
	return err
}

// remove is Remove that also says whether the batch was in the index.
func (s *spool) remove(seq uint64) (found bool, err error) {
	s.mu.Lock()
	i, found := s.find(seq)
	if found {
		s.bytes -= s.entries[i].size
		s.entries = slices.Delete(s.entries, i, i+1)
		s.changed()
	}
	s.mu.Unlock()
	if !found {
		return false, nil
	}
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("spool remove %d: %w", seq, err)
	}
	return true, nil
}

// Trim deletes the oldest batches until the spool holds at most budget bytes,
// but never the newest batch, and returns how many it deleted.
func (s *spool) Trim(budget int64) (dropped int) {
	for {
		s.mu.Lock()
		if s.bytes <= budget || len(s.entries) <= 1 {
			s.mu.Unlock()
			return dropped
		}
		seq := s.entries[0].seq
		s.mu.Unlock()
		found, err := s.remove(seq)
		if err != nil {
			s.log.Error("spool: cannot delete a dropped batch", "err", err)
		}
		if found { // else the sender delivered it meanwhile
			dropped++
		}
	}
}

// Bytes returns the total size of the spooled batches.
func (s *spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Len returns the number of spooled batches.
func (s *spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Newest returns the highest sequence number spooled; ok is false when the
// spool is empty.
func (s *spool) Newest() (seq uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return 0, false
	}
	return s.entries[len(s.entries)-1].seq, true
}

// find returns where seq is or would be in the index. Callers hold s.mu.
func (s *spool) find(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(s.entries, seq, func(e spoolEntry, seq uint64) int { return cmp.Compare(e.seq, seq) })
}

// changed reports the size to observe. Callers hold s.mu.
func (s *spool) changed() {
	if s.observe != nil {
		s.observe(s.bytes, len(s.entries))
	}
}
