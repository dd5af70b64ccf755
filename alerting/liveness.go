package alerting

import (
	"context"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

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

// liveness is one region's liveness as the evaluator last decided it.
type liveness struct {
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

// eventKind is what a liveness step did.
type eventKind int

const (
	eventNone eventKind = iota
	// eventFirstSeen: UNKNOWN to LIVE; nobody was told it was missing.
	eventFirstSeen
	// eventStale: LIVE or UNKNOWN to STALE.
	eventStale
	// eventLive: STALE to LIVE.
	eventLive
)

// livenessEvent describes a transition for notification.
type livenessEvent struct {
	Kind eventKind
	// SilentSince is the start of the silence (see liveness.SilentSince).
	SilentSince time.Time
	// SilentFor is, on eventLive, how long the silence lasted: from the
	// last batch before it to the first after.
	SilentFor time.Duration
	NeverSeen bool
}

// stepLiveness is the liveness transition: a pure function of the current
// liveness, the receipt time of the region's latest batch (zero if none
// since start), the evaluator's start, now and reporting.stale_after. A
// region is fresh while now - lastSeen < staleAfter; a region never seen is
// UNKNOWN while now - started < staleAfter and STALE after.
func stepLiveness(cur liveness, lastSeen, started, now time.Time, staleAfter time.Duration) (liveness, livenessEvent) {
	fresh := !lastSeen.IsZero() && now.Sub(lastSeen) < staleAfter
	switch {
	case fresh && cur.State == RegionLive:
		return cur, livenessEvent{}
	case fresh && cur.State == RegionStale:
		ev := livenessEvent{Kind: eventLive, SilentSince: cur.SilentSince, SilentFor: lastSeen.Sub(cur.SilentSince), NeverSeen: cur.NeverSeen}
		return liveness{State: RegionLive, Since: now}, ev
	case fresh:
		return liveness{State: RegionLive, Since: now}, livenessEvent{Kind: eventFirstSeen}
	case cur.State == RegionStale:
		return cur, livenessEvent{}
	case lastSeen.IsZero() && now.Sub(started) < staleAfter:
		if cur.State == RegionUnknown {
			return cur, livenessEvent{}
		}
		return liveness{State: RegionUnknown, Since: now}, livenessEvent{}
	}
	// Silent too long: LIVE whose agents stopped, or UNKNOWN that never
	// started (or that was heard from only between two steps).
	next := liveness{State: RegionStale, Since: now, SilentSince: lastSeen, NeverSeen: lastSeen.IsZero()}
	if next.NeverSeen {
		next.SilentSince = started
	}
	return next, livenessEvent{Kind: eventStale, SilentSince: next.SilentSince, NeverSeen: next.NeverSeen}
}

// tickInterval is how often Run re-evaluates liveness.
const tickInterval = time.Second

// notifyTimeout bounds one notification.
const notifyTimeout = 10 * time.Second

// Run evaluates region liveness every second on the evaluator's clock
// until ctx is done, sending a notification on every LIVE to STALE and
// STALE to LIVE transition and keeping outpost_region_live current. With
// a data dir it saves the learned shape baselines every 5 minutes and
// when ctx is done. It returns nil once ctx is done. Call it once per Evaluator.
func (e *Evaluator) Run(ctx context.Context) error {
	for {
		t := e.clock.NewTimer(tickInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			e.peerWG.Wait() // peer checks in flight end with ctx
			if err := e.saveShapes(); err != nil {
				e.log.Error("shape baselines not saved", "err", err)
			}
			return nil
		case <-t.C():
			e.tick(ctx, e.clock.Now())
		}
	}
}

// tick steps every region's liveness at now and sends the notifications
// due, outside every lock.
func (e *Evaluator) tick(ctx context.Context, now time.Time) {
	var due []notify.Notification
	var changed []string
	for _, r := range e.regionList {
		r.mu.Lock()
		next, ev := stepLiveness(r.live, r.lastSeen, e.started, now, e.staleAfter)
		if next.State != r.live.State {
			changed = append(changed, r.name)
		}
		r.live = next
		change := r.updateMismatch(now, e.staleAfter)
		r.mu.Unlock()
		e.reportMismatch(r, change, "", "")
		if next.State == RegionLive {
			r.metrics.live.Set(1)
		} else {
			r.metrics.live.Set(0)
		}
		if n, ok := regionNotification(r.name, ev, now); ok {
			due = append(due, n)
		} else if ev.Kind == eventFirstSeen {
			e.log.Info("region reporting", "region", r.name)
		}
	}
	for _, n := range due {
		nctx, cancel := context.WithTimeout(ctx, notifyTimeout)
		_, err := e.notifier.Notify(nctx, n)
		cancel()
		if err != nil {
			e.log.Error("notification not delivered", "kind", n.Kind, "key", n.Key, "err", err)
		}
	}
	e.evaluateTick(ctx, now, changed)
	e.checkPeers(ctx, now)
	if now.Sub(e.lastShapeSave) >= shapeSaveEvery {
		e.lastShapeSave = now
		if err := e.saveShapes(); err != nil {
			e.log.Error("shape baselines not saved; a restart would forget what was learned since the last save", "err", err)
		}
	}
}

// regionNotification turns a liveness event into the notification humans
// get, if the event deserves one.
func regionNotification(region string, ev livenessEvent, now time.Time) (notify.Notification, bool) {
	n := notify.Notification{
		Key:     "outpost:region:" + region,
		Region:  region,
		Time:    now,
		Details: map[string]string{"region": region},
	}
	since := ev.SilentSince.UTC()
	switch ev.Kind {
	case eventStale:
		n.Kind, n.Severity = notify.KindRegionStale, notify.SeverityWarning
		if ev.NeverSeen {
			n.Summary = "agent in " + region + " never heard from since evaluator start at " + since.Format(time.TimeOnly)
			n.Details["evaluator_started"] = since.Format(time.RFC3339)
		} else {
			n.Summary = "agent in " + region + " silent since " + since.Format(time.TimeOnly)
			n.Details["last_seen"] = since.Format(time.RFC3339)
		}
	case eventLive:
		n.Kind, n.Severity = notify.KindRegionLive, notify.SeverityInfo
		silent := ev.SilentFor.Round(time.Second).String()
		if ev.NeverSeen {
			n.Summary = "agent in " + region + " reporting for the first time, " + silent + " after evaluator start"
		} else {
			n.Summary = "agent in " + region + " reporting again after " + silent
		}
		n.Details["silent_since"] = since.Format(time.RFC3339)
		n.Details["silent_for"] = silent
	default:
		return notify.Notification{}, false
	}
	return n, true
}
