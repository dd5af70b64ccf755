package alerting

import (
	"container/list"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
)

// Liveness judges what agents sent, not how fast this evaluator got round
// to it. A batch counts from the moment its request arrived (the clock
// reading the handler took first, kept as the region's lastSeen once the
// batch is applied), and a region with a signed batch still in ingest is
// not silent. When the evaluator itself is behind, it cannot tell a silent
// region from one whose batches it has not reached, so it holds STALE
// transitions (decide.HoldLagging) until it has caught up, and then until
// it has watched a whole stale_after of silence (decide.HoldCatchingUp).
//
// A clock that jumps forward (a suspended VM, a stopped process, a fake
// clock advanced by minutes in one step) shows as one late liveness step:
// the time in between was not watched, and agents that were reporting up to
// the jump get stale_after from the first step after it to be heard again.
// Every hold is bounded by maxHold, so an evaluator that never catches up
// still reports a silent region rather than showing silence as health.

// lagAfter is how far behind the evaluator may fall before it counts as
// lagging: a liveness step this much later than due, or a batch this long
// in ingest.
const lagAfter = 2 * tickInterval

// inflight is the batches between arrival and the end of ingest, oldest
// first, so that the liveness loop can tell a backlog from silence.
type inflight struct {
	mu       sync.Mutex
	arrivals list.List // of time.Time, in order of arrival
}

// add records that a batch for r arrived at at and is being ingested; the
// returned function records that its ingest is over.
func (f *inflight) add(r *regionState, at time.Time) (done func()) {
	r.pending.Add(1)
	f.mu.Lock()
	el := f.arrivals.PushBack(at)
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.arrivals.Remove(el)
		f.mu.Unlock()
		r.pending.Add(-1)
	}
}

// oldest returns the arrival time of the oldest batch in ingest, zero if
// none.
func (f *inflight) oldest() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if el := f.arrivals.Front(); el != nil {
		return el.Value.(time.Time)
	}
	return time.Time{}
}

// pace is whether the evaluator keeps up; used by the liveness loop only.
type pace struct {
	lastTick     time.Time
	lagFrom      time.Time // the last moment kept up before the latest lag
	laggingSince time.Time // zero while keeping up
	keptUpSince  time.Time
	maxHold      time.Duration
	startGrace   time.Duration
}

func newPace(cfg *checks.Config, started time.Time, staleAfter time.Duration) pace {
	maxHold := cfg.Reporting.LostAfter
	if maxHold <= 0 {
		maxHold = max(5*time.Minute, 2*staleAfter)
	}
	return pace{lastTick: started, maxHold: maxHold, startGrace: startGrace(cfg, staleAfter)}
}

// startGrace is how long after its start an evaluator waits for a region
// it has not heard from before calling it STALE: stale_after, plus the
// heartbeat, which caps an agent's retry backoff (an agent that kept
// running across the restart may be that far into a backoff), plus the
// batch delay.
func startGrace(cfg *checks.Config, staleAfter time.Duration) time.Duration {
	return staleAfter + cfg.Reporting.Heartbeat + cfg.Reporting.BatchDelay
}

// lagChange is what a pace step found.
type lagChange int

const (
	lagSame lagChange = iota
	lagStarted
	lagEnded
)

// step notes a liveness step at now, oldest being the arrival of the
// oldest batch in ingest (zero if none), and returns whether the evaluator
// started or stopped lagging, with the delay that says how far behind it is.
func (p *pace) step(now, oldest time.Time) (lagChange, time.Duration) {
	prev := p.lastTick
	p.lastTick = now
	behind := now.Sub(prev) - tickInterval
	from := prev
	if !oldest.IsZero() && now.Sub(oldest) > behind {
		behind = now.Sub(oldest)
		if oldest.Before(from) {
			from = oldest
		}
	}
	switch lagging := behind >= lagAfter; {
	case lagging && p.laggingSince.IsZero():
		p.lagFrom, p.laggingSince = from, now
		return lagStarted, behind
	case !lagging && !p.laggingSince.IsZero():
		d := now.Sub(p.laggingSince)
		p.laggingSince, p.keptUpSince = time.Time{}, now
		return lagEnded, d
	}
	return lagSame, behind
}

// input is the liveness input for r at the evaluator's current pace. r.mu
// is held.
func (p *pace) input(r *regionState, started time.Time, staleAfter time.Duration) decide.LivenessInput {
	return decide.LivenessInput{
		LastSeen:     r.lastSeen,
		Started:      started,
		StaleAfter:   staleAfter,
		StartGrace:   p.startGrace,
		Pending:      r.pending.Load() > 0,
		LagFrom:      p.lagFrom,
		LaggingSince: p.laggingSince,
		KeptUpSince:  p.keptUpSince,
		MaxHold:      p.maxHold,
	}
}
