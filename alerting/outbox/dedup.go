package outbox

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

// DefaultRepeatInterval is how long an identical notification is not sent
// again, for a notifier without a repeat of its own (Options.Repeat): a
// trigger for an incident that is still open, or the same notice.
const DefaultRepeatInterval = 4 * time.Hour

// dedupState is what the pipeline remembers of the last notification it
// accepted for one (notifier, key): accepted means written to the outbox,
// so it is delivered or being delivered. The zero value means nothing is
// known. It is persisted with the outbox.
type dedupState struct {
	// Action is the accepted notification's action; notify.ActionTrigger means
	// the incident is open at the notifier.
	Action string `json:"action"`
	// Summary is a hash of the accepted notification's summary.
	Summary string `json:"summary"`
	// At is when it was accepted, on the pipeline's clock.
	At time.Time `json:"at"`
	// Seq is its outbox entry, so that a permanent failure can forget it.
	Seq uint64 `json:"seq"`
}

func (s dedupState) known() bool { return !s.At.IsZero() }

// dedupReason says why the dedup stage sent or dropped a notification.
type dedupReason string

const (
	// Sent:
	reasonNew       dedupReason = "new"        // nothing open under the key
	reasonChanged   dedupReason = "changed"    // open, with another summary
	reasonRepeatDue dedupReason = "repeat_due" // open and unchanged, but the repeat interval passed
	reasonResolves  dedupReason = "resolves"   // resolves what is open
	// Dropped:
	reasonRepeat  dedupReason = "repeat"   // the same as the last one, within the repeat interval
	reasonNotOpen dedupReason = "not_open" // a resolve with nothing open to resolve
)

// dedup is the dedup stage: whether n goes out, given what was last
// accepted under its key (state), at now. A trigger or notice identical
// to the last one accepted (same action and summary) within repeat is
// dropped, so an open incident is not paged twice, by a restart or by
// another evaluator replaying it; a resolve is sent only for an open
// trigger, so that nothing is resolved that was never raised, or for an
// incident another evaluator raised before a shard handover
// (notify.Notification.Adopted).
func dedup(state dedupState, n notify.Notification, now time.Time, repeat time.Duration) (send bool, reason dedupReason) {
	if n.Action == notify.ActionResolve {
		if state.Action == notify.ActionTrigger || n.Adopted {
			return true, reasonResolves
		}
		return false, reasonNotOpen
	}
	if !state.known() || state.Action != n.Action {
		return true, reasonNew
	}
	if state.Summary != summaryHash(n.Summary) {
		return true, reasonChanged
	}
	if now.Sub(state.At) < repeat {
		return false, reasonRepeat
	}
	return true, reasonRepeatDue
}

// accepted is the state after n is accepted at now as outbox entry seq.
func accepted(n notify.Notification, now time.Time, seq uint64) dedupState {
	return dedupState{Action: n.Action, Summary: summaryHash(n.Summary), At: now, Seq: seq}
}

// obsolete reports whether s can no longer change a decision: only an open
// trigger matters once the repeat interval has passed.
func (s dedupState) obsolete(now time.Time, repeat time.Duration) bool {
	return s.Action != notify.ActionTrigger && now.Sub(s.At) >= repeat
}

func summaryHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}
