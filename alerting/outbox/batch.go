package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outposthq/outpost/alerting/notify"
)

// EnqueueAll is Enqueue for several notifications, in order, with one
// write to disk for all of them: in a storm the evaluator decides hundreds
// of incidents per batch of results, and one fsync each would make the
// batch wait seconds for its answer. It returns once all of them are on
// disk; an error means none was recorded (invalid notifications are
// skipped, their errors joined into the result, and the rest recorded).
func (p *Outbox) EnqueueAll(ns []notify.Notification) error {
	return p.enqueue(ns, nil)
}

// enqueue is Enqueue and EnqueueAll: ns, each to the notifiers named in
// to (see Enqueue), in one transaction.
func (p *Outbox) enqueue(ns []notify.Notification, to []string) error {
	now := p.clock.Now()
	ops := make([]batchOp, 0, len(ns))
	var invalid []error
	for _, n := range ns {
		n, err := notify.Normalize(n, now)
		if err != nil {
			invalid = append(invalid, err)
			continue
		}
		routed, err := p.route(n, to)
		if err != nil {
			invalid = append(invalid, err)
			continue
		}
		if len(routed) > 0 {
			ops = append(ops, batchOp{n: n, routed: routed})
		}
	}
	if len(ops) > 0 {
		joined, added, err := p.box.addAll(ops, p.groups, p.facts, now)
		if err != nil {
			if len(ops) == 1 {
				return fmt.Errorf("notification %q not recorded: %w", ops[0].n.Key, err)
			}
			return fmt.Errorf("%d notifications not recorded: %w", len(ops), err)
		}
		for _, j := range joined {
			p.held(j.notifier, j.res)
		}
		p.queued(added)
	}
	return errors.Join(invalid...)
}

// batchOp is one notification of EnqueueAll and the notifiers it goes to.
type batchOp struct {
	n      notify.Notification
	routed []string
}

// heldBy is what one notifier's grouping stage did with a notification.
type heldBy struct {
	notifier string
	res      joinResult
}

// addAll runs every op through grouping, dedup and the queue in one
// transaction. Memory changes as it goes, so that each op sees those
// before it; if the transaction fails, memory is reloaded from the file.
func (o *store) addAll(ops []batchOp, pols map[string]GroupPolicy, facts Facts, now time.Time) ([]heldBy, []addResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, nil, errOutboxClosed
	}
	var joined []heldBy
	var added []addResult
	err := o.db.Update(func(tx *bolt.Tx) error {
		joined, added = joined[:0], added[:0]
		for _, op := range ops {
			var targets []string
			for _, name := range op.routed {
				res, err := o.joinTx(tx, name, pols[name], op.n, facts, now)
				if err != nil {
					return err
				}
				if res.held {
					joined = append(joined, heldBy{name, res})
				} else {
					targets = append(targets, name)
				}
			}
			if len(targets) == 0 {
				continue
			}
			res, apply, err := o.addTx(tx, op.n, targets, now)
			if err != nil {
				return err
			}
			o.applyAdded(res, apply)
			added = append(added, res...)
		}
		return nil
	})
	if err != nil {
		o.reloadLocked(now)
		return nil, nil, err
	}
	return joined, added, nil
}

// reloadLocked replaces the store's memory with what the file holds, after
// a transaction failed with memory already changed. The entry in flight
// stays in flight. Entries come in seq order, the order of their keys, as
// at open. o.mu is held.
func (o *store) reloadLocked(now time.Time) {
	uncertain := map[uint64]bool{}
	for name, q := range o.queues {
		for _, it := range q.items {
			uncertain[it.seq] = it.uncertain
		}
		o.queues[name] = &queue{inflight: q.inflight, overflowing: q.overflowing, failing: q.failing, escalated: q.escalated}
	}
	o.states = map[stateKey]dedupState{}
	o.reminders = map[stateKey]bool{}
	err := o.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			var e outboxEntry
			if len(k) != 8 || json.Unmarshal(v, &e) != nil || e.Seq != binary.BigEndian.Uint64(k) || o.queues[e.Notifier] == nil {
				return nil
			}
			q := o.queues[e.Notifier]
			u, known := uncertain[e.Seq]
			q.items = append(q.items, item{seq: e.Seq, route: e.Notification.Route, key: e.Notification.Key, class: e.class(), uncertain: u || !known})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketDedup).ForEach(func(k, v []byte) error {
			name, key, ok := strings.Cut(string(k), "\x00")
			var s dedupState
			if ok && o.queues[name] != nil && json.Unmarshal(v, &s) == nil && !s.obsolete(now, o.repeat.of(name)) {
				o.states[stateKey{name, key}] = s
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := o.loadReminders(tx); err != nil {
			return err
		}
		for name := range o.queues {
			if err := o.loadGroups(tx, name); err != nil {
				return err
			}
		}
		return nil
	})
	for _, q := range o.queues {
		for k := range q.failing {
			if !slices.ContainsFunc(q.items, func(it item) bool { return it.key == k }) {
				delete(q.failing, k)
			}
		}
	}
	if err != nil {
		// The file cannot be read either: keep going on what it held when
		// last read successfully would be a guess; an empty memory sends
		// again rather than drops.
		for name := range o.queues {
			o.groups[name], o.members[name] = map[string]*groupState{}, map[string]*memberState{}
		}
	}
}
