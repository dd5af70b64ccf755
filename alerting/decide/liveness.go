package decide

import "time"

// RegionState is whether a region's agents are reporting.
type RegionState string

// Region states.
const (
	// RegionUnknown: nothing heard from the region since the evaluator
	// started, for less than reporting.stale_after.
	RegionUnknown RegionState = "UNKNOWN"
	// RegionLive: some agent of the region delivered a batch within
	// reporting.stale_after.
	RegionLive RegionState = "LIVE"
	// RegionStale: the region has been silent for reporting.stale_after or
	// longer, or was never heard from that long after start. A stale region
	// leaves every quorum's denominator.
	RegionStale RegionState = "STALE"
)

// Liveness is one region's Liveness as the evaluator last decided it.
type Liveness struct {
	State RegionState
	// Since is when State was entered.
	Since time.Time
	// SilentSince is, while stale, the receipt time of the last batch
	// before the silence, or the evaluator's start if there was none.
	SilentSince time.Time
	// NeverSeen is, while stale, whether the region was never heard from
	// since the evaluator started.
	NeverSeen bool
}

// LivenessChange is what a Liveness step did.
type LivenessChange int

const (
	LivenessSame LivenessChange = iota
	// LivenessFirstSeen: UNKNOWN to LIVE; nobody was told it was missing.
	LivenessFirstSeen
	// LivenessStale: LIVE or UNKNOWN to STALE.
	LivenessStale
	// LivenessBack: STALE to LIVE.
	LivenessBack
)

// LivenessEvent describes a transition for notification.
type LivenessEvent struct {
	Kind LivenessChange
	// SilentSince is the start of the silence (see Liveness.SilentSince).
	SilentSince time.Time
	// SilentFor is, on LivenessBack, how long the silence lasted: from the
	// last batch before it to the first after.
	SilentFor time.Duration
	NeverSeen bool
}

// StepLiveness is the Liveness transition: a pure function of the current
// Liveness, the receipt time of the region's latest batch (zero if none
// since start), the evaluator's start, now and reporting.stale_after. A
// region is fresh while now - lastSeen < staleAfter; a region never seen is
// UNKNOWN while now - started < staleAfter and STALE after.
func StepLiveness(cur Liveness, lastSeen, started, now time.Time, staleAfter time.Duration) (Liveness, LivenessEvent) {
	fresh := !lastSeen.IsZero() && now.Sub(lastSeen) < staleAfter
	switch {
	case fresh && cur.State == RegionLive:
		return cur, LivenessEvent{}
	case fresh && cur.State == RegionStale:
		ev := LivenessEvent{Kind: LivenessBack, SilentSince: cur.SilentSince, SilentFor: lastSeen.Sub(cur.SilentSince), NeverSeen: cur.NeverSeen}
		return Liveness{State: RegionLive, Since: now}, ev
	case fresh:
		return Liveness{State: RegionLive, Since: now}, LivenessEvent{Kind: LivenessFirstSeen}
	case cur.State == RegionStale:
		return cur, LivenessEvent{}
	case lastSeen.IsZero() && now.Sub(started) < staleAfter:
		if cur.State == RegionUnknown {
			return cur, LivenessEvent{}
		}
		return Liveness{State: RegionUnknown, Since: now}, LivenessEvent{}
	}
	// Silent too long: LIVE whose agents stopped, or UNKNOWN that never
	// started (or that was heard from only between two steps).
	next := Liveness{State: RegionStale, Since: now, SilentSince: lastSeen, NeverSeen: lastSeen.IsZero()}
	if next.NeverSeen {
		next.SilentSince = started
	}
	return next, LivenessEvent{Kind: LivenessStale, SilentSince: next.SilentSince, NeverSeen: next.NeverSeen}
}
