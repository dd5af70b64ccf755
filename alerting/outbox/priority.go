package outbox

import (
	"slices"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

// class orders what a notifier sends first when it cannot send everything
// at once (a storm against a rate limit): a new incident pages before an
// open incident is resolved, and both before an open incident is updated.
// The order of one key's entries never changes: only the oldest entry of
// each key competes.
type class string

const (
	// classNew: a trigger for an incident not open at the notifier, or a
	// one-shot notice. Entries written before classes existed read as new.
	classNew class = ""
	// classResolve: resolves an open incident.
	classResolve class = "resolve"
	// classUpdate: a trigger for an incident already open, with another
	// summary or because the repeat interval passed.
	classUpdate class = "update"
)

// class is e's class. A resolve written before classes existed reads as a
// resolve, not as new.
func (e outboxEntry) class() class {
	if e.Notification.Action == notify.ActionResolve {
		return classResolve
	}
	return e.Class
}

// classOf is the class of n, accepted by the dedup stage for reason.
func classOf(n notify.Notification, reason dedupReason) class {
	switch {
	case n.Action == notify.ActionResolve:
		return classResolve
	case reason == reasonChanged || reason == reasonRepeatDue:
		return classUpdate
	}
	return classNew
}

func (c class) rank() int {
	switch c {
	case classNew:
		return 0
	case classResolve:
		return 1
	}
	return 2
}

// next returns the index of the entry to deliver next at now: the oldest
// entry of the best class among the oldest entries of each key, leaving
// out the keys waiting for a retry (their later entries wait with them,
// nobody else does). When no entry can go, it returns -1 and when the
// first waiting key falls due (zero if no key waits).
func (q *queue) next(now time.Time) (int, time.Time) {
	best := -1
	var due time.Time
	seen := make(map[string]bool, 8)
	for i, it := range q.items {
		if seen[it.key] {
			continue
		}
		seen[it.key] = true
		if ks := q.failing[it.key]; ks != nil && now.Before(ks.until) {
			if due.IsZero() || ks.until.Before(due) {
				due = ks.until
			}
			continue
		}
		if best < 0 || it.class.rank() < q.items[best].class.rank() {
			best = i
			if it.class == classNew {
				return best, time.Time{}
			}
		}
	}
	return best, due
}

// supersedes returns the index of the queued update of n's key that n, a
// trigger for the same incident, makes pointless, or -1: only the latest
// state of an open incident needs to reach the notifier. An entry in
// flight, a new trigger or a resolve is never superseded.
func (q *queue) supersedes(n notify.Notification) int {
	if n.Action != notify.ActionTrigger {
		return -1
	}
	for i := len(q.items) - 1; i >= 0; i-- {
		it := q.items[i]
		if it.key != n.Key {
			continue
		}
		if it.class == classUpdate && it.seq != q.inflight {
			return i
		}
		return -1
	}
	return -1
}

// ended describes the queued entries of an incident that a resolve ends
// before any of them was delivered.
type ended struct {
	// idx are their indices in the queue, oldest first.
	idx []int
	// opened is set when the incident's first trigger is among them: the
	// notifier has not been told of the incident.
	opened bool
	// uncertain is set when one of them may have reached the notifier all
	// the same (see item.uncertain).
	uncertain bool
}

// dropsResolve reports whether the resolve that ends e goes too: when the
// notifier has certainly never been told of the incident, neither the
// trigger nor its resolve is worth sending late. When it may have been
// told, the resolve goes (to PagerDuty a resolve of an unknown dedup key is
// a no-op), so that no incident is left open.
func (e ended) dropsResolve() bool { return e.opened && !e.uncertain }

// endedBeforeResolve returns the entries of key that a resolve enqueued now
// would end unsent: those after key's last queued resolve and after its
// entry in flight (which may be delivered any moment).
func (q *queue) endedBeforeResolve(key string) ended {
	var e ended
	for i := len(q.items) - 1; i >= 0; i-- {
		it := q.items[i]
		if it.key != key {
			continue
		}
		if it.class == classResolve || it.seq == q.inflight {
			break
		}
		e.add(i, it)
	}
	slices.Reverse(e.idx)
	return e
}

// endedByQueuedResolve returns the entries of key, none in flight, that
// precede key's first queued resolve, and that resolve's index (-1 when
// key has no resolve queued, or an entry in flight).
func (q *queue) endedByQueuedResolve(key string) (ended, int) {
	var e ended
	for i, it := range q.items {
		if it.key != key {
			continue
		}
		if it.seq == q.inflight {
			return ended{}, -1
		}
		if it.class == classResolve {
			return e, i
		}
		e.add(i, it)
	}
	return ended{}, -1
}

func (e *ended) add(i int, it item) {
	e.idx = append(e.idx, i)
	e.opened = e.opened || it.class == classNew
	e.uncertain = e.uncertain || it.uncertain
}
