package notify

// Details the outbox puts on a reminder: the trigger of an incident still
// open, sent again at its notifier's repeat interval.
const (
	// DetailReminder is "true" on a reminder.
	DetailReminder = "reminder"
	// DetailFirstSent is when the reminded trigger was decided (RFC 3339).
	DetailFirstSent = "first_sent"
)

// IsReminder reports whether n is a reminder of an incident still open.
func IsReminder(n Notification) bool { return n.Details[DetailReminder] == "true" }
