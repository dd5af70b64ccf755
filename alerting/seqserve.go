package alerting

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/outposthq/outpost/probes/wire"
)

// serveSeq answers an agent's re-base question (GET wire.SeqPath): the
// highest sequence number this evaluator accepted from it, as a
// wire.SeqAnswer, so that an agent whose batches are refused as replays
// renumbers them above it instead of dropping them. The request is signed
// over wire.SeqPayload by a key that may sign for the agent; anything else
// is 401. The answer tells a key holder nothing it could not learn from a
// replay refusal.
func (e *Evaluator) serveSeq(w http.ResponseWriter, req *http.Request) {
	now := e.clock.Now()
	w.Header().Set(wire.HeaderEvaluator, "1")
	region, agent := req.Header.Get(wire.HeaderRegion), req.Header.Get(wire.HeaderAgent)
	r := e.regions[region]
	err := func() error {
		switch {
		case r == nil:
			return fmt.Errorf("%w: unknown region %s", ErrUnauthorized, quote(region))
		case agent == "" || len(agent) > maxAgentNameBytes:
			return fmt.Errorf("%w: %s must name the agent, in at most %d bytes", ErrUnauthorized, wire.HeaderAgent, maxAgentNameBytes)
		}
		keys, err := r.keysFor(agent)
		if err != nil {
			return err
		}
		if err := wire.Verify(keys, req.Header.Get(wire.HeaderTimestamp), req.Header.Get(wire.HeaderSignature), wire.SeqPayload(region, agent), now); err != nil {
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return nil
	}()
	if err != nil {
		label := r.label()
		if ok, suppressed := e.limiter.Allow(label+"/seq", now); ok {
			e.log.Warn("sequence query refused", "region", label, "err", err, "suppressed", suppressed)
		}
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(wire.SeqAnswer{Highest: r.highestSeq(agent)})
}

// highestSeq returns the highest sequence number accepted from the named
// agent of r, 0 if r remembers none. It waits for a batch of the agent
// being recorded, so that the answer includes it.
func (r *regionState) highestSeq(agent string) uint64 {
	r.mu.Lock()
	a := r.agents[agent]
	r.mu.Unlock()
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seqs.highest
}
