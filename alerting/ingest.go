package alerting

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// maxPooledBody is the largest request buffer kept for reuse; a batch of
// 500 results is about a quarter of it. Buffers are pooled only as large
// as bodies that arrived made them (see readBody).
const maxPooledBody = 1 << 20

// maxDigestBytes bounds the config digest remembered per agent.
const maxDigestBytes = 64

// Handler serves POST /v1/results (wire.ResultsPath): authenticated,
// size-limited, strictly validated, idempotent ingest of agent batches.
//
// Answers: 200 "ok" (applied), 200 "duplicate" (accepted before, not
// applied again), 400 (malformed or inconsistent batch, or a body that
// arrived below the minimum rate; nothing applied), 401 (unknown region,
// bad signature, clock skew, replay), 413 (body over wire.MaxBatchBytes),
// 503 (could not be recorded, or the evaluator or the sender's address has
// too many requests in flight; retry, after Retry-After when it is set).
// Error bodies are one line of plain text and never contain a key. Every
// answer carries wire.HeaderEvaluator, so that an agent counts even a 503
// as an evaluator that answered.
//
// Nothing is allocated for a body before its headers pass every check
// they can: a known region with keys, a timestamp within
// wire.MaxClockSkew and a well-formed signature. The body is then read as
// it arrives, under the limits of limits.go: requests in flight per
// source address (on every endpoint of Handler), batch bodies read at
// once, bytes held by bodies, and a minimum rate.
//
// An agent must send its batches to one evaluator one at a time, in
// sequence order: a batch below the highest accepted that is not one of
// the last 16 accepted is refused as a replay, and one ahead of the
// evaluator's clock in Unix nanoseconds (plus wire.MaxClockSkew) as
// invalid, since agents start their sequence from their clock. Only
// applied batches count as signs of life for region liveness, as of the
// moment their request arrived; a duplicate may be a replay.
func (e *Evaluator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.ResultsPath, e.serveResults)
	mux.HandleFunc("GET "+wire.ConfirmPath, e.serveConfirm)
	mux.HandleFunc("GET "+wire.SeqPath, e.serveSeq)
	mux.HandleFunc("/ping/{token}", e.servePing)
	mux.HandleFunc("/ping/{token}/{event}", e.servePing)
	mux.HandleFunc("GET /api/v1/silences", e.serveSilences)
	mux.HandleFunc("POST /api/v1/silences", e.serveSilences)
	mux.HandleFunc("DELETE /api/v1/silence/{id}", e.serveSilence)
	return e.limitSources(mux)
}

func (e *Evaluator) serveResults(w http.ResponseWriter, req *http.Request) {
	now := e.clock.Now()
	w.Header().Set(wire.HeaderEvaluator, "1")
	name := req.Header.Get(wire.HeaderRegion)
	r := e.regions[name]
	err := e.receive(w, req, r, name, now)
	label := r.label()
	o := e.record(label, err, now)
	if o != outcomeOK && o != outcomeDuplicate {
		// The body may not have been read: do not wait for it to keep
		// the connection.
		w.Header().Set("Connection", "close")
	}
	switch {
	case o == outcomeOK:
		_, _ = w.Write([]byte("ok"))
	case o == outcomeDuplicate:
		_, _ = w.Write([]byte("duplicate"))
	case errors.Is(err, errBusy):
		e.refuse("busy", sourceOf(req), now)
		w.Header().Set("Retry-After", retryAfterBusy)
		http.Error(w, "evaluator busy: too many batches in flight; retry", http.StatusServiceUnavailable)
	case o == outcomeError:
		http.Error(w, "batch not recorded; retry later", http.StatusServiceUnavailable)
	default:
		if why := refusedAs(err); why != "" {
			w.Header().Set(wire.HeaderRefused, why)
		}
		if errors.Is(err, errSlowBody) {
			e.refuse("slow_body", sourceOf(req), now)
		}
		http.Error(w, err.Error(), statusOf(o))
	}
}

// receive authenticates, reads, decodes and ingests one request. r is the
// region named by the header (nil if undeclared).
func (e *Evaluator) receive(w http.ResponseWriter, req *http.Request, r *regionState, name string, now time.Time) error {
	if req.ContentLength > wire.MaxBatchBytes {
		return fmt.Errorf("%w: body of %d bytes is over the limit of %d", ErrTooLarge, req.ContentLength, wire.MaxBatchBytes)
	}
	keys, err := e.authenticate(req.Header, r, name, now)
	if err != nil {
		return err
	}
	bd, err := e.readBody(w, req)
	defer e.release(bd)
	if err != nil {
		return err
	}
	return e.ingestSigned(r, keys, req.Header, bd.b, now, now)
}

