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
	"time"

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
// A batch that cannot be written (disk full, read-only file system, the
// directory gone or never created) is kept in memory instead, in the same
// index, and delivered from there: a spool that cannot be written degrades
// to an in-memory queue rather than losing batches. Batches in memory do not
// survive a restart.
//
// A spool is safe for concurrent use; it holds its lock only around index
// updates, never across file reads or writes.
type spool struct {
	dir string
	log *slog.Logger
	// observe, if set, is told the new sizes after every change, under the
	// lock, so that gauges never go backwards out of order.
	observe func(bytes int64, batches int, memBytes int64)

	mu       sync.Mutex
	entries  []spoolEntry // ascending by seq
	bytes    int64        // of every entry, on disk or in memory
	memBytes int64        // of the entries held in memory
}

type spoolEntry struct {
	seq  uint64
	size int64
	mem  []byte // the batch, when it could not be written to disk
}

// openSpool opens the spool in dir, creating it with mode 0700 if needed.
// Leftover temporary files (a write cut short by a crash) are removed, and
// files whose names are not batch names are ignored.
func openSpool(dir string, log *slog.Logger, observe func(bytes int64, batches int, memBytes int64)) (*spool, error) {
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
		s.entries = append(s.entries, spoolEntry{seq: seq, size: info.Size()})
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

// memorySpool is the spool of a directory that could not be opened: it
// starts empty, keeps what it is given in memory, and tries to create the
// directory again at every Put, writing there once it can.
func memorySpool(dir string, log *slog.Logger, observe func(bytes int64, batches int, memBytes int64)) *spool {
	s := &spool{dir: dir, log: log, observe: observe}
	s.changed()
	return s
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
// When the batch cannot be written to disk it is kept in memory, and Put
// returns why: the batch is queued either way.
func (s *spool) Put(seq uint64, data []byte) error {
	err := s.write(seq, data)
	e := spoolEntry{seq: seq, size: int64(len(data))}
	if err != nil {
		e.mem = data
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := s.find(seq)
	if found {
		s.forget(s.entries[i])
		s.entries[i] = e
	} else {
		s.entries = slices.Insert(s.entries, i, e)
	}
	s.bytes += e.size
	if e.mem != nil {
		s.memBytes += e.size
	}
	s.changed()
	return err
}

// write puts data on disk as the batch seq, making the directory again if
// it is missing (never made, or removed since).
func (s *spool) write(seq uint64, data []byte) error {
	// Through the one atomic writer: synced, renamed, and the directory
	// synced, so that a batch acknowledged to the scheduler survives a
	// power cut whole or not at all.
	err := atomicfile.WriteFile(s.path(seq), data)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(s.dir, 0o700); err == nil {
			err = atomicfile.WriteFile(s.path(seq), data)
		}
	}
	if err != nil {
		return fmt.Errorf("spool put %d: %w", seq, err)
	}
	return nil
}

// forget takes e's size out of the totals. Callers hold s.mu.
func (s *spool) forget(e spoolEntry) {
	s.bytes -= e.size
	if e.mem != nil {
		s.memBytes -= e.size
	}
}

// Oldest returns the batch with the lowest sequence number. A file that
// cannot be read or does not hold JSON is logged, moved aside (FILE.corrupt-
// and a timestamp) and skipped, so one bad file never blocks the queue. ok is false when the spool is empty.
func (s *spool) Oldest() (seq uint64, data []byte, ok bool) {
	for {
		s.mu.Lock()
		if len(s.entries) == 0 {
			s.mu.Unlock()
			return 0, nil, false
		}
		seq = s.entries[0].seq
		mem := s.entries[0].mem
		s.mu.Unlock()
		if mem != nil {
			return seq, mem, true
		}

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
		// Kept for inspection beside the spool, under a name its scan
		// ignores, never sent.
		aside := s.path(seq) + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
		if rerr := os.Rename(s.path(seq), aside); rerr != nil {
			aside = "(not moved: " + rerr.Error() + ")"
		}
		if err != nil {
			s.log.Error("spool: skipping a batch that cannot be read; its results are lost", "file", s.path(seq), "moved_to", aside, "err", err)
		} else {
			s.log.Error("spool: skipping a corrupted batch; its results are lost", "file", s.path(seq), "moved_to", aside, "bytes", len(data))
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
	var inMemory bool
	if found {
		inMemory = s.entries[i].mem != nil
		s.forget(s.entries[i])
		s.entries = slices.Delete(s.entries, i, i+1)
		s.changed()
	}
	s.mu.Unlock()
	if !found || inMemory {
		return found, nil
	}
	if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("spool remove %d: %w", seq, err)
	}
	return true, nil
}

// Trim deletes the oldest batches until the spool holds at most budget bytes
// in all and memBudget bytes in memory, but never the newest batch, and
// returns how many it deleted.
func (s *spool) Trim(budget, memBudget int64) (dropped int) {
	for {
		s.mu.Lock()
		if len(s.entries) <= 1 || (s.bytes <= budget && s.memBytes <= memBudget) {
			s.mu.Unlock()
			return dropped
		}
		seq, ok := s.entries[0].seq, true
		if s.bytes <= budget { // over the memory bound only: the oldest in memory
			i := slices.IndexFunc(s.entries[:len(s.entries)-1], func(e spoolEntry) bool { return e.mem != nil })
			if ok = i >= 0; ok {
				seq = s.entries[i].seq
			}
		}
		s.mu.Unlock()
		if !ok {
			return dropped // only the newest batch is in memory
		}
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

// MemBytes returns the size of the batches held in memory.
func (s *spool) MemBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memBytes
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
		s.observe(s.bytes, len(s.entries), s.memBytes)
	}
}
