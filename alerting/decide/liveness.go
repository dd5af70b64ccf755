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
	// SilentSince is, while stale, the arrival time of the last batch
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
	// LivenessHeld: the region's silence alone would have made it STALE,
	// but the evaluator cannot vouch for that silence (see Hold); the state
	// did not change.
	LivenessHeld
)

// Hold is why a STALE transition was held back.
type Hold int

const (
	HoldNone Hold = iota
	// HoldPending: a signed batch from the region has arrived and is still
	// being ingested.
	HoldPending
	// HoldLagging: the evaluator is behind (late liveness steps or an
	// ingest backlog), so it may not have got round to what was sent.
	HoldLagging
	// HoldCatchingUp: the evaluator caught up less than stale_after ago and
	// has not yet watched a whole stale_after of silence.
	HoldCatchingUp
)

// String names h for logs and metrics.
func (h Hold) String() string {
	switch h {
	case HoldPending:
		return "batch_in_ingest"
	case HoldLagging:
		return "evaluator_lagging"
	case HoldCatchingUp:
		return "evaluator_catching_up"
	}
	return "none"
}

// LivenessEvent describes a transition for notification.
type LivenessEvent struct {
	Kind LivenessChange
	// SilentSince is the start of the silence (see Liveness.SilentSince).
	SilentSince time.Time
	// SilentFor is, on LivenessBack, how long the silence lasted: from the
	// last batch before it to the first after.
	SilentFor time.Duration
	NeverSeen bool
	// Held is, on LivenessHeld, why.
	Held Hold
}

// LivenessInput is what a liveness step judges a region by: what its agents
// sent, and whether the evaluator was in a state to notice.
type LivenessInput struct {
	// LastSeen is the arrival time of the region's latest applied batch
	// (when the signed request reached the evaluator, not when ingest
	// finished); zero if none since start.
	LastSeen time.Time
	// Started is the evaluator's start.
	Started time.Time
	// StaleAfter is reporting.stale_after.
	StaleAfter time.Duration
	// StartGrace is how long after Started a region never heard from is
	// UNKNOWN rather than STALE: stale_after plus the agents' longest
	// retry backoff, since an agent that kept running across the
	// evaluator's restart may be waiting that long to try again. Zero
	// means StaleAfter.
	StartGrace time.Duration
	// Pending is whether a signed batch from the region has arrived and is
	// still being ingested: a sign of life whose sequence number is not yet
	// checked.
	Pending bool
	// LagFrom is the last moment the evaluator kept up before its latest
	// lag (its last step on time, or the arrival of the oldest batch then
	// waiting in ingest); zero if it never lagged. Only a region that was
	// fresh at LagFrom is held for the lag: one already silent before it
	// was watched being silent.
	LagFrom time.Time
	// LaggingSince is when the evaluator found itself behind; zero while
	// it keeps up.
	LaggingSince time.Time
	// KeptUpSince is, after a lag, when the evaluator caught up. Silence
	// is counted only from here: what it did not watch it cannot vouch for.
	KeptUpSince time.Time
	// MaxHold bounds every hold: a region with a batch in ingest is STALE
	// once silent for StaleAfter + MaxHold, and a lag longer than MaxHold
	// holds nothing, so that an evaluator that never catches up still
	// reports silence rather than showing it as health.
	MaxHold time.Duration
}

// StepLiveness is the Liveness transition: a pure function of the current
// Liveness, in and now. A region is fresh while now - in.LastSeen <
// in.StaleAfter; a region never seen is UNKNOWN while now - in.Started <
// in.StartGrace (at least in.StaleAfter). Otherwise it is STALE, unless the transition is held: while
// a batch of the region is in ingest, while the evaluator lags (for at most
// in.MaxHold), and until the evaluator has watched in.StaleAfter of silence
// since it caught up (in.KeptUpSince). A held step returns cur and a
// LivenessHeld event saying why.
func StepLiveness(cur Liveness, in LivenessInput, now time.Time) (Liveness, LivenessEvent) {
	lastSeen, started, staleAfter := in.LastSeen, in.Started, in.StaleAfter
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
	case lastSeen.IsZero() && now.Sub(started) < max(staleAfter, in.StartGrace):
		if cur.State == RegionUnknown {
			return cur, LivenessEvent{}
		}
		return Liveness{State: RegionUnknown, Since: now}, LivenessEvent{}
	}
	if h := hold(in, now); h != HoldNone {
		return cur, LivenessEvent{Kind: LivenessHeld, Held: h}
	}
	// Silent too long: LIVE whose agents stopped, or UNKNOWN that never
	// started (or that was heard from only between two steps).
	next := Liveness{State: RegionStale, Since: now, SilentSince: lastSeen, NeverSeen: lastSeen.IsZero()}
	if next.NeverSeen {
		next.SilentSince = started
	}
	return next, LivenessEvent{Kind: LivenessStale, SilentSince: next.SilentSince, NeverSeen: next.NeverSeen}
}

// hold says why a region silent for in.StaleAfter is not STALE yet, or
// HoldNone.
func hold(in LivenessInput, now time.Time) Hold {
	base := in.LastSeen
	if base.IsZero() {
		base = in.Started
	}
	if in.Pending && now.Sub(base) < in.StaleAfter+in.MaxHold {
		return HoldPending
	}
	if in.LagFrom.IsZero() || in.LastSeen.IsZero() || in.LagFrom.Sub(in.LastSeen) >= in.StaleAfter {
		return HoldNone // silent before the lag, or never heard from
	}
	switch {
	case !in.LaggingSince.IsZero():
		if now.Sub(in.LaggingSince) < in.MaxHold {
			return HoldLagging
		}
	case now.Sub(in.KeptUpSince) < in.StaleAfter:
		return HoldCatchingUp
	}
	return HoldNone
}
