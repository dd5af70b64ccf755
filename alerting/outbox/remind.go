package outbox

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outposthq/outpost/alerting/notify"
)

// Reminders: an incident still open at a notifier with a repeat interval
// (checks.Notifier.Repeat) is sent to it again every interval, the trigger
// it last accepted marked as a reminder, until a resolve ends it. The trigger is
// kept in bucketRemind beside its dedup state, so reminders go on across
// restarts; the dedup stage passes a reminder as repeat_due.

// repeatPolicy is the repeat interval of each notifier: those in by are
// reminded at theirs, the others have def as their dedup window only.
type repeatPolicy struct {
	def time.Duration
	by  map[string]time.Duration
}

// reminds reports whether notifier is reminded of open incidents.
func (r repeatPolicy) reminds(notifier string) bool { return r.by[notifier] > 0 }

func (r repeatPolicy) of(notifier string) time.Duration {
	if d, ok := r.by[notifier]; ok && d > 0 {
		return d
	}
	return r.def
}

// loadReminders rebuilds the reminder index from bucketRemind, keeping the
// records of open triggers only (and, in a writable tx, deleting others).
func (o *store) loadReminders(tx *bolt.Tx) error {
	b := tx.Bucket(bucketRemind)
	if b == nil {
		if !tx.Writable() {
			return nil
		}
		var err error
		if b, err = tx.CreateBucket(bucketRemind); err != nil {
			return err
		}
	}
	o.reminders = map[stateKey]bool{}
	var drop [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		name, key, ok := strings.Cut(string(k), "\x00")
		sk := stateKey{name, key}
		if ok && o.states[sk].Action == notify.ActionTrigger && o.repeat.reminds(name) {
			o.reminders[sk] = true
		} else {
			drop = append(drop, slices.Clone(k))
		}
		return nil
	})
	if err != nil || !tx.Writable() {
		return err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// remindable reports whether k's reminder may go out: its trigger is open
// and nothing of its incident waits in the queue (a trigger still being
// delivered is not reminded of). o.mu is held.
func (o *store) remindable(k stateKey) bool {
	if o.states[k].Action != notify.ActionTrigger {
		return false
	}
	q := o.queues[k.notifier]
	return q != nil && !slices.ContainsFunc(q.items, func(it item) bool { return it.key == k.key })
}

// nextReminder returns when the earliest reminder is due, or the zero
// time when no incident is open.
func (o *store) nextReminder() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	var next time.Time
	for k := range o.reminders {
		if !o.remindable(k) {
			continue
		}
		if due := o.states[k].At.Add(o.repeat.of(k.notifier)); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// remindDue queues, at now, a reminder of every open incident whose
// notifier last accepted something about it a repeat interval ago or more.
func (o *store) remindDue(now time.Time) ([]addResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, errOutboxClosed
	}
	var due []stateKey
	for k := range o.reminders {
		if o.remindable(k) && !now.Before(o.states[k].At.Add(o.repeat.of(k.notifier))) {
			due = append(due, k)
		}
	}
	if len(due) == 0 {
		return nil, nil
	}
	slices.SortFunc(due, func(a, b stateKey) int { return strings.Compare(a.notifier+"\x00"+a.key, b.notifier+"\x00"+b.key) })
	var added []addResult
	err := o.db.Update(func(tx *bolt.Tx) error {
		added = added[:0]
		for _, k := range due {
			var n notify.Notification
			if v := tx.Bucket(bucketRemind).Get(k.bytes()); v == nil || json.Unmarshal(v, &n) != nil {
				// Nothing to send again; forget it rather than retry it
				// at every turn.
				delete(o.reminders, k)
				continue
			}
			res, apply, err := o.addTx(tx, reminderOf(n, now), []string{k.notifier}, now)
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
		return nil, err
	}
	return added, nil
}

// reminderOf is n sent again at now, marked as a reminder.
func reminderOf(n notify.Notification, now time.Time) notify.Notification {
	d := make(map[string]string, len(n.Details)+2)
	maps.Copy(d, n.Details)
	if d[notify.DetailFirstSent] == "" && !n.Time.IsZero() {
		d[notify.DetailFirstSent] = n.Time.UTC().Format(time.RFC3339)
	}
	d[notify.DetailReminder] = "true"
	n.Details, n.Time = d, now
	return n
}

// kickReminders wakes the reminder loop: the queue changed, so the
// earliest reminder may have.
func (p *Outbox) kickReminders() {
	select {
	case p.remindKick <- struct{}{}:
	default:
	}
}

// remindLoop sends reminders when they fall due, until ctx ends: it sleeps
// until the earliest is due, or until a queued trigger may have made an
// earlier one.
func (p *Outbox) remindLoop(ctx context.Context) {
	for {
		var fired <-chan time.Time
		stop := func() {}
		if next := p.box.nextReminder(); !next.IsZero() {
			t := p.clock.NewTimer(max(next.Sub(p.clock.Now()), 0))
			fired, stop = t.C(), func() { t.Stop() }
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-p.remindKick:
			stop()
			continue
		case <-fired:
		}
		added, err := p.box.remindDue(p.clock.Now())
		if err != nil {
			p.logLimited(slog.LevelError, "remind", "outbox: reminders not recorded", "err", p.redact(err.Error()))
			// Wait for the next kick or a later turn rather than spin on
			// a disk that refuses writes.
			if !p.sleep(ctx, time.Minute) {
				return
			}
			continue
		}
		for _, r := range added {
			if r.sent && !r.unsent {
				p.log.Info("reminder queued: incident still open", "notifier", r.notifier, "key", r.key)
			}
		}
		p.queued(added)
	}
}
