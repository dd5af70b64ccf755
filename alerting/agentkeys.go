package alerting

import (
	"errors"
	"fmt"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// agentKeys are the keys that may sign for the agents of one region. A key
// is an agent's identity: one configured with a name signs for that agent
// only; one configured without (the older form) for any agent of the
// region.
type agentKeys struct {
	// anyAgent are the keys of agents: entries without a name.
	anyAgent [][]byte
	// named holds, per agent name, its own keys followed by anyAgent;
	// never written after New.
	named map[string][][]byte
}

// newAgentKeys gathers the keys of region's agents: entries.
func newAgentKeys(agents []checks.Agent, region string) agentKeys {
	var k agentKeys
	own := map[string][][]byte{}
	for _, a := range agents {
		if a.Region != region || a.Key.IsZero() {
			continue
		}
		if a.Name == "" {
			k.anyAgent = append(k.anyAgent, []byte(a.Key.Value()))
		} else {
			own[a.Name] = append(own[a.Name], []byte(a.Key.Value()))
		}
	}
	if len(own) > 0 {
		k.named = make(map[string][][]byte, len(own))
		for name, keys := range own {
			k.named[name] = append(keys, k.anyAgent...)
		}
	}
	return k
}

// none reports whether no agent of the region may report over HTTP.
func (k *agentKeys) none() bool { return len(k.anyAgent) == 0 && len(k.named) == 0 }

// forAgent returns the keys that may sign for agent (as named by the
// request's wire.HeaderAgent; "" when it names none): its own and the
// region's keys of any agent. It does not allocate.
func (k *agentKeys) forAgent(agent string) [][]byte {
	if keys, ok := k.named[agent]; ok {
		return keys
	}
	return k.anyAgent
}

// keysFor returns the keys that may sign a request of region r for agent,
// or why none may (wrapping ErrUnauthorized). The agent name is checked
// against the batch's once decoded, so a key verifies only its agent's
// batches.
func (r *regionState) keysFor(agent string) ([][]byte, error) {
	if r.keys.Load().none() {
		return nil, fmt.Errorf("%w: no agent key is configured for region %s", ErrUnauthorized, quote(r.name))
	}
	keys := r.keys.Load().forAgent(agent)
	if len(keys) == 0 {
		if agent == "" {
			return nil, fmt.Errorf("%w: missing %s header: the keys of region %s belong to named agents", ErrUnauthorized, wire.HeaderAgent, quote(r.name))
		}
		return nil, fmt.Errorf("%w: no key is configured for agent %s of region %s", ErrUnauthorized, quote(agent), quote(r.name))
	}
	return keys, nil
}

// errSeqAhead marks a refusal of a sequence number ahead of the clock
// (with ErrInvalidBatch): one an agent retries rather than drops.
var errSeqAhead = errors.New("the allowed skew of " + wire.MaxSeqAhead.String())

// refusedAs is the wire.HeaderRefused value of a refusal, "" for none an
// agent should act on.
func refusedAs(err error) string {
	switch {
	case errors.Is(err, ErrReplay):
		return wire.RefusedReplay
	case errors.Is(err, errSeqAhead):
		return wire.RefusedAhead
	}
	return ""
}
