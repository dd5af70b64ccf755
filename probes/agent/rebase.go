package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// maxSeqAnswer bounds the body of an evaluator's wire.SeqAnswer.
const maxSeqAnswer = 4 << 10

// rebase is what e's sender does when e refused the batch seq as a replay:
// it asks e, signed, for the highest sequence number e accepted from this
// agent, renumbers e's pending batches above it (keeping their order) and
// raises the number of the batches sealed from now on above them all.
// Nothing is dropped; the batches are signed anew when sent. It returns
// why it could not ask, in which case nothing changed.
//
// The batcher waits while the spool is renumbered: a batch sealed in the
// middle could be numbered below the renumbered ones. Other evaluators'
// spools keep their numbers: each evaluator remembers its own.
func (r *Reporter) rebase(ctx context.Context, e *evaluator, seq uint64, now time.Time) error {
	highest, err := r.askHighest(ctx, e)
	if err != nil {
		return fmt.Errorf("batch seq %d refused as a replay, and cannot ask for the highest sequence number accepted: %w", seq, err)
	}
	r.seqMu.Lock()
	moved, top, failed := renumber(e, highest)
	r.lastSeq = max(r.lastSeq, top)
	r.seqMu.Unlock()
	e.rebases.Inc()
	if ok, n := e.rebaseLog.Allow(now); ok {
		e.log.Warn("evaluator refused a batch as a replay: it had accepted a higher sequence number from this agent (clock set back, spool lost, or another sender with this agent's key); renumbered the pending batches above it and sending them again",
			"seq", seq, "evaluator_highest", highest, "renumbered", moved, "unreadable", failed, "rebases_since_last_log", n)
	}
	return nil
}

// renumber gives every batch of e's spool numbered at or below highest,
// and any it would then collide with, the next number up, in order, and
// returns how many it renumbered, the highest number in the spool (at
// least highest) and how many it could not read (left for the sender,
// which sets them aside). A batch is written under its new number before
// its old one is removed: a crash in between sends it twice, never not
// at all.
func renumber(e *evaluator, highest uint64) (moved int, top uint64, failed int) {
	top = highest
	for _, old := range e.spool.Seqs() {
		if old > top {
			top = old
			continue
		}
		data, err := e.spool.Get(old)
		if err == nil {
			data, err = withSeq(data, top+1)
		}
		if err != nil {
			failed++
			continue
		}
		top++
		if err := e.spool.Put(top, data); err != nil {
			e.spoolErrors.Inc() // kept in memory meanwhile
		}
		if err := e.spool.Remove(old); err != nil {
			e.log.Error("cannot delete a renumbered batch: it will be sent twice after a restart", "err", err)
		}
		moved++
	}
	return moved, top, failed
}

// withSeq returns the batch body data with its sequence number set to seq,
// every other field kept as it was.
func withSeq(data []byte, seq uint64) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("spooled batch: %w", err)
	}
	if _, ok := fields["seq"]; !ok {
		return nil, errors.New("spooled batch has no seq")
	}
	fields["seq"] = json.RawMessage(strconv.FormatUint(seq, 10))
	return json.Marshal(fields)
}

// askHighest asks e, signed, for the highest sequence number it accepted
// from this agent (GET wire.SeqPath).
func (r *Reporter) askHighest(ctx context.Context, e *evaluator) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.seqURL, nil)
	if err != nil {
		return 0, err
	}
	ts, sig := wire.Sign(r.key, r.clock.Now(), wire.SeqPayload(r.region, r.agent))
	req.Header.Set("User-Agent", "outpost-agent")
	req.Header.Set(wire.HeaderRegion, r.region)
	req.Header.Set(wire.HeaderAgent, r.agent)
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSeqAnswer))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, strings.ToValidUTF8(wireClip(strings.TrimSpace(string(body))), "?"))
	}
	var a wire.SeqAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	return a.Highest, nil
}

// wireClip cuts an evaluator's answer for a log line.
func wireClip(s string) string { return wire.Clip(s, 256) }

// Seqs returns the sequence numbers of the spooled batches, oldest first.
func (s *spool) Seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.seq
	}
	return out
}

// Get returns the batch seq, from memory or from its file.
func (s *spool) Get(seq uint64) ([]byte, error) {
	s.mu.Lock()
	i, found := s.find(seq)
	var mem []byte
	if found {
		mem = s.entries[i].mem
	}
	s.mu.Unlock()
	if !found {
		return nil, fmt.Errorf("spool: no batch %d", seq)
	}
	if mem != nil {
		return mem, nil
	}
	return os.ReadFile(s.path(seq))
}