// headers are the headers of a batch, whatever carried it: an HTTP
// request's or a bus message's.
type headers interface{ Get(key string) string }

// authenticate checks what a batch's headers say before its body is read,
// for r, the region named by the region header name (nil if undeclared):
// a known region with keys for the agent, and a well-formed timestamp and
// signature within wire.MaxClockSkew of ref, the time the batch was sent
// at (now over HTTP, the stored time of a bus message). It returns the
// keys the signature may be made with.
func (e *Evaluator) authenticate(h headers, r *regionState, name string, ref time.Time) ([][]byte, error) {
	switch {
	case name == "":
		return nil, fmt.Errorf("%w: missing %s header", ErrUnauthorized, wire.HeaderRegion)
	case r == nil:
		return nil, fmt.Errorf("%w: unknown region %s", ErrUnauthorized, quote(name))
	}
	keys, err := r.keysFor(h.Get(wire.HeaderAgent))
	if err != nil {
		return nil, err
	}
	ts, sig := h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderSignature)
	if ts == "" || sig == "" {
		return nil, fmt.Errorf("%w: missing %s or %s header", ErrUnauthorized, wire.HeaderTimestamp, wire.HeaderSignature)
	}
	if err := wire.CheckHeaders(ts, sig, ref); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return keys, nil
}

// ingestSigned verifies body's signature (one of keys, a timestamp within
// wire.MaxClockSkew of ref), decodes it and ingests it at now: the part of
// receiving a batch that is the same over HTTP and over the bus. h must
// have passed authenticate.
func (e *Evaluator) ingestSigned(r *regionState, keys [][]byte, h headers, body []byte, ref, now time.Time) error {
	if err := wire.Verify(keys, h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderSignature), body, ref); err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	// Decoded strings are copies, so the body may be reused once this
	// returns.
	d := e.decoder()
	defer e.decoders.Put(d)
	b, err := decodeBatch(body, d)
	if err != nil {
		return err
	}
	if agent := h.Get(wire.HeaderAgent); agent != "" && agent != b.Agent {
		return fmt.Errorf("%w: agent %s does not match the %s header %s", ErrInvalidBatch, quote(b.Agent), wire.HeaderAgent, quote(agent))
	}
	return e.ingest(r, &b, now, d)
}

// Apply ingests a batch from the in-process agent of "outpost run": no
// signature, but the same validation, idempotency and accounting as a
// batch received over HTTP. It returns nil when the batch was applied, an
// error wrapping ErrDuplicate when it had been already (nothing to do),
// and otherwise an error wrapping ErrInvalidBatch, ErrReplay,
// ErrUnauthorized or ErrUnavailable, having applied nothing. The evaluator
// keeps b's results: the caller must not modify them afterwards.
func (e *Evaluator) Apply(b wire.Batch) error {
	now := e.clock.Now()
	r := e.regions[b.Region]
	var err error
	if r == nil {
		err = fmt.Errorf("%w: unknown region %s", ErrInvalidBatch, quote(b.Region))
	} else {
		err = e.ingest(r, &b, now, nil)
	}
	label := r.label()
	e.record(label, err, now)
	return err
}

