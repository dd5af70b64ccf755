package outbox

import "github.com/outposthq/outpost/alerting/notify"

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

// next returns the index of the entry to deliver next: the entry in flight
// if any (a retry goes on until it is done), else the oldest entry of the
// best class among the oldest entries of each key.
func (q *queue) next() int {
	best := -1
	seen := make(map[string]bool, 8)
	for i, it := range q.items {
		if it.seq == q.inflight {
			return i
		}
		if seen[it.key] {
			continue
		}
		seen[it.key] = true
		if best < 0 || it.class.rank() < q.items[best].class.rank() {
			best = i
			if it.class == classNew && q.inflight == 0 {
				return best
			}
		}
	}
	return best
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
