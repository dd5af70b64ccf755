// Package status is what the evaluator shows of itself: the types of
// /status.json and the self-contained HTML status page, built from a
// Source. It never imports the alerting root; the evaluator is a Source.
package status

import (
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/shape"
)

// Status is a point-in-time view of the evaluator for /status.json. It
// holds copies only and marshals to JSON as documented by its tags.
type Status struct {
	// Time is when the view was taken, on the evaluator's clock.
	Time time.Time `json:"time"`
	// Started is when the evaluator started.
	Started      time.Time      `json:"started"`
	ConfigDigest string         `json:"config_digest"`
	StaleAfter   Seconds        `json:"stale_after_seconds"`
	Regions      []RegionStatus `json:"regions"`
	Checks       []CheckStatus  `json:"checks"`
	// Summary and Page are set when Checks holds one page of the checks
	// rather than all of them (see FullMaxChecks and Query); a full
	// document has neither.
	Summary *Summary  `json:"summary,omitempty"`
	Page    *PageInfo `json:"page,omitempty"`
	// Upcoming are the maintenance windows that start within the next
	// UpcomingWithin, soonest first.
	Upcoming []MaintenanceWindow `json:"upcoming_maintenance,omitempty"`
	// Shards is set when evaluators share the checks by shard (a bus with
	// bus.evaluators): whose checks the answer holds.
	Shards *ShardsStatus `json:"shards,omitempty"`
}

// ShardsStatus says what an answer holds when evaluators share the checks
// by shard: this evaluator's own checks, from its memory, and, when the
// bus answers, every other check as its owner last shared it.
type ShardsStatus struct {
	// Evaluator is this evaluator's name; Owned its shards ("0-31").
	Evaluator string `json:"evaluator"`
	Owned     string `json:"owned"`
	// Others reports whether the checks of other shards are included.
	Others bool `json:"others"`
	// Note says why they are not, when they are not.
	Note string `json:"note,omitempty"`
}

// UpcomingWithin is how far ahead Status.Upcoming looks.
const UpcomingWithin = 7 * 24 * time.Hour

// MaintenanceWindow is one maintenance window ahead.
type MaintenanceWindow struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Checks names the checks it covers: "every check", or a list.
	Checks string `json:"checks"`
}

// Seconds is a duration that marshals as a number of seconds.
type Seconds float64

// RegionStatus is one region's liveness.
type RegionStatus struct {
	Name string `json:"name"`
	// State is LIVE, STALE or UNKNOWN (never seen, for less than
	// stale_after since start), as of the last liveness evaluation.
	State decide.RegionState `json:"state"`
	// Since is when State was entered.
	Since time.Time `json:"since"`
	// LastSeen is the receipt time of the region's latest accepted batch
	// since start; absent if none.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// ConfigDigestMatch is false while an agent of the region that
	// reported within stale_after runs another configuration.
	ConfigDigestMatch bool `json:"config_digest_match"`
	// Agents are the agents remembered for the region, by name.
	Agents []AgentStatus `json:"agents"`
}

// AgentStatus is one agent's latest delivery.
type AgentStatus struct {
	Name string `json:"name"`
	// LastSeen is the receipt time of its latest accepted batch, which may
	// predate the evaluator's start when sequence memory is kept on disk.
	LastSeen          time.Time `json:"last_seen,omitzero"`
	LastSeq           uint64    `json:"last_seq"`
	ConfigDigest      string    `json:"config_digest,omitempty"`
	ConfigDigestMatch bool      `json:"config_digest_match"`
}

