package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// send is e's sender loop: it delivers the oldest spooled batch until it is
// accepted or refused for good, then the next, and waits for a new batch
// when the spool is empty.
func (r *Reporter) send(ctx context.Context, e *evaluator) {
	attempt := 0 // consecutive failed attempts
	// rebased is set by a re-base and cleared by the next batch accepted:
	// a batch refused as a replay right after a re-base is retried with
	// backoff (and then re-based again), so that two agents reporting
	// under one name cannot make each other re-base in a tight loop.
	rebased := false
	for {
		seq, body, ok := e.spool.Oldest()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
				continue
			}
		}
		e.answerDue.Store(r.clock.Now().Add(sendTimeout).UnixNano())
		status, answered, refused, detail, err := e.deliver(ctx, seq, body)
		e.answerDue.Store(0)
		if err != nil && ctx.Err() != nil {
			return // the batch stays spooled for the next run
		}
		now := r.clock.Now()
		if err == nil && (status < 500 || answered) {
			r.lastReached.Store(now.UnixNano())
		}
		switch {
		case err == nil && status >= 200 && status < 300:
			e.sent.Inc()
			r.removeSent(e, seq, now)
			rebased = false
			if attempt > 0 {
				e.log.Info("evaluator accepts batches again", "failed_attempts", attempt)
				attempt = 0
			}
			continue
		case err == nil && status == http.StatusUnauthorized && refused == wire.RefusedReplay && !rebased:
			// Not a batch to drop: the evaluator accepted a higher
			// number from this agent's name (a clock set back, a lost
			// spool, or someone holding its key). Renumber and resend.
			err = r.rebase(ctx, e, seq, now)
			if err == nil {
				rebased = true
				continue
			}
			if ctx.Err() != nil {
				return
			}
		case err == nil && status == http.StatusUnauthorized && refused == wire.RefusedReplay:
			rebased = false // re-base again after the backoff
			err = fmt.Errorf("batch seq %d refused as a replay again right after a re-base: is another agent reporting as %q? retrying", seq, r.agent)
		case err == nil && permanent(status, refused, detail):
			e.rejected.WithLabelValues(strconv.Itoa(status)).Inc()
			r.removeSent(e, seq, now)
			if ok, n := e.rejectLog.Allow(now); ok {
				e.log.Error("evaluator refused a batch for good: dropped it", "status", status,
					"response", detail, "seq", seq, "refused_since_last_log", n)
			}
			continue
		}
		attempt++
		e.failures.Inc()
		if ok, n := e.failLog.Allow(now); ok {
			if err == nil {
				err = fmt.Errorf("status %d: %s", status, detail)
			}
			e.log.Warn("cannot deliver to evaluator: batches stay spooled and are retried", "err", err,
				"spooled_batches", e.spool.Len(), "failures_since_last_log", n)
		}
		t := r.clock.NewTimer(backoff(attempt, r.heartbeat))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

func (r *Reporter) removeSent(e *evaluator, seq uint64, now time.Time) {
	if err := e.spool.Remove(seq); err != nil {
		if ok, n := e.diskLog.Allow(now); ok {
			e.log.Error("cannot delete a delivered batch: it will be sent again after a restart", "err", err, "errors_since_last_log", n)
		}
	}
}

// permanent reports whether an evaluator will refuse a batch however often
// it is sent: malformed, badly signed, unknown agent, too large. refused is
// the answer's wire.HeaderRefused.
func permanent(status int, refused, detail string) bool {
	switch refused {
	case wire.RefusedReplay, wire.RefusedAhead:
		// A replay is re-based; a number ahead of the evaluator's clock
		// passes once its clock has caught up.
		return false
	}
	switch status {
	case http.StatusUnauthorized:
		// A clock-skew refusal passes once either clock is fixed, and the
		// batch is re-signed at every attempt: retry it.
		return !strings.Contains(detail, "clock skew")
	case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		return true
	}
	return false
}

// backoff returns the wait before retry number attempt (from 1), at most
// limit (the heartbeat, when positive): an agent must not wait longer than
// an evaluator that restarted gives it to report again (its start grace is
// stale_after plus the heartbeat).
func backoff(attempt int, limit time.Duration) time.Duration {
	ceiling := backoffMax
	if limit > 0 {
		ceiling = min(ceiling, limit)
	}
	if attempt < 16 {
		ceiling = min(ceiling, backoffMin<<(attempt-1))
	}
	return rand.N(ceiling)
}

// post sends one batch, signed now, and returns the status, whether the
// evaluator itself answered (wire.HeaderEvaluator), why it refused the
// batch (wire.HeaderRefused) and, for an unsuccessful answer, the start of
// the response body.
func (r *Reporter) post(ctx context.Context, e *evaluator, body []byte) (status int, answered bool, refused, detail string, err error) {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, false, "", "", fmt.Errorf("evaluator %s: %w", e.label, err)
	}
	ts, sig := wire.Sign(r.key, r.clock.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "outpost-agent")
	req.Header.Set(wire.HeaderRegion, r.region)
	req.Header.Set(wire.HeaderAgent, r.agent)
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, false, "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		detail = strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")
	}
	// Read a bounded rest so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header.Get(wire.HeaderEvaluator) != "", resp.Header.Get(wire.HeaderRefused), detail, nil
}
