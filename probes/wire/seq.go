package wire

// The sequence re-base protocol.
//
// An evaluator refuses a batch whose sequence number is below the highest
// it accepted from that agent (and not one of the last it accepted) as a
// replay: 401 with HeaderRefused: RefusedReplay. That also happens to an
// honest agent whose clock was fast and was corrected, whose spool was
// lost, or after someone holding its key sent a batch ahead of it. Such an
// agent does not drop the batch: it asks the evaluator, signed, for the
// highest sequence number it accepted from it (GET SeqPath, signed over
// SeqPayload), renumbers its pending batches above it and sends them
// again. Evaluators that predate this answer replays without
// HeaderRefused, and agents then drop the batch as before.

// SeqPath is where an agent asks an evaluator for the highest sequence
// number the evaluator accepted from it.
const SeqPath = "/v1/seq"

// SeqPayload is what an agent signs for GET SeqPath, in place of a body.
func SeqPayload(region, agent string) []byte {
	return []byte("GET " + SeqPath + "\n" + region + "\n" + agent)
}

// SeqAnswer is an evaluator's answer to GET SeqPath.
type SeqAnswer struct {
	// Highest is the highest sequence number the evaluator accepted from
	// the agent; 0 when it remembers none.
	Highest uint64 `json:"highest"`
}

// HeaderRefused, on an evaluator's refusal of a batch, says why in a word
// an agent can act on (RefusedReplay, RefusedAhead); the body says it for
// people.
const HeaderRefused = "X-Outpost-Refused"

// Values of HeaderRefused.
const (
	// RefusedReplay (with 401): the sequence number is below the highest
	// the evaluator accepted from the agent. The agent re-bases (see
	// SeqPath) and sends the batch again.
	RefusedReplay = "replay"
	// RefusedAhead (with 400): the sequence number is more than
	// MaxSeqAhead ahead of the evaluator's clock. It passes once the
	// evaluator's clock has caught up: the agent retries with backoff.
	RefusedAhead = "ahead"
)

// MaxSeqAhead is how far a batch's sequence number, read as Unix
// nanoseconds, may be ahead of the evaluator's clock. Agents number their
// batches from their clock, which may be as far ahead as a signature's
// timestamp may be (MaxClockSkew): a smaller bound would refuse agents
// whose signatures pass. A number within it, even sent by someone holding
// the agent's key, cannot lock the agent out: it re-bases above it.
const MaxSeqAhead = MaxClockSkew
