package outbox

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	bolt "go.etcd.io/bbolt"
)

// OutboxFileName is the file under Options.Dir that holds pending
// notifications and the dedup memory.
const OutboxFileName = "outbox.db"

// DefaultMaxPending bounds each notifier's pending notifications.
const DefaultMaxPending = 10000

// outboxVersion versions the file's format.
const outboxVersion = 1

// maxDedupStates bounds the dedup memory: past it, the oldest states go,
// open or not.
const maxDedupStates = 100000

var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries") // seq (8 bytes, big endian) → outboxEntry
	bucketDedup   = []byte("dedup")   // notifier NUL key → dedupState
	bucketRemind  = []byte("remind")  // notifier NUL key → the open trigger, notify.Notification
	keyVersion    = []byte("version")
)

// errOutboxClosed is returned by every outbox method after close.
var errOutboxClosed = errors.New("outbox closed")

// outboxEntry is one notification for one notifier, as stored.
type outboxEntry struct {
	Notifier     string              `json:"notifier"`
	Seq          uint64              `json:"seq"`
	Enqueued     time.Time           `json:"enqueued"`
	Class        class               `json:"class,omitempty"`
	Notification notify.Notification `json:"notification"`
}

// outbox keeps, durably in one bbolt file, every notification not yet
// delivered, per notifier in the order accepted, and the dedup memory. A
// notification is on disk (fsynced) before add returns, and leaves only
// through finish or, when a notifier's queue is full, as the victim of a
// newer one. Entries and dedup states change in one transaction, so a crash
// leaves them consistent.
type store struct {
	db     *bolt.DB
	max    int
	repeat repeatPolicy

	mu      sync.Mutex
	closed  bool
	queues  map[string]*queue
	states  map[stateKey]dedupState
	pruneAt int
	// reminders are the (notifier, key) whose open trigger is kept in
	// bucketRemind, to be sent again every repeat interval.
	reminders map[stateKey]bool

	// The grouping stage's state, per notifier (grouper.go).
	groups  map[string]map[string]*groupState  // group id → group
	members map[string]map[string]*memberState // incident key → member
	opens   map[string]map[string][]time.Time  // route → recent opens
}

// queue mirrors one notifier's entries, oldest first.
type queue struct {
	items []item
	// inflight is the seq of the entry being delivered, or 0.
	inflight uint64
	// overflowing is set from the first drop until the queue is half empty,
	// so that an overflow is logged once.
	overflowing bool
	// failing holds the keys whose oldest entry failed and waits for its
	// retry (retry.go); escalated the entries already escalated. Both live
	// in memory only and go with the entries: after a restart every entry
	// is due at once.
	failing   map[string]*keyState
	escalated map[uint64]bool
}

type item struct {
	seq   uint64
	route string
	key   string
	class class
	// uncertain is set when the notifier may have the entry although it
	// was never confirmed: an attempt ended without an answer (a timeout,
	// a broken connection), or the entry was pending before a restart.
	uncertain bool
}

// drop removes the entries seqs from q's memory, with what q keeps for
// them.
func (q *queue) drop(seqs ...uint64) {
	if len(seqs) == 0 {
		return
	}
	var keys []string
	q.items = slices.DeleteFunc(q.items, func(it item) bool {
		if !slices.Contains(seqs, it.seq) {
			return false
		}
		if !slices.Contains(keys, it.key) {
			keys = append(keys, it.key)
		}
		return true
	})
	for _, seq := range seqs {
		delete(q.escalated, seq)
	}
	for _, k := range keys {
		if q.failing[k] != nil && !slices.ContainsFunc(q.items, func(it item) bool { return it.key == k }) {
			delete(q.failing, k)
		}
	}
}

func (q *queue) index(seq uint64) int {
	return slices.IndexFunc(q.items, func(it item) bool { return it.seq == seq })
}

type stateKey struct{ notifier, key string }

