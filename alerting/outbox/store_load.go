package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outposthq/outpost/alerting/state"
)

// loadReport says what opening the outbox found.
type loadReport struct {
	pending map[string]int
	// orphaned counts entries for notifiers no longer configured, dropped.
	orphaned map[string]int
	// corrupt counts entries that could not be decoded, dropped.
	corrupt int
	// groups counts the groups loaded per notifier; orphanedGroups the
	// group and member records of notifiers no longer configured, dropped.
	groups         map[string]int
	orphanedGroups int
	// setAside is where a damaged outbox file was moved, if it was, from
	// path.
	setAside, path string
}

// openStore opens (creating) the outbox in dir for the notifiers named,
// loading pending entries and dedup states. Entries for other notifiers
// are dropped and reported.
// OutboxLost is what a damaged outbox file takes with it.
const OutboxLost = "the notifications it had not delivered yet, its notification groups and its dedup memory (a page may be sent again)"

func openStore(dir string, notifiers []string, maxPending int, repeat repeatPolicy, now time.Time, log *slog.Logger) (*store, loadReport, error) {
	rep := loadReport{pending: map[string]int{}, orphaned: map[string]int{}, groups: map[string]int{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rep, fmt.Errorf("outbox dir: %w", err)
	}
	path := filepath.Join(dir, OutboxFileName)
	// A damaged outbox (a disk that lost the end of the file) is moved
	// aside with an ERROR rather than crashing the process at every start.
	db, aside, err := state.OpenBolt(path, time.Second, nil, log, OutboxLost)
	if errors.Is(err, state.ErrInUse) {
		return nil, rep, fmt.Errorf("outbox %s is in use by another process", path)
	}
	if err != nil {
		return nil, rep, fmt.Errorf("opening outbox %s: %w", path, err)
	}
	rep.setAside, rep.path = aside, path
	o := &store{db: db, max: maxPending, repeat: repeat, queues: map[string]*queue{}, states: map[stateKey]dedupState{}, reminders: map[stateKey]bool{},
		groups: map[string]map[string]*groupState{}, members: map[string]map[string]*memberState{}, opens: map[string]map[string][]time.Time{}}
	for _, name := range notifiers {
		o.queues[name] = &queue{}
		o.opens[name] = map[string][]time.Time{}
	}
	if err := db.Update(func(tx *bolt.Tx) error { return o.load(tx, now, &rep) }); err != nil {
		_ = db.Close()
		return nil, rep, fmt.Errorf("outbox %s: %w", path, err)
	}
	for name, q := range o.queues {
		rep.pending[name] = len(q.items)
	}
	o.pruneAt = max(2*len(o.states), 1024)
	return o, rep, nil
}

func (o *store) load(tx *bolt.Tx, now time.Time, rep *loadReport) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keyVersion); v == nil {
		if err := meta.Put(keyVersion, []byte(fmt.Sprint(outboxVersion))); err != nil {
			return err
		}
	} else if string(v) != fmt.Sprint(outboxVersion) {
		return fmt.Errorf("format version %s, want %d", v, outboxVersion)
	}
	entries, err := tx.CreateBucketIfNotExists(bucketEntries)
	if err != nil {
		return err
	}
	states, err := tx.CreateBucketIfNotExists(bucketDedup)
	if err != nil {
		return err
	}
	if err := o.loadAllGroups(tx, rep); err != nil {
		return err
	}
	var drop [][]byte
	err = entries.ForEach(func(k, v []byte) error {
		var e outboxEntry
		if len(k) != 8 || json.Unmarshal(v, &e) != nil || e.Seq != binary.BigEndian.Uint64(k) {
			rep.corrupt++
			drop = append(drop, slices.Clone(k))
			return nil
		}
		q := o.queues[e.Notifier]
		if q == nil {
			rep.orphaned[e.Notifier]++
			drop = append(drop, slices.Clone(k))
			return nil
		}
		// Pending before the restart, it may have been delivered (an attempt
		// under way when the process died).
		q.items = append(q.items, item{seq: e.Seq, route: e.Notification.Route, key: e.Notification.Key, class: e.class(), uncertain: true})
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := entries.Delete(k); err != nil {
			return err
		}
	}
	drop = drop[:0]
	err = states.ForEach(func(k, v []byte) error {
		name, key, ok := strings.Cut(string(k), "\x00")
		var s dedupState
		if !ok || o.queues[name] == nil || json.Unmarshal(v, &s) != nil || s.obsolete(now, o.repeat.of(name)) {
			drop = append(drop, slices.Clone(k))
			return nil
		}
		o.states[stateKey{name, key}] = s
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		if err := states.Delete(k); err != nil {
			return err
		}
	}
	return o.loadReminders(tx)
}

// loadAllGroups loads the grouping stage of every configured notifier and
// drops the groups of notifiers no longer configured.
func (o *store) loadAllGroups(tx *bolt.Tx, rep *loadReport) error {
	for _, name := range [][]byte{bucketGroups, bucketMembers} {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		var drop [][]byte
		err = b.ForEach(func(k, _ []byte) error {
			notifier, _, ok := strings.Cut(string(k), "\x00")
			if !ok || o.queues[notifier] == nil {
				drop = append(drop, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		rep.orphanedGroups += len(drop)
	}
	for name := range o.queues {
		if err := o.loadGroups(tx, name); err != nil {
			return err
		}
		rep.groups[name] = len(o.groups[name])
	}
	return nil
}
