package alerting

import (
	"context"
	"log/slog"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
)

// tickInterval is how often Run re-evaluates liveness.
const tickInterval = time.Second

// Run evaluates region liveness every second on the evaluator's clock
// until ctx is done, sending a notification on every LIVE to STALE and
// STALE to LIVE transition and keeping outpost_region_live current. With
// a data dir it saves the learned shape baselines every 5 minutes and
// when ctx is done. With a bus it also consumes the owned shards' results
// (see bus.go) until ctx is done. It returns nil once ctx is done and the
// consumer has stopped. Call it once per Evaluator.
func (e *Evaluator) Run(ctx context.Context) error {
	if e.bus != nil {
		busDone := make(chan struct{})
		go func() { defer close(busDone); e.bus.run(ctx) }()
		defer func() { <-busDone }()
	}
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

// tick steps every region's liveness at now, decides what that changes and
// sends the notifications due (the meta incident among them), outside
// every lock.
func (e *Evaluator) tick(ctx context.Context, now time.Time) {
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
		logLiveness(e.log, r.name, ev)
	}
	e.evaluateTick(ctx, now, changed)
	e.share(now)
	e.checkDataDir(now)
	e.pageFaults(ctx, now)
	e.announceSetAsides(ctx, now)
	e.checkPeers(ctx, now)
	if now.Sub(e.lastHistorySave) >= historySaveEvery {
		e.lastHistorySave = now
		e.saveHistories(now)
		e.forgetSilences(now)
	}
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
	e.checkBus(now)
	// Results the bus cannot deliver are a backlog, not silence.
	oldest := e.ingesting.oldest()
	if blind := e.busBlindSince(); !blind.IsZero() && (oldest.IsZero() || blind.Before(oldest)) {
		oldest = blind
	}
	switch change, d := e.pace.step(now, oldest); change {
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

// logLiveness logs a region's liveness change. What it means for on-call
// is the meta incident's (flushMeta).
func logLiveness(log *slog.Logger, region string, ev decide.LivenessEvent) {
	since := ev.SilentSince.UTC().Format(time.RFC3339)
	switch ev.Kind {
	case decide.LivenessFirstSeen:
		log.Info("region reporting", "region", region)
	case decide.LivenessStale:
		log.Warn("region silent: out of every quorum", "region", region, "silent_since", since, "never_heard_from", ev.NeverSeen)
	case decide.LivenessBack:
		log.Info("region reporting again", "region", region, "silent_since", since, "silent_for", ev.SilentFor.Round(time.Second))
	}
}
