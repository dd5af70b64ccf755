package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Batch validation bounds.
const (
	// maxAgentNameBytes bounds the agent name of a batch.
	maxAgentNameBytes = 128
	// maxProblems is how many schema violations one answer lists.
	maxProblems = 5
)

// decodeBatch decodes body with d (see wire.Decoder.Decode); every error
// wraps ErrInvalidBatch. A batch decoded on the fast path has its Results
// in d, valid until d's next use.
func decodeBatch(body []byte, d *fastDecoder) (wire.Batch, error) {
	b, err := d.Decode(body)
	if err != nil {
		return wire.Batch{}, fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	return b, nil
}

// problems collects schema violations, keeping the first maxProblems.
type problems struct {
	msgs []string
	more int
}

func (p *problems) add(format string, args ...any) {
	if len(p.msgs) == maxProblems {
		p.more++
		return
	}
	p.msgs = append(p.msgs, fmt.Sprintf(format, args...))
}

// err returns nil or every kept violation, wrapping ErrInvalidBatch.
func (p *problems) err() error {
	if len(p.msgs) == 0 {
		return nil
	}
	msg := strings.Join(p.msgs, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf("; and %d more", p.more)
	}
	return fmt.Errorf("%w: %s", ErrInvalidBatch, msg)
}

// validate checks everything about b that does not depend on what was
// accepted before, for region r at now, and fills wins[i] with the window
// of b.Results[i]. It refuses results probed outside [now −
// wire.MaxResultAge, now + wire.MaxClockSkew] and results whose
// observations are structurally absurd, and cuts every string of the
// others to its limit (wire.Admit), so that nothing the
// evaluator keeps or serves grows with a hostile value. It reads only
// what New built, so it needs no lock.
func (e *Evaluator) validate(r *regionState, b *wire.Batch, wins []*window, now time.Time) error {
	var p problems
	if b.V != wire.WireVersion {
		p.add("v must be %d, got %d", wire.WireVersion, b.V)
	}
	switch {
	case b.Agent == "":
		p.add("agent is required")
	case len(b.Agent) > maxAgentNameBytes:
		p.add("agent: name longer than %d bytes", maxAgentNameBytes)
	}
	if b.Region != r.name { // only over HTTP: Apply picks r by b.Region
		p.add("region %s does not match the %s header %s", quote(b.Region), wire.HeaderRegion, quote(r.name))
	}
	if b.Seq == 0 {
		p.add("seq is required and must be positive")
	}
	if len(b.Results) > wire.MaxBatchResults {
		p.add("more than %d results (%d)", wire.MaxBatchResults, len(b.Results))
		return p.err()
	}
	oldest, latest := now.Add(-wire.MaxResultAge), now.Add(wire.MaxClockSkew) // see wire.CheckTime
	tab := r.tables()
	for i := range b.Results {
		res := &b.Results[i]
		// A result for a check this configuration does not run in the
		// region, or runs as another type, is configuration skew (the
		// agent runs another version of it, as during every rollout of a
		// change), not a bad batch: it is skipped, counted and logged,
		// and the rest applies. Its window stays nil.
		w := tab.windows[res.Check]
		if w != nil && res.Type != "" && res.Type != w.typ {
			w = nil
		}
		wins[i] = w
		if res.V != wire.WireVersion {
			p.add("results[%d].v must be %d, got %d", i, wire.WireVersion, res.V)
		}
		if res.Region != b.Region {
			p.add("results[%d].region %s does not match the batch region %s", i, quote(res.Region), quote(b.Region))
		}
		if res.Agent != "" && res.Agent != b.Agent {
			p.add("results[%d].agent %s does not match the batch agent %s", i, quote(res.Agent), quote(b.Agent))
		}
		switch {
		case res.Time.IsZero():
			p.add("results[%d].time is required", i)
		case res.Time.Before(oldest) || res.Time.After(latest):
			p.add("results[%d].time %s", i, wire.CheckTime(res.Time, now))
		}
		if res.Duration < 0 {
			p.add("results[%d].duration_seconds must not be negative", i)
		}
		if msg := wire.Admit(res); msg != "" {
			p.add("results[%d].%s", i, msg)
		}
	}
	return p.err()
}

// quote quotes s for an error message, cut to wire.MaxQuoteBytes so that
// an answer never grows with the input.
func quote(s string) string {
	return wire.Quote(s)
}