// CheckStatus is one check's state in each of its regions.
type CheckStatus struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// State is the latest verdict: OK, DEGRADED, DOWN or UNKNOWN; empty
	// before the first.
	State decide.CheckState `json:"state,omitempty"`
	// Summary explains State in one line.
	Summary string `json:"summary,omitempty"`
	// Incidents are the open incidents of the check.
	Incidents []IncidentStatus `json:"incidents,omitempty"`
	// Maintenance names the active maintenance windows covering the check.
	Maintenance []string            `json:"maintenance,omitempty"`
	Regions     []CheckRegionStatus `json:"regions"`
	// Group is the check's labels.service (or labels.group): what the
	// status page groups it under; empty for none.
	Group string `json:"group,omitempty"`
	// Uptime is the share of the watched time that the check was not
	// DOWN over the last 1, 7, 30 and 90 UTC days (today counting as one);
	// absent before any verdict.
	Uptime *Uptime `json:"uptime,omitempty"`
	// Days are the check's last history.Days days, oldest first, and
	// History its incidents, newest first: only in the answer for one
	// check (?check=ID), which the status page's check view shows too.
	Days    []DayStatus      `json:"days,omitempty"`
	History []IncidentRecord `json:"incident_history,omitempty"`

	// With shards (Status.Shards), Owner is the evaluator that decides
	// the check: this one for its own checks, the last writer of the
	// shared state for the others'.
	Owner string `json:"owner,omitempty"`
	// Since is when the check entered State, as its owner saw it.
	Since time.Time `json:"since,omitzero"`
	// Updated is when the owner last shared the check's state; set for
	// the checks of other shards.
	Updated time.Time `json:"updated,omitzero"`
	// Stale marks a check of another shard whose owner has shared nothing
	// for StaleShared (or ever): its State is UNKNOWN, not the verdict it
	// shared last, and it has no incidents.
	Stale bool `json:"stale,omitempty"`
}

// StaleShared is how many stale_after a check of another shard may go
// without its owner sharing its state before it is shown as stale.
const StaleShared = 3

// Uptime is a check's uptime over several ranges of days, each a ratio
// in [0, 1]; a range with no watched time is absent.
type Uptime struct {
	Day     *float64 `json:"1d,omitempty"`
	Week    *float64 `json:"7d,omitempty"`
	Month   *float64 `json:"30d,omitempty"`
	Quarter *float64 `json:"90d,omitempty"`
}

// DayStatus is one UTC day of a check.
type DayStatus struct {
	Date string `json:"date"`
	// Worst is the worst verdict with time in the day (DOWN, DEGRADED,
	// UNKNOWN, OK), or empty for a day nobody watched.
	Worst decide.CheckState `json:"worst,omitempty"`
	// Seconds in each verdict; what was not watched is in none.
	OK       int32 `json:"ok_seconds"`
	Degraded int32 `json:"degraded_seconds"`
	Down     int32 `json:"down_seconds"`
	Unknown  int32 `json:"unknown_seconds"`
	Probes   int32 `json:"probes"`
	Failures int32 `json:"failures"`
}

// IncidentRecord is one incident of a check's history with what was sent
// about it.
type IncidentRecord struct {
	Kind       decide.IncidentKind `json:"kind"`
	OpenedAt   time.Time           `json:"opened_at"`
	ResolvedAt time.Time           `json:"resolved_at,omitzero"`
	Regions    []string            `json:"regions,omitempty"`
	Summary    string              `json:"summary,omitempty"`
	Timeline   []TimelineEntry     `json:"timeline,omitempty"`
}

// TimelineEntry is one notification sent about an incident.
type TimelineEntry struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Route   string    `json:"route,omitempty"`
	Summary string    `json:"summary,omitempty"`
}

// IncidentStatus is one open incident of a check.
type IncidentStatus struct {
	Kind     decide.IncidentKind `json:"kind"`
	OpenedAt time.Time           `json:"opened_at"`
	Paged    bool                `json:"paged"`
	Flapping bool                `json:"flapping,omitempty"`
	DedupKey string              `json:"dedup_key"`
}

// CheckRegionStatus is one check's recent results from one region.
type CheckRegionStatus struct {
	Region string `json:"region"`
	// Last is the latest result; absent before the first.
	Last *LastResult `json:"last,omitempty"`
	// Window counts the latest results (see Window).
	Window WindowCounts `json:"window"`
	// Shape is the latency distribution or series value with what is
	// usual now and the shape findings; absent without shape detection.
	Shape *shape.Status `json:"shape,omitempty"`
}

// LastResult is the gist of the latest result of a (check, region).
type LastResult struct {
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
	Agent    string    `json:"agent"`
	Duration float64   `json:"duration_seconds"`
}

// WindowCounts summarise a Window.
type WindowCounts struct {
	Samples     int `json:"samples"`
	Size        int `json:"size"`
	Failures    int `json:"failures"`
	Passes      int `json:"passes"`
	Consecutive int `json:"consecutive_failures"`
}
