package notify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outposthq/outpost/checks"
)

// EvaluatorsLostKey is the dedup key of an agent's direct page when no
// evaluator answers it: one per agent, so that one agent getting through
// again cannot resolve the page of another that is still cut off.
func EvaluatorsLostKey(region, agent string) string {
	return "outpost:evaluators-unreachable:" + region + ":" + agent
}

// AgentPager pages, through the agent's own notifiers, that the agent's
// region reaches no evaluator (see probes/agent.WatchEvaluators, whose
// Pager it is).
type AgentPager struct {
	Notifier      Notifier
	Region, Agent string
	// Bus, set when the agent publishes to a bus instead of POSTing to
	// evaluators, is what the page names as unreachable ("the bus
	// (NATS)"): the agent cannot tell whether evaluators are up behind
	// it, only that its results are not taken.
	Bus string
	Log *slog.Logger
}

// PageEvaluators sends the trigger (lost, evaluators silent since since)
// or the resolve, and logs a failure.
func (p AgentPager) PageEvaluators(ctx context.Context, lost bool, since, now time.Time) {
	n := Notification{Kind: KindEvaluatorsUnreachable, Key: EvaluatorsLostKey(p.Region, p.Agent), Route: checks.RouteMeta, Severity: SeverityCritical,
		Region: p.Region, Source: p.Agent, Time: now, Details: map[string]string{"route": checks.RouteMeta, "region": p.Region, "agent": p.Agent}}
	switch {
	case lost && p.Bus != "":
		n.Action, n.Details["action"] = ActionTrigger, ActionTrigger
		n.Summary = fmt.Sprintf("%s unreachable from %s (agent %s) since %s: results are spooled, no evaluator gets them",
			p.Bus, p.Region, p.Agent, since.UTC().Format(time.TimeOnly))
	case lost:
		n.Action, n.Details["action"] = ActionTrigger, ActionTrigger
		n.Summary = fmt.Sprintf("evaluators unreachable from %s (agent %s) since %s: results are spooled, nobody is deciding on them",
			p.Region, p.Agent, since.UTC().Format(time.TimeOnly))
	case p.Bus != "":
		n.Action, n.Details["action"] = ActionResolve, ActionResolve
		n.Summary = fmt.Sprintf("%s takes the results of %s (agent %s) again", p.Bus, p.Region, p.Agent)
	default:
		n.Action, n.Details["action"] = ActionResolve, ActionResolve
		n.Summary = fmt.Sprintf("an evaluator answers %s (agent %s) again", p.Region, p.Agent)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	if _, err := p.Notifier.Notify(ctx, n); err != nil && p.Log != nil {
		p.Log.Error("cannot page that the evaluators are unreachable", "err", err)
	}
}
