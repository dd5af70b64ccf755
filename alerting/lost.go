package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
)

// An agent that cannot reach any evaluator cannot have its silence noticed
// by them either (they will see its region go stale, but if every
// evaluator is unreachable from everywhere, nobody pages). So the agent
// watches its own deliveries and, after reporting.lost_after without any
// evaluator answering, pages directly through its own notifiers. Every
// agent uses the same dedup key: one incident however many are cut off.

// EvaluatorsLostKey is the dedup key of the agents' direct page.
const EvaluatorsLostKey = "outpost:evaluators-unreachable"

// Reached is the part of the agent's reporter the watcher needs.
type Reached interface{ LastReached() time.Time }

// EvaluatorsLost is the pure verdict: whether evaluators count as lost at
// now, given when one last answered.
func EvaluatorsLost(lastReached, now time.Time, lostAfter time.Duration) bool {
	return now.Sub(lastReached) > lostAfter
}

// WatchEvaluators checks the reporter every check interval until ctx ends,
// and sends one trigger when evaluators are lost and one resolve when one
// answers again.
func WatchEvaluators(ctx context.Context, r Reached, n Notifier, clock clock.Clock, log *slog.Logger, region, agent string, lostAfter, every time.Duration) {
	paged := false
	for {
		t := clock.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		now, last := clock.Now(), r.LastReached()
		lost := EvaluatorsLost(last, now, lostAfter)
		if lost == paged {
			continue
		}
		paged = lost
		note := Notification{Kind: "evaluators_unreachable", Key: EvaluatorsLostKey, Route: checks.RouteMeta, Severity: SeverityCritical,
			Region: region, Time: now, Details: map[string]string{"route": checks.RouteMeta, "region": region, "agent": agent}}
		if lost {
			note.Action, note.Details["action"] = ActionTrigger, ActionTrigger
			note.Summary = fmt.Sprintf("evaluators unreachable from %s (agent %s) since %s: results are spooled, nobody is deciding on them",
				region, agent, last.UTC().Format(time.TimeOnly))
		} else {
			note.Action, note.Details["action"] = ActionResolve, ActionResolve
			note.Summary = fmt.Sprintf("an evaluator answers %s (agent %s) again", region, agent)
		}
		nctx, cancel := context.WithTimeout(ctx, notifyTimeout)
		if _, err := n.Notify(nctx, note); err != nil {
			log.Error("cannot page that the evaluators are unreachable", "err", err)
		}
		cancel()
	}
}
