package outbox

import (
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyState is what a notifier's queue remembers of a key whose oldest
// entry failed with an error worth retrying: the key's entries wait, the
// other keys' do not (no head-of-line blocking across incidents).
type keyState struct {
	// attempts counts the failed attempts in a row, for the backoff.
	attempts int
	// until is when the key's oldest entry may be tried again.
	until time.Time
	// released is set once a delivery of another key made this one due
	// early (the destination works again); failing once more, the key then
	// keeps to its own backoff, so that an event the destination keeps
	// refusing is not retried after every other delivery.
	released bool
}

// pick is what head chose.
type pick struct {
	entry outboxEntry
	// attempts is how many attempts of the entry's key failed in a row.
	attempts int
	// held is set when the entry cannot go yet for want of a token of the
	// events budget: how long until there is one.
	held time.Duration
}

// head returns the next entry of notifier to deliver at now (see
// queue.next) and marks it in flight, unless take, which spends a token of
// the notifier's events budget (nil: no budget), says how long until there
// is one (pick.held): an entry waiting for the budget is not in flight, so
// that a newer update can still replace it. When no entry can go, ok is
// false and due is when the first key waiting for a retry falls due (zero
// if none waits). Undecodable entries are dropped on the way and counted
// in corrupt.
func (o *store) head(notifier string, now time.Time, take func() time.Duration) (p pick, ok bool, due time.Time, corrupt int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return p, false, due, corrupt, errOutboxClosed
	}
	q := o.queues[notifier]
	for {
		var i int
		i, due = q.next(now)
		if i < 0 {
			return p, false, due, corrupt, nil
		}
		it := q.items[i]
		var data []byte
		err = o.db.View(func(tx *bolt.Tx) error {
			data = slices.Clone(tx.Bucket(bucketEntries).Get(seqKey(it.seq)))
			return nil
		})
		if err != nil {
			return p, false, due, corrupt, err
		}
		if data != nil && json.Unmarshal(data, &p.entry) == nil {
			if take != nil {
				if p.held = take(); p.held > 0 {
					return p, true, time.Time{}, corrupt, nil
				}
			}
			q.inflight = it.seq
			if ks := q.failing[it.key]; ks != nil {
				p.attempts = ks.attempts
			}
			return p, true, time.Time{}, corrupt, nil
		}
		corrupt++
		if err := o.remove(notifier, it.seq, true); err != nil {
			return p, false, due, corrupt, err
		}
	}
}

// release clears notifier's entry in flight, so that the next head picks
// afresh.
func (o *store) release(notifier string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if q := o.queues[notifier]; q != nil {
		q.inflight = 0
	}
}

// finish removes an entry after delivery (forget=false) or a permanent
// failure (forget=true, which also forgets its dedup state if it is the
// latest, so that the next trigger under its key is sent). A delivery
// shows that the destination works: the keys waiting for a retry are due
// at once, each once (keyState.released).
func (o *store) finish(notifier string, seq uint64, forget bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errOutboxClosed
	}
	q := o.queues[notifier]
	if q.inflight == seq {
		q.inflight = 0
	}
	if i := q.index(seq); i >= 0 {
		// The key's next entry starts afresh.
		delete(q.failing, q.items[i].key)
	}
	if !forget {
		for _, ks := range q.failing {
			if !ks.released {
				ks.until, ks.released = time.Time{}, true
			}
		}
	}
	return o.remove(notifier, seq, forget)
}

// settled is what retryLater dropped: the entries of an incident resolved
// before they could be delivered.
type settled struct {
	key string
	// superseded counts the entries dropped; resolveDropped is set when
	// the resolve went with them.
	superseded     int
	resolveDropped bool
}

// retryLater records that entry seq of notifier failed and is to be tried
// again: unless until is zero (the whole notifier pauses, the key is not to
// blame), its key waits until then, having failed attempts times in a row.
// uncertain says that the notifier may have the entry all the same. If a
// resolve of the key is queued behind it meanwhile, the entries it ends
// are dropped (see ended).
func (o *store) retryLater(notifier string, seq uint64, attempts int, until time.Time, uncertain bool) (settled, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return settled{}, errOutboxClosed
	}
	q := o.queues[notifier]
	if q.inflight == seq {
		q.inflight = 0
	}
	i := q.index(seq)
	if i < 0 {
		return settled{}, nil // dropped meanwhile
	}
	key := q.items[i].key
	q.items[i].uncertain = q.items[i].uncertain || uncertain
	if !until.IsZero() {
		ks := q.failing[key]
		if ks == nil {
			if q.failing == nil {
				q.failing = map[string]*keyState{}
			}
			ks = &keyState{}
			q.failing[key] = ks
		}
		ks.attempts, ks.until = attempts, until
	}
	end, r := q.endedByQueuedResolve(key)
	if r < 0 || len(end.idx) == 0 {
		return settled{}, nil
	}
	var gone []uint64
	for _, i := range end.idx {
		gone = append(gone, q.items[i].seq)
	}
	if end.dropsResolve() {
		gone = append(gone, q.items[r].seq)
	}
	err := o.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		for _, seq := range gone {
			if err := b.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return settled{}, err
	}
	q.drop(gone...)
	return settled{key: key, superseded: len(gone), resolveDropped: end.dropsResolve()}, nil
}

// markEscalated records that entry seq of notifier is escalated; it
// reports false if it was already, or is gone.
func (o *store) markEscalated(notifier string, seq uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queues[notifier]
	if o.closed || q.escalated[seq] || q.index(seq) < 0 {
		return false
	}
	if q.escalated == nil {
		q.escalated = map[uint64]bool{}
	}
	q.escalated[seq] = true
	return true
}

func (o *store) remove(notifier string, seq uint64, forget bool) error {
	q := o.queues[notifier]
	i := q.index(seq)
	if i < 0 {
		return nil // dropped by an overflow meanwhile
	}
	sk := stateKey{notifier, q.items[i].key}
	forget = forget && o.states[sk].Seq == seq
	err := o.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEntries).Delete(seqKey(seq)); err != nil {
			return err
		}
		if forget {
			if err := tx.Bucket(bucketRemind).Delete(sk.bytes()); err != nil {
				return err
			}
			return tx.Bucket(bucketDedup).Delete(sk.bytes())
		}
		return nil
	})
	// Forget the entry in memory even if the disk refused: delivering it
	// again now would not help; after a restart it is delivered once more.
	q.drop(seq)
	if forget && err == nil {
		delete(o.states, sk)
		delete(o.reminders, sk)
	}
	if q.overflowing && len(q.items) <= o.max/2 {
		q.overflowing = false
	}
	return err
}

func seqsOf(items []item) []uint64 {
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = it.seq
	}
	return out
}
