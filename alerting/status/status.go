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
