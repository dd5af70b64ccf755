package alerting

import "time"

// mismatchChange is a change of a region's config-digest mismatch.
type mismatchChange struct {
	changed  bool
	mismatch bool
}

// updateMismatch recomputes whether some agent of r that delivered within
// staleAfter runs another configuration than the evaluator. r.mu is held.
func (r *regionState) updateMismatch(now time.Time, staleAfter time.Duration) mismatchChange {
	mismatch := false
	for _, a := range r.agents {
		if a.digestBad && !a.lastSeen.IsZero() && now.Sub(a.lastSeen) < staleAfter {
			mismatch = true
			break
		}
	}
	c := mismatchChange{changed: mismatch != r.mismatch, mismatch: mismatch}
	r.mismatch = mismatch
	return c
}

// reportMismatch sets outpost_config_mismatch and logs the change once.
// agent and digest describe the batch that caused it, if any.
func (e *Evaluator) reportMismatch(r *regionState, c mismatchChange, agent, digest string) {
	if !c.changed {
		return
	}
	if c.mismatch {
		r.metrics.mismatch.Set(1)
		e.log.Warn("agent runs another configuration than this evaluator; results may be for checks as they were",
			"region", r.name, "agent", agent, "agent_config_digest", digest, "evaluator_config_digest", e.config().Digest)
		return
	}
	r.metrics.mismatch.Set(0)
	e.log.Info("agents of the region run this evaluator's configuration again", "region", r.name, "config_digest", e.config().Digest)
}
