package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/outposthq/outpost/alerting/state"
	"github.com/outposthq/outpost/probes/wire"
)

// The evaluator keeps what its decisions need across a restart in one
// state store under the data dir, one record per check or agent in each
// bucket: incident state and failing regions (incidents), the last pings
// of heartbeat checks (pings), and the sequence memory of agents (seqs,
// see seqstore.go). A change writes its own record, batched with
// whatever else changed, by the store's one writer; nothing is re-encoded
// and no lock an ingest waits on is held while it is written.

const (
	// stateFile is the state store's file under the data dir.
	stateFile = "state.db"
	// incidentsFile is where open incidents were kept before the store;
	// read once, then renamed with migratedSuffix.
	incidentsFile  = "incidents.json"
	migratedSuffix = ".migrated"

	bucketIncidents = "incidents" // check id → savedDecider, JSON; none for a check at rest
	bucketPings     = "pings"     // heartbeat check id → pingState, JSON
	// bucketHistory (history_store.go): per check, its days, incidents
	// and latest verdict.

	// stateLoadTimeout bounds the wait for the migrated state to be
	// written at start.
	stateLoadTimeout = 30 * time.Second
)

// stateLost is what a damaged state.db takes with it.
var stateLost = "open incidents, failing regions, certificate warnings sent, heartbeat pings, agents' sequence memory and the checks' history: open incidents may page again as new, " +
	"heartbeat checks are judged from this start, and replays of batches signed in the last " + wire.MaxClockSkew.String() + " are accepted"

// openState opens the state store in dir and restores what it holds,
// importing incidents.json and ingest-seq.json the first time.
func (e *Evaluator) openState(dir string) error {
	st, err := state.Open(filepath.Join(dir, stateFile), state.Options{
		Buckets: []string{bucketIncidents, bucketPings, bucketSeqs, bucketHistory, bucketSilences},
		What:    stateLost,
		Logger:  e.log,
		OnCommit: func(c state.Commit) {
			now := e.clock.Now()
			if c.Err != nil {
				if e.faults.fail(faultDataDir, sourceCommit, c.Err, now) {
					e.log.Error("this evaluator cannot write its data dir: it goes on judging from memory, and pages about it", "dir", dir, "err", c.Err)
				}
			} else if e.faults.ok(faultDataDir, sourceCommit, now) {
				e.log.Info("this evaluator writes its data dir again", "dir", dir)
			}
		},
		BeforeCommit: func() error {
			if err := e.stateFault.Load(); err != nil {
				return *err
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	e.state = st
	e.store = &seqStore{st: st}
	if aside := st.SetAside(); aside != "" {
		e.NoteSetAside(st.Path(), aside, stateLost)
	}
	for _, r := range e.regionList {
		r.forget = func(agent string) { e.store.forget(r.name, agent) }
	}
	n, err := e.loadIncidents()
	if err == nil {
		err = e.migrateIncidents(dir, n > 0)
	}
	if err == nil {
		err = e.loadPings()
	}
	if err == nil {
		err = e.loadHistories()
	}
	if err == nil {
		err = e.loadSilences()
	}
	var seqs []seqRecord
	if err == nil {
		seqs, err = e.loadSeqs(dir)
	}
	if err == nil {
		e.restoreSeqs(seqs)
	}
	if err != nil {
		st.Close()
		e.state, e.store = nil, nil
		return err
	}
	return nil
}

// incidentFile is the form of incidents.json, which held every check's
// decision state in one file, rewritten whole on every change.
type incidentFile struct {
	Version int                     `json:"version"`
	Checks  map[string]savedDecider `json:"checks"`
}

// migrateIncidents imports dir's incidents.json into the store when the
// store has no incident record yet (stored says whether it has), and
// renames the file to incidents.json.migrated once the import is durable.
// A crash before the rename imports it again, which writes the same
// records.
//
// A file that cannot be parsed is set aside (state.MoveAside) with
// an ERROR log, and the evaluator starts without it: it was written
// atomically, so only a damaged disk or a hand can have broken it, and
// refusing to start would stop every page over what costs at most the
// repeat of a page for incidents open at the time (same dedup key, so
// PagerDuty folds it into the open incident).
func (e *Evaluator) migrateIncidents(dir string, stored bool) error {
	path := filepath.Join(dir, incidentsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if !stored {
		var f incidentFile
		if err := json.Unmarshal(data, &f); err != nil {
			aside, rerr := state.MoveAside(path, e.clock.Now())
			if rerr != nil {
				return fmt.Errorf("%s cannot be parsed (%v) nor moved aside (%w); move it away to start without the incidents it held", path, err, rerr)
			}
			const lost = "the incidents open before the upgrade: they may page again as new"
			e.log.Error("old incident state cannot be parsed; moved aside, starting without it", "path", path, "moved_to", aside, "lost", lost, "err", err)
			e.NoteSetAside(path, aside, lost)
			return nil
		}
		imported := 0
		for id, saved := range f.Checks {
			if e.restoreDecider(id, saved) {
				e.saveIncident(id, saved)
				imported++
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), stateLoadTimeout)
		defer cancel()
		if err := e.state.Sync(ctx); err != nil {
			return fmt.Errorf("importing %s into %s: %w", path, e.state.Path(), err)
		}
		e.log.Info("incident state imported into the state store", "from", path, "checks", imported)
	}
	if err := os.Rename(path, path+migratedSuffix); err != nil {
		return fmt.Errorf("%s imported, but cannot be renamed: %w", path, err)
	}
	return nil
}

// loadPings restores the last pings of heartbeat checks, so that a
// restart judges a job by its last ping rather than from the start, and
// removes the records of checks no longer configured as heartbeats.
func (e *Evaluator) loadPings() error {
	var drop []string
	e.beats.mu.Lock()
	err := e.state.ForEach(bucketPings, func(id string, v []byte) error {
		st := e.beats.states[id]
		if st == nil || json.Unmarshal(v, st) != nil {
			drop = append(drop, id)
		}
		return nil
	})
	e.beats.mu.Unlock()
	for _, id := range drop {
		e.state.Delete(bucketPings, id)
	}
	return err
}

// savePing queues heartbeat check id's ping state for the store. The
// heartbeats' mutex is held; it does no I/O.
func (e *Evaluator) savePing(id string, st *pingState) {
	if e.state == nil {
		return
	}
	data, err := json.Marshal(st)
	if err == nil {
		err = e.state.Put(bucketPings, id, data)
	}
	if err != nil {
		e.logStateError("heartbeat ping not saved; a restart judges the check from its start", id, err)
	}
}

// logStateError logs a state write that failed, at most once per
// rejectLogEvery per message, so that a closed or broken store during a
// storm of changes costs one line, not one per check.
func (e *Evaluator) logStateError(msg, id string, err error) {
	if ok, held := e.limiter.Allow("state:"+msg, e.clock.Now()); ok {
		e.log.Error(msg, "check", id, "err", err, "suppressed", held)
	}
}

// Close writes the state still queued and closes the data dir's state
// file; it returns within a few seconds (state.DefaultCloseTimeout)
// whatever is pending. Call it after the evaluator's HTTP server and Run
// have returned: later changes are not saved. Safe to call more than once
// and without a DataDir.
func (e *Evaluator) Close() error {
	e.shared.close()
	if e.state == nil {
		return nil
	}
	e.saveHistories(e.clock.Now())
	return e.state.Close()
}