// ingest validates b for region r, checks its sequence number, records it
// durably and applies it, all or nothing. Batches of one agent are
// serialised; batches of different agents proceed in parallel up to the
// region lock, which is taken once per batch. d, if not nil, lends its
// scratch space.
func (e *Evaluator) ingest(r *regionState, b *wire.Batch, now time.Time, d *fastDecoder) error {
	var wins []*window
	if d != nil {
		wins = slices.Grow(d.wins[:0], len(b.Results))[:len(b.Results)]
		defer func() { d.wins = wins; clear(wins) }()
	} else {
		wins = make([]*window, len(b.Results))
	}
	defer e.ingesting.add(r, now)()
	if err := e.validate(r, b, wins, now); err != nil {
		return err
	}
	// Sequence numbers start from the agent's clock in nanoseconds, and
	// that clock is within MaxClockSkew of ours (or its signature would
	// not pass). One accepted ahead of the agent's clock makes its next
	// batches replays until it re-bases (wire.SeqPath); bounding how far
	// ahead one may be bounds how far a re-based agent runs ahead of its
	// clock.
	if limit := now.Add(wire.MaxSeqAhead).UnixNano(); limit > 0 && b.Seq > uint64(limit) {
		return fmt.Errorf("%w: seq %d is ahead of this evaluator's clock (%d ns since 1970) by more than %w", ErrInvalidBatch, b.Seq, now.UnixNano(), errSeqAhead)
	}
	a := r.agent(b.Agent, now)
	if a == nil {
		return fmt.Errorf("%w: region %s already has %d agents reporting", ErrUnauthorized, quote(r.name), maxAgentsPerRegion)
	}
	defer r.release(a)

	// The agent's lock serialises its batches through the sequence check,
	// the durable sequence record and the windows; the decisions the batch
	// calls for are taken after it is released.
	a.mu.Lock()
	toDecide, err := e.applyInOrder(r, a, b, wins, now)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if len(toDecide) > 0 {
		e.evaluateAfterIngest(toDecide, now)
	}
	return nil
}

// applyInOrder checks b's sequence number against agent a's, records the
// new sequence memory durably and applies b, returning the checks to decide
// about. a's mutex is held.
func (e *Evaluator) applyInOrder(r *regionState, a *agentState, b *wire.Batch, wins []*window, now time.Time) ([]string, error) {
	switch a.seqs.classify(b.Seq) {
	case seqDuplicate:
		return nil, fmt.Errorf("%w: seq %d", ErrDuplicate, b.Seq)
	case seqReplay:
		return nil, fmt.Errorf("%w: seq %d is below the highest accepted, %d", ErrReplay, b.Seq, a.seqs.highest)
	}
	next := a.seqs.with(b.Seq)
	if e.store != nil {
		e.recordSeq(seqRecord{Region: r.name, Agent: b.Agent, Highest: next.highest, Recent: next.recentList(), Seen: now})
	}
	a.seqs = next
	return e.apply(r, a, b, wins, now), nil
}

// recordSeq writes an agent's sequence memory before its batch is
// answered. When the data dir cannot be written, the batch is applied all
// the same, from memory: the fault is this evaluator's, and refusing the
// batch would make its region look silent. The record stays queued and is
// written once the disk takes it; until then a restart would forget it
// (see docs/deploy.md, "What is on disk when"). While the fault lasts,
// ingest does not wait for commits that fail.
func (e *Evaluator) recordSeq(rec seqRecord) {
	if e.faults.failing(faultDataDir) {
		if err := e.store.put(rec); err != nil {
			e.log.Error("sequence memory not queued", "region", rec.Region, "agent", rec.Agent, "err", err)
		}
		return
	}
	if err := e.store.commit(rec); err != nil {
		// The commit's OnCommit has noted the fault and logged it.
		e.log.Debug("batch applied from memory: its sequence memory is not on disk yet", "region", rec.Region, "agent", rec.Agent, "err", err)
	}
}

