package decide

import (
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Sample is one probe result as a window keeps it.
type Sample struct {
	// Time is when the probe started, as the agent reported it.
	Time time.Time `json:"time"`
	// Received is when the evaluator accepted the result's batch, on the
	// evaluator's clock.
	Received time.Time `json:"received"`
	Agent    string    `json:"agent"`
	OK       bool      `json:"ok"`
	// Reason is the result's reason, cut to 512 bytes.
	Reason   string  `json:"reason"`
	Duration float64 `json:"duration_seconds"`
	// Late is set when the result arrived older than its check's
	// max_result_age: history, which no failure rule counts.
	Late bool `json:"late,omitempty"`
}

// Window is a copy of the recent results of one check from one region.
type Window struct {
	Check  string
	Region string
	// Samples are the kept results in the order they arrived, oldest
	// first: at most max(failure window or consecutive count, 10), capped
	// at 1000. Late ones are history only.
	Samples []Sample
	// Last is the latest result that arrived in time, whole, with its
	// observations; nil before the first.
	Last *wire.Result
	// Size is how many of the latest samples the failure rule looks at:
	// the rule's window for a ratio rule, all kept samples otherwise.
	Size int
	// Failures and Passes count the failed and passed results among the
	// latest Size samples that are not late (fewer while the window
	// fills).
	Failures, Passes int
	// Consecutive is the number of failed results in a row at the end of
	// the window, late ones skipped; 0 when the latest passed.
	Consecutive int
}