func (k stateKey) bytes() []byte { return []byte(k.notifier + "\x00" + k.key) }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// addResult is what became of a notification for one notifier.
type addResult struct {
	notifier string
	key      string
	sent     bool
	reason   dedupReason
	// dropped are the entries pushed out of a full queue, and overflow is
	// set when this drop starts an overflow (log it).
	dropped  []item
	overflow bool
	// superseded counts the entries this one made pointless before they
	// were sent: an update of the same incident replaced by this one, or
	// an incident's unsent triggers ended by this resolve (and the resolve
	// itself when unsent is set).
	superseded int
	// unsent is set when nothing was queued: the notification resolves an
	// incident the notifier was never told of (see ended).
	unsent bool
}

// addTx runs the dedup stage for n against each target's memory and writes
// an entry for every target that takes it, in transaction tx. It changes
// nothing in memory: the functions it returns do (applyAdded).
func (o *store) addTx(tx *bolt.Tx, n notify.Notification, targets []string, now time.Time) ([]addResult, []func(), error) {
	results := make([]addResult, 0, len(targets))
	var apply []func()
	entries, states, remind := tx.Bucket(bucketEntries), tx.Bucket(bucketDedup), tx.Bucket(bucketRemind)
	for _, name := range targets {
		q := o.queues[name]
		sk := stateKey{name, n.Key}
		send, reason := dedup(o.states[sk], n, now, o.repeat.of(name))
		res := addResult{notifier: name, key: n.Key, sent: send, reason: reason}
		if !send {
			results = append(results, res)
			continue
		}
		// What n makes pointless among the entries still queued.
		var gone []item
		var end ended
		if n.Action == notify.ActionResolve {
			end = q.endedBeforeResolve(n.Key)
			for _, i := range end.idx {
				gone = append(gone, q.items[i])
			}
		} else if i := q.supersedes(n); i >= 0 {
			gone = append(gone, q.items[i])
		}
		for _, g := range gone {
			if err := entries.Delete(seqKey(g.seq)); err != nil {
				return nil, nil, err
			}
		}
		res.superseded = len(gone)
		if end.dropsResolve() {
			// The notifier never heard of the incident: remember that it
			// is over (a late repeat of the resolve is not sent), queue
			// nothing.
			st := accepted(n, now, 0)
			if err := putJSON(states, sk.bytes(), st); err != nil {
				return nil, nil, err
			}
			if err := remind.Delete(sk.bytes()); err != nil {
				return nil, nil, err
			}
			res.superseded++
			res.unsent = true
			apply = append(apply, func() {
				q.drop(seqsOf(gone)...)
				o.states[sk] = st
				delete(o.reminders, sk)
			})
			results = append(results, res)
			continue
		}
		seq, err := entries.NextSequence()
		if err != nil {
			return nil, nil, err
		}
		cl := classOf(n, reason)
		data, err := json.Marshal(outboxEntry{Notifier: name, Seq: seq, Enqueued: now, Class: cl, Notification: n})
		if err != nil {
			return nil, nil, err
		}
		if err := entries.Put(seqKey(seq), data); err != nil {
			return nil, nil, err
		}
		st := accepted(n, now, seq)
		if err := putJSON(states, sk.bytes(), st); err != nil {
			return nil, nil, err
		}
		// An open trigger is kept to be sent again as a reminder; a
		// resolve ends the reminders.
		keep := n.Action == notify.ActionTrigger && o.repeat.reminds(name)
		if keep {
			err = putJSON(remind, sk.bytes(), n)
		} else if n.Action == notify.ActionResolve {
			err = remind.Delete(sk.bytes())
		}
		if err != nil {
			return nil, nil, err
		}
		var victims []item
		if over := len(q.items) - len(gone) + 1 - o.max; over > 0 {
			victims = o.victims(q, over)
			for _, v := range victims {
				if err := entries.Delete(seqKey(v.seq)); err != nil {
					return nil, nil, err
				}
				vk := stateKey{name, v.key}
				if o.states[vk].Seq == v.seq && v.key != n.Key {
					if err := states.Delete(vk.bytes()); err != nil {
						return nil, nil, err
					}
					if err := remind.Delete(vk.bytes()); err != nil {
						return nil, nil, err
					}
				}
			}
			res.dropped = victims
		}
		it := item{seq: seq, route: n.Route, key: n.Key, class: cl}
		apply = append(apply, func() {
			q.drop(seqsOf(gone)...)
			q.drop(seqsOf(victims)...)
			for _, v := range victims {
				if vk := (stateKey{name, v.key}); o.states[vk].Seq == v.seq {
					delete(o.states, vk)
					delete(o.reminders, vk)
				}
			}
			q.items = append(q.items, it)
			o.states[sk] = st
			if keep {
				o.reminders[sk] = true
			} else if n.Action == notify.ActionResolve {
				delete(o.reminders, sk)
			}
		})
		results = append(results, res)
	}
	if len(o.states)+len(targets) > o.pruneAt {
		pruned, err := o.prune(states, now)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range pruned {
			if err := remind.Delete(k.bytes()); err != nil {
				return nil, nil, err
			}
		}
		apply = append(apply, func() {
			for _, k := range pruned {
				delete(o.states, k)
				delete(o.reminders, k)
			}
			o.pruneAt = max(2*len(o.states), 1024)
		})
	}
	return results, apply, nil
}

