package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/state"
	"github.com/outposthq/outpost/probes/wire"
)

// The sequence memory is kept in the state store, one record per agent in
// bucketSeqs, so that a batch accepted before a restart is still refused
// after it. A batch is answered only once its agent's record is durable;
// agents committing at the same time share the store's commits, an fsync
// for all of them.

const (
	// bucketSeqs holds region NUL agent → seqRecord, JSON.
	bucketSeqs = "seqs"
	// seqFileName is the file under Options.DataDir that held every
	// agent's sequence memory before the state store; read once, then
	// renamed with migratedSuffix.
	seqFileName = "ingest-seq.json"
	// seqFileVersion versions that file's format.
	seqFileVersion = 1
)

// seqFile is the form of ingest-seq.json.
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

// key is the record's key in bucketSeqs.
func (k agentKey) key() string { return k.region + "\x00" + k.agent }

// seqStore writes agents' sequence memory to the state store.
type seqStore struct{ st *state.Store }

// commit records rec durably and returns once it is on disk, or the error
// that kept it (and the rest of its commit) off disk. A change that failed
// stays queued and is written by a later commit.
func (s *seqStore) commit(rec seqRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding sequence memory: %w", err)
	}
	if err := s.st.PutSync(context.Background(), bucketSeqs, agentKey{rec.Region, rec.Agent}.key(), data); err != nil {
		return fmt.Errorf("writing sequence memory: %w", err)
	}
	return nil
}

// forget queues the removal of an agent's record, once the evaluator no
// longer remembers the agent; it does no I/O.
func (s *seqStore) forget(region, agent string) {
	s.st.Delete(bucketSeqs, agentKey{region, agent}.key())
}

// loadSeqs reads the sequence memory from the store, importing dir's
// ingest-seq.json the first time. Records beyond maxAgentsPerRegion per
// region (the oldest), of undeclared regions, or that cannot be decoded
// are removed.
func (e *Evaluator) loadSeqs(dir string) ([]seqRecord, error) {
	table := map[agentKey]seqRecord{}
	var drop []string
	err := e.state.ForEach(bucketSeqs, func(k string, v []byte) error {
		var r seqRecord
		if err := json.Unmarshal(v, &r); err != nil || k != (agentKey{r.Region, r.Agent}).key() {
			e.log.Error("sequence memory of an agent cannot be read; replays of its batches signed in the last "+wire.MaxClockSkew.String()+" will be accepted",
				"agent", strings.ReplaceAll(k, "\x00", "/"), "err", err)
			drop = append(drop, k)
			return nil
		}
		table[agentKey{r.Region, r.Agent}] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := e.migrateSeqs(dir, table); err != nil {
		return nil, err
	}
	all := slices.Collect(maps.Values(table))
	maps.DeleteFunc(table, func(k agentKey, _ seqRecord) bool { return e.regions[k.region] == nil })
	prune(table)
	for _, r := range all {
		if k := (agentKey{r.Region, r.Agent}); table[k].Agent == "" {
			drop = append(drop, k.key())
		}
	}
	for _, k := range drop {
		e.state.Delete(bucketSeqs, k)
	}
	return slices.Collect(maps.Values(table)), nil
}

// migrateSeqs imports dir's ingest-seq.json into the store and table when
// the store has no sequence record yet (table is empty), and renames the
// file to ingest-seq.json.migrated once the import is durable. A file
// that cannot be parsed is set aside (state.MoveAside) with an ERROR and a
// notice: starting without it accepts replays signed within the clock
// skew, which beats not starting at all.
func (e *Evaluator) migrateSeqs(dir string, table map[agentKey]seqRecord) error {
	path := filepath.Join(dir, seqFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading sequence memory: %w", err)
	}
	if len(table) == 0 {
		var f seqFile
		err := json.Unmarshal(data, &f)
		if err == nil && f.Version != seqFileVersion {
			err = fmt.Errorf("version %d, want %d", f.Version, seqFileVersion)
		}
		if err != nil {
			aside, rerr := state.MoveAside(path, e.clock.Now())
			if rerr != nil {
				return fmt.Errorf("sequence memory %s cannot be read (%v) nor moved aside (%w); move it away to start without it", path, err, rerr)
			}
			lost := "the agents' sequence memory from before the upgrade: replays of batches signed in the last " + wire.MaxClockSkew.String() + " are accepted"
			e.log.Error("old sequence memory cannot be read; moved aside, starting without it", "path", path, "moved_to", aside, "lost", lost, "err", err)
			e.NoteSetAside(path, aside, lost)
			return nil
		}
		for _, r := range f.Agents {
			if r.Agent == "" {
				continue
			}
			table[agentKey{r.Region, r.Agent}] = r
			if err := e.store.put(r); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), stateLoadTimeout)
		defer cancel()
		if err := e.state.Sync(ctx); err != nil {
			return fmt.Errorf("importing %s into %s: %w", path, e.state.Path(), err)
		}
		e.log.Info("sequence memory imported into the state store", "from", path, "agents", len(f.Agents))
	}
	if err := os.Rename(path, path+migratedSuffix); err != nil {
		return fmt.Errorf("%s imported, but cannot be renamed: %w", path, err)
	}
	return nil
}

// put queues rec without waiting for it to be durable.
func (s *seqStore) put(rec seqRecord) error {
	data, err := json.Marshal(rec)
	if err == nil {
		err = s.st.Put(bucketSeqs, agentKey{rec.Region, rec.Agent}.key(), data)
	}
	return err
}

// prune keeps the maxAgentsPerRegion most recently seen agents of each
// region, bounding the records as the in-memory agent maps are bounded.
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
