package alerting

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/atomicfile"
	"github.com/outposthq/outpost/probes/wire"
)

// seqFileName is the file under Options.DataDir holding every agent's
// sequence memory.
const seqFileName = "ingest-seq.json"

// seqFileVersion versions the file's format.
const seqFileVersion = 1

// seqFile is the persisted form of the sequence memory.
type seqFile struct {
	Version int         `json:"version"`
	Agents  []seqRecord `json:"agents"`
}

// seqRecord is one agent's persisted sequence memory.
type seqRecord struct {
	Region  string   `json:"region"`
	Agent   string   `json:"agent"`
	Highest uint64   `json:"highest"`
	Recent  []uint64 `json:"recent"`
	// Seen is the receipt time of the agent's latest accepted batch.
	Seen time.Time `json:"seen"`
}

type agentKey struct{ region, agent string }

// seqStore keeps the sequence memory on disk so that a batch accepted
// before a restart is still refused after it. Commits are grouped: while
// one write is in progress, the changes of every agent that commits in the
// meantime wait and go to disk together in the next write, so concurrent
// agents share an fsync instead of queueing for one each.
type seqStore struct {
	path string

	// writeMu is held for a whole write; it orders groups.
	writeMu sync.Mutex

	mu sync.Mutex
	// committed is what the file holds.
	committed map[agentKey]seqRecord
	// pending are the changes of group, not yet written.
	pending map[agentKey]seqRecord
	group   *commitGroup
}

// commitGroup is the fate of the changes written together.
type commitGroup struct {
	done bool
	err  error
}

// openSeqStore reads dir's sequence file, creating dir if needed. A missing
// file is an empty memory; a file that cannot be read or parsed is an
// error, because starting without it would accept replays.
func openSeqStore(dir string) (*seqStore, []seqRecord, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	s := &seqStore{
		path:      filepath.Join(dir, seqFileName),
		committed: map[agentKey]seqRecord{},
		pending:   map[agentKey]seqRecord{},
		group:     &commitGroup{},
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading sequence memory: %w", err)
	}
	var f seqFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("sequence memory %s is corrupt (%w); move it away to start without it, accepting replays of batches signed in the last %s", s.path, err, wire.MaxClockSkew)
	}
	if f.Version != seqFileVersion {
		return nil, nil, fmt.Errorf("sequence memory %s: version %d, want %d", s.path, f.Version, seqFileVersion)
	}
	for _, r := range f.Agents {
		s.committed[agentKey{r.Region, r.Agent}] = r
	}
	return s, f.Agents, nil
}

// commit records rec durably and returns once it is on disk, or the error
// that kept it (and the rest of its group) off disk. A failed change is
// dropped: it reaches the file with no later write.
func (s *seqStore) commit(rec seqRecord) error {
	s.mu.Lock()
	s.pending[agentKey{rec.Region, rec.Agent}] = rec
	g := s.group
	s.mu.Unlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if g.done { // written by the writer this commit queued behind
		err := g.err
		s.mu.Unlock()
		return err
	}
	table := maps.Clone(s.committed)
	maps.Copy(table, s.pending)
	clear(s.pending)
	s.group = &commitGroup{}
	s.mu.Unlock()

	prune(table)
	err := s.write(table)

	s.mu.Lock()
	if err == nil {
		s.committed = table
	}
	g.done, g.err = true, err
	s.mu.Unlock()
	return err
}

// prune keeps the maxAgentsPerRegion most recently seen agents of each
// region, bounding the file as the in-memory agent maps are bounded.
func prune(table map[agentKey]seqRecord) {
	perRegion := map[string][]seqRecord{}
	for _, r := range table {
		perRegion[r.Region] = append(perRegion[r.Region], r)
	}
	for _, recs := range perRegion {
		if len(recs) <= maxAgentsPerRegion {
			continue
		}
		slices.SortFunc(recs, func(a, b seqRecord) int { return b.Seen.Compare(a.Seen) })
		for _, r := range recs[maxAgentsPerRegion:] {
			delete(table, agentKey{r.Region, r.Agent})
		}
	}
}

// write replaces the file with table atomically: a temporary file in the
// same directory, synced, then renamed over it, then the directory synced.
func (s *seqStore) write(table map[agentKey]seqRecord) error {
	f := seqFile{Version: seqFileVersion, Agents: slices.SortedFunc(maps.Values(table), func(a, b seqRecord) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Agent, b.Agent))
	})}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding sequence memory: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, data); err != nil {
		return fmt.Errorf("writing sequence memory: %w", err)
	}
	return nil
}