// applyAdded applies what addTx prepared, after its transaction committed.
func (o *store) applyAdded(results []addResult, apply []func()) {
	for _, f := range apply {
		f()
	}
	for i := range results {
		q := o.queues[results[i].notifier]
		if len(results[i].dropped) > 0 && !q.overflowing {
			q.overflowing, results[i].overflow = true, true
		}
	}
}

// victims picks n entries of a full queue to drop: the oldest that are not
// critical, then the oldest, never the one in flight (when another exists).
func (o *store) victims(q *queue, n int) []item {
	var out []item
	pick := func(critical bool) {
		for _, it := range q.items {
			if len(out) == n {
				return
			}
			if it.seq == q.inflight || (it.route == notify.RouteCritical) != critical {
				continue
			}
			if !slices.ContainsFunc(out, func(v item) bool { return v.seq == it.seq }) {
				out = append(out, it)
			}
		}
	}
	pick(false)
	pick(true)
	return out
}

// prune deletes dedup states that cannot change a decision any more and,
// past maxDedupStates, the oldest others.
func (o *store) prune(states *bolt.Bucket, now time.Time) ([]stateKey, error) {
	var gone []stateKey
	keep := make([]stateKey, 0, len(o.states))
	for k, s := range o.states {
		if s.obsolete(now, o.repeat.of(k.notifier)) {
			gone = append(gone, k)
		} else {
			keep = append(keep, k)
		}
	}
	if over := len(keep) - maxDedupStates; over > 0 {
		slices.SortFunc(keep, func(a, b stateKey) int { return o.states[a].At.Compare(o.states[b].At) })
		gone = append(gone, keep[:over]...)
	}
	for _, k := range gone {
		if err := states.Delete(k.bytes()); err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// pending returns how many entries notifier has.
func (o *store) pending(notifier string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if q := o.queues[notifier]; q != nil {
		return len(q.items)
	}
	return 0
}

// openIncidents returns the keys notifier has an open trigger for, sorted.
func (o *store) openIncidents(notifier string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var keys []string
	for k, s := range o.states {
		if k.notifier == notifier && s.Action == notify.ActionTrigger {
			keys = append(keys, k.key)
		}
	}
	slices.Sort(keys)
	return keys
}

// close closes the file; every later call fails with errOutboxClosed.
func (o *store) close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	return o.db.Close()
}

// sortedNames returns m's keys in order.
func sortedNames[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