// apply adds b's results to their windows and records the delivery. It
// returns the checks whose verdict the batch may have changed.
func (e *Evaluator) apply(r *regionState, a *agentState, b *wire.Batch, wins []*window, now time.Time) []string {
	digest := b.ConfigDigest
	if len(digest) > maxDigestBytes {
		// A copy: the batch's long digest can then be collected.
		digest = strings.Clone(wire.Clip(digest, maxDigestBytes))
	}
	var firsts, decide []string
	late, skipped := 0, 0
	skip := ""
	hist := e.plan.Load().histories
	r.mu.Lock()
	if !r.lastSeen.IsZero() && now.Sub(r.lastSeen) > e.staleAfter {
		// This batch ends a silence: the region is back from a partition
		// or an agent restart, and what it probed before now is history.
		r.returned = now
	}
	for i := range b.Results {
		res := &b.Results[i]
		w := wins[i]
		if w == nil {
			skipped++
			skip = res.Check
			continue
		}
		if w.late(res, now, r.returned) {
			// Old news, replayed from a spool: history for the status
			// page and metrics, no first failure and no decision.
			w.add(res, a.name, now, true)
			if ch := hist[res.Check]; ch != nil {
				ch.probe(r.name, res.Time, res.OK, time.Duration(res.Duration*float64(time.Second)))
			}
			late++
			continue
		}
		if !res.OK && !res.Confirm && (!w.hasLast || w.last.OK) && !slices.Contains(firsts, res.Check) {
			firsts = append(firsts, res.Check)
		}
		// Only a failure, or a result in a window that holds a recent
		// failure (a region failing or recovering), can change a verdict.
		if (!res.OK || w.recentFailure(w.recovery+1)) && !slices.Contains(decide, res.Check) {
			decide = append(decide, res.Check)
		}
		w.add(res, a.name, now, false)
		if ch := hist[res.Check]; ch != nil {
			ch.probe(r.name, res.Time, res.OK, time.Duration(res.Duration*float64(time.Second)))
		}
		if t := r.tables().shapes[res.Check]; t != nil && shapeInput(res, now) && t.Add(res, now) && !slices.Contains(decide, res.Check) {
			decide = append(decide, res.Check)
		}
	}
	if now.After(r.lastSeen) {
		r.lastSeen = now
	}
	a.lastSeen, a.lastSeq = now, b.Seq
	a.digest, a.digestBad = digest, digest != e.config().Digest
	change := r.updateMismatch(now, e.staleAfter)
	r.mu.Unlock()

	r.metrics.results.Add(float64(len(b.Results) - skipped))
	if late > 0 {
		r.metrics.late.Add(float64(late))
	}
	if skipped > 0 {
		r.metrics.skipped.Add(float64(skipped))
		if ok, suppressed := e.limiter.Allow("skip/"+r.name, now); ok {
			e.log.Warn("results for checks this evaluator's configuration does not run in the region skipped: the agent runs another configuration",
				"region", r.name, "agent", a.name, "skipped", skipped, "example_check", quote(skip),
				"agent_config_digest", digest, "evaluator_config_digest", e.config().Digest, "suppressed", suppressed)
		}
	}
	e.reportMismatch(r, change, a.name, digest)
	if len(firsts) > 0 {
		e.noteFirstFailures(r.name, firsts, now)
	}
	return decide
}

// shapeMaxLag is how long after a probe its result may arrive and still
// feed shape detection; results replayed from a spool after an outage
// would otherwise land in the wrong bucket and slot.
const shapeMaxLag = 2 * time.Minute

// shapeInput reports whether r feeds shape detection: a scheduled probe
// that arrived promptly. Confirmation runs are out of schedule and would
// weigh their moment twice.
func shapeInput(r *wire.Result, now time.Time) bool {
	return !r.Confirm && now.Sub(r.Time) <= shapeMaxLag
}

// record counts err's outcome for the region labelled label and logs
// rejections, at most once per rejectLogEvery per region and outcome.
func (e *Evaluator) record(label string, err error, now time.Time) outcome {
	o := outcomeOf(err)
	e.metrics.region(label).batches[o].Inc()
	if o == outcomeOK || o == outcomeDuplicate {
		return o
	}
	if ok, suppressed := e.limiter.Allow(label+"/"+o.String(), now); ok {
		e.log.Warn("result batch refused", "region", label, "result", o.String(), "err", err, "suppressed", suppressed)
	}
	return o
}

// outcomeOf classifies ingest's error.
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrDuplicate):
		return outcomeDuplicate
	case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrReplay):
		return outcomeUnauthorized
	case errors.Is(err, ErrTooLarge):
		return outcomeTooLarge
	case errors.Is(err, ErrInvalidBatch):
		return outcomeBadRequest
	}
	return outcomeError
}

// statusOf is the HTTP status of a refusal.
func statusOf(o outcome) int {
	switch o {
	case outcomeUnauthorized:
		return http.StatusUnauthorized
	case outcomeTooLarge:
		return http.StatusRequestEntityTooLarge
	case outcomeBadRequest:
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// fastDecoder is what e.decoders pools: a wire decoder and the windows
// validate fills for the batch it decoded, both reused across batches.
type fastDecoder struct {
	*wire.Decoder
	wins []*window
}

func newFastDecoder() *fastDecoder { return &fastDecoder{Decoder: wire.NewDecoder()} }

// decoder returns a fast decoder from the pool.
func (e *Evaluator) decoder() *fastDecoder {
	if d, ok := e.decoders.Get().(*fastDecoder); ok {
		return d
	}
	return newFastDecoder()
}
