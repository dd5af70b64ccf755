package alerting

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/outposthq/outpost/probes/wire"
)

// Batch validation bounds.
const (
	// maxAgentNameBytes bounds the agent name of a batch.
	maxAgentNameBytes = 128
	// maxProblems is how many schema violations one answer lists.
	maxProblems = 5
	// maxQuoted bounds an input string quoted back in an error message.
	maxQuoted = 64
	// maxBatchObjects bounds the JSON objects (and nulls) in a batch, and
	// so the memory decoding it takes: 1000 results with three objects
	// each, and DNS observations or steps, stay far below it.
	maxBatchObjects = 1 << 16
)

// decodeBatch decodes body strictly: unknown fields, wrong types, trailing
// data, a body that is not one JSON object and one that would take far
// more memory decoded than as text are errors wrapping ErrInvalidBatch.
// It tries d's fast path first; a batch decoded there has its Results in
// d, valid until d's next use.
func decodeBatch(body []byte, d *fastDecoder) (wire.Batch, error) {
	b, ok := d.decode(body)
	switch {
	case ok:
		return b, nil
	case d.tooMany:
		return wire.Batch{}, fmt.Errorf("%w: more than %d results", ErrInvalidBatch, wire.MaxBatchResults)
	case d.tooComplex, countObjects(body) > maxBatchObjects:
		return wire.Batch{}, fmt.Errorf("%w: more than %d JSON objects and nulls", ErrInvalidBatch, maxBatchObjects)
	}
	return decodeStrict(body)
}

// countObjects counts the objects and nulls of a JSON text, which bound
// the structs encoding/json would allocate for it: "[{},{},...]" costs
// about 3 bytes of body per 300-byte Result.
func countObjects(body []byte) int {
	n, inString := 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '{' || c == 'n'):
			n++
		}
	}
	return n
}

// decodeStrict is decodeBatch with encoding/json alone.
func decodeStrict(body []byte) (wire.Batch, error) {
	var b wire.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return wire.Batch{}, fmt.Errorf("%w: %s", ErrInvalidBatch, describeJSONError(err))
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return wire.Batch{}, fmt.Errorf("%w: malformed JSON: data after the batch object at byte %d", ErrInvalidBatch, dec.InputOffset())
	}
	return b, nil
}

// describeJSONError turns a decoding error into a message that names the
// field or the byte at fault.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body; want a JSON batch object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends inside the batch"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "batch"
		}
		return fmt.Sprintf("%s: got JSON %s, want %s (byte %d)", field, typ.Value, typ.Type, typ.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
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
// accepted before, for region r, and fills wins[i] with the window of
// b.Results[i]. It reads only what New built, so it needs no lock.
func (e *Evaluator) validate(r *regionState, b *wire.Batch, wins []*window) error {
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
	for i := range b.Results {
		res := &b.Results[i]
		w := r.windows[res.Check]
		if w == nil {
			if _, known := e.checks[res.Check]; known {
				p.add("results[%d].check: check %s does not run in region %s", i, quote(res.Check), quote(r.name))
			} else {
				p.add("results[%d].check: unknown check %s", i, quote(res.Check))
			}
		} else if res.Type != "" && res.Type != w.typ {
			p.add("results[%d].type %s does not match check %s of type %s", i, quote(res.Type), quote(w.check), quote(w.typ))
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
		if res.Time.IsZero() {
			p.add("results[%d].time is required", i)
		}
		if res.Duration < 0 {
			p.add("results[%d].duration_seconds must not be negative", i)
		}
	}
	return p.err()
}

// quote quotes s for an error message, cut to maxQuoted bytes so that an
// answer never grows with the input.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}
