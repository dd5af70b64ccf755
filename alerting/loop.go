package alerting

import (
	"context"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
)

// tickInterval is how often Run re-evaluates liveness.
const tickInterval = time.Second

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
			e.dirCheck.wait()
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
	e.stepPace(now)
	for _, r := range e.regionList {
		r.mu.Lock()
		next, ev := decide.StepLiveness(r.live, e.pace.input(r, e.started, e.staleAfter), now)
		if next.State != r.live.State {
			changed = append(changed, r.name)
		}
		r.live = next
		wasHeld := r.held
		r.held = ev.Kind == decide.LivenessHeld
		change := r.updateMismatch(now, e.staleAfter)
		r.mu.Unlock()
		if r.held && !wasHeld {
			e.log.Warn("region silent for stale_after but not declared STALE: this evaluator cannot vouch for the silence",
				"region", r.name, "why", ev.Held.String(), "last_seen", r.lastSeenAt())
		}
		e.reportMismatch(r, change, "", "")
		if next.State == decide.RegionLive {
			r.metrics.live.Set(1)
		} else {
			r.metrics.live.Set(0)
		}
		if n, ok := regionNotification(r.name, ev, now); ok {
			due = append(due, n)
		} else if ev.Kind == decide.LivenessFirstSeen {
			e.log.Info("region reporting", "region", r.name)
		}
	}
	for _, n := range due {
		e.send(ctx, n)
	}
	e.evaluateTick(ctx, now, changed)
	e.checkDataDir(now)
	e.pageFaults(ctx, now)
	e.checkPeers(ctx, now)
	if now.Sub(e.lastShapeSave) >= shapeSaveEvery {
		e.lastShapeSave = now
		if err := e.saveShapes(); err != nil {
			e.log.Error("shape baselines not saved; a restart would forget what was learned since the last save", "err", err)
		}
	}
}

// stepPace notes whether the evaluator keeps up at now, logging and
// exporting each change.
func (e *Evaluator) stepPace(now time.Time) {
	switch change, d := e.pace.step(now, e.ingesting.oldest()); change {
	case lagStarted:
		e.metrics.lagging.Set(1)
		e.log.Warn("evaluator lagging: STALE verdicts held until it catches up", "behind", d.Round(time.Millisecond))
	case lagEnded:
		e.metrics.lagging.Set(0)
		e.log.Info("evaluator caught up: a region is STALE again once silent for stale_after from now", "lagged_for", d.Round(time.Millisecond))
	}
}

// lastSeenAt returns the arrival of r's latest applied batch.
func (r *regionState) lastSeenAt() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSeen
}

// regionNotification turns a liveness event into the notification humans
// get, if the event deserves one.
func regionNotification(region string, ev decide.LivenessEvent, now time.Time) (notify.Notification, bool) {
	n := notify.Notification{
		Key:     "outpost:region:" + region,
		Region:  region,
		Time:    now,
		Details: map[string]string{"region": region},
	}
	since := ev.SilentSince.UTC()
	switch ev.Kind {
	case decide.LivenessStale:
		n.Kind, n.Severity = notify.KindRegionStale, notify.SeverityWarning
		if ev.NeverSeen {
			n.Summary = "agent in " + region + " never heard from since evaluator start at " + since.Format(time.TimeOnly)
			n.Details["evaluator_started"] = since.Format(time.RFC3339)
		} else {
			n.Summary = "agent in " + region + " silent since " + since.Format(time.TimeOnly)
			n.Details["last_seen"] = since.Format(time.RFC3339)
		}
	case decide.LivenessBack:
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
