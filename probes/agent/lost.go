package agent

import (
	"context"
	"time"

	"github.com/outposthq/outpost/probes/clock"
)

// An agent that cannot reach any evaluator cannot have its silence noticed
// by them either (they will see its region go stale, but if every
// evaluator is unreachable from everywhere, nobody pages). So the agent
// watches its own deliveries and, after reporting.lost_after without any
// evaluator answering, pages directly through its own notifiers. Every
// agent pages under the same dedup key: one incident however many are cut
// off.

// Reached is the part of the agent's reporter the watcher needs.
type Reached interface {
	// LastReached is when an evaluator last answered a batch.
	LastReached() time.Time
	// AnswerDue is the latest deadline of a batch sent and still awaiting
	// its answer, zero if none is.
	AnswerDue() time.Time
}

// Pager is how the watcher pages. PageEvaluators is called once when no
// evaluator has answered for lost_after (lost, since the last answer) and
// once when one answers again (not lost). It bounds its own time and
// reports its own failures: the watcher goes on either way.
type Pager interface {
	PageEvaluators(ctx context.Context, lost bool, since, now time.Time)
}

// EvaluatorsLost is the pure verdict: whether evaluators count as lost at
// now, given when one last answered and when the answer to a batch still
// in flight is due (zero if none). A slow evaluator is not a lost one:
// while an answer may still come, the verdict waits for it, at most one
// send timeout past lostAfter, so that an evaluator that never answers
// (a black hole) is still found lost.
func EvaluatorsLost(lastReached, answerDue, now time.Time, lostAfter time.Duration) bool {
	silent := now.Sub(lastReached)
	if silent <= lostAfter {
		return false
	}
	awaiting := !answerDue.IsZero() && now.Before(answerDue)
	return !awaiting || silent > lostAfter+sendTimeout
}

// WatchEvaluators checks r every interval until ctx ends and pages p once
// when the evaluators are lost and once when one answers again.
func WatchEvaluators(ctx context.Context, r Reached, p Pager, clk clock.Clock, lostAfter, every time.Duration) {
	paged := false
	var reachedAtPage time.Time // LastReached when the page went out
	for {
		t := clk.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		now, last := clk.Now(), r.LastReached()
		lost := EvaluatorsLost(last, r.AnswerDue(), now, lostAfter)
		// Once paged, only an answer resolves: a request still in
		// flight is a reason not to page yet, not a recovery.
		if paged && !lost && !last.After(reachedAtPage) {
			continue
		}
		if lost == paged {
			continue
		}
		paged, reachedAtPage = lost, last
		p.PageEvaluators(ctx, lost, last, now)
	}
}
