package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// work is one notifier's delivery loop. One delivery is in flight at a
// time: a notifier's events reach it in the order chosen here (the events
// budget and priority.go), and a destination that hangs hangs for every
// key alike, so more attempts at once would only add load to a destination
// in trouble. What keeps one incident from holding up the others is that a
// failed entry does not stay at the head: its key waits for its retry
// (keyState) while the other keys' entries go, and only a 429, which
// throttles the whole integration, pauses the whole notifier.
func (p *Outbox) work(ctx context.Context, name string) {
	notifier := p.notifiers[name]
	readFailures, throttled := 0, 0
	var paused time.Time // until when a 429 paused the notifier
	var retries retryTimer
	defer retries.stop()
	for ctx.Err() == nil {
		if wait := paused.Sub(p.clock.Now()); wait > 0 {
			if !p.sleep(ctx, wait) {
				return
			}
			continue
		}
		var take func() time.Duration
		if b := p.budgets[name]; b != nil {
			take = func() time.Duration { return b.take(p.clock.Now()) }
		}
		pk, ok, due, corrupt, err := p.box.head(name, p.clock.Now(), take)
		if corrupt > 0 {
			p.log.Error("outbox: dropped undecodable entries", "notifier", name, "dropped", corrupt)
		}
		if errors.Is(err, errOutboxClosed) {
			return
		}
		if err != nil {
			readFailures++
			p.logLimited(slog.LevelError, name, "outbox unreadable", "notifier", name, "err", err)
			if !p.sleep(ctx, p.backoff(readFailures, nil)) {
				return
			}
			continue
		}
		readFailures = 0
		if !ok {
			if !p.idle(ctx, name, due, &retries) {
				return
			}
			continue
		}
		e := pk.entry
		if wait := pk.held; wait > 0 {
			// The entry competes again when the budget has a token: a new
			// incident that arrives meanwhile goes first.
			p.metrics.result(name, resultHeld).Inc()
			p.logLimited(slog.LevelWarn, name+"/budget", "events budget spent: notifications held back, new incidents first",
				"notifier", name, "pending", p.box.pending(name), "next_in", wait.Round(time.Millisecond))
			if !p.sleep(ctx, wait) {
				return
			}
			continue
		}
		attempt := pk.attempts + 1
		// An attempt under way when ctx ends may finish for StopGrace, so
		// that a clean stop does not send it twice; one that hangs longer
		// is cut, and stays in the outbox for the next start.
		actx, cancel := attemptContext(ctx, p.attemptTimeout, p.stopGrace)
		retry, err := notifier.Notify(actx, e.Notification)
		cancel()
		switch {
		case err == nil:
			throttled = 0
			p.finish(name, e, false)
			p.metrics.result(name, resultDelivered).Inc()
			// One line per notifier and minute at most: in a storm the
			// metric counts every delivery, the log says it happens.
			p.logLimited(slog.LevelInfo, name+"/delivered", "notification delivered",
				"notifier", name, "key", e.Notification.Key, "action", e.Notification.Action, "attempts", attempt)
		case !retry:
			p.finish(name, e, true)
			p.metrics.result(name, resultFailed).Inc()
			p.logLimited(slog.LevelError, name+"/failed", "notification refused for good, dropped",
				"notifier", name, "key", e.Notification.Key, "action", e.Notification.Action, "attempts", attempt, "err", p.redact(err.Error()))
		case ctx.Err() != nil:
			p.box.release(name)
			return // the entry stays for the next start
		default:
			p.metrics.result(name, resultRetried).Inc()
			var de *notify.DeliveryError
			answered := errors.As(err, &de)
			now := p.clock.Now()
			var until time.Time
			var wait time.Duration
			args := []any{"notifier", name, "key", e.Notification.Key}
			if answered && de.StatusCode == http.StatusTooManyRequests {
				// The destination throttles the integration, not the
				// incident: everything waits.
				throttled++
				wait = p.backoff(throttled, err)
				paused = now.Add(wait)
				args = append(args, "throttled", throttled, "paused_notifier", true)
			} else {
				wait = p.backoff(attempt, err)
				until = now.Add(wait)
				args = append(args, "attempt", attempt)
			}
			// Without an answer the destination may have taken the event.
			st, serr := p.box.retryLater(name, e.Seq, attempt, until, !answered)
			p.escalate(name, e, err)
			if serr != nil && !errors.Is(serr, errOutboxClosed) {
				p.logLimited(slog.LevelError, name+"/settle", "outbox: cannot drop notifications resolved before delivery; they will be sent",
					"notifier", name, "key", e.Notification.Key, "err", serr)
			}
			p.settled(name, st)
			p.logLimited(slog.LevelWarn, name, "notification not delivered, will retry",
				append(args, "retry_in", wait.Round(time.Millisecond), "err", p.redact(err.Error()))...)
		}
	}
}

// retryTimer is a worker's timer for the first key waiting for a retry.
// It is kept while that time stays the same, so that a wake-up that finds
// nothing new to do does not make another timer.
type retryTimer struct {
	t  clock.Timer
	at time.Time
}

func (r *retryTimer) stop() {
	if r.t != nil {
		r.t.Stop()
	}
	r.t, r.at = nil, time.Time{}
}

// idle waits until a notification is queued for notifier name or, when
// due is not zero, until then; it returns false if ctx ended first.
func (p *Outbox) idle(ctx context.Context, name string, due time.Time, r *retryTimer) bool {
	if !r.at.Equal(due) {
		r.stop()
		if !due.IsZero() {
			r.t, r.at = p.clock.NewTimer(max(due.Sub(p.clock.Now()), 0)), due
		}
	}
	var fired <-chan time.Time
	if r.t != nil {
		fired = r.t.C()
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.wake[name]:
	case <-fired:
		r.t, r.at = nil, time.Time{}
	}
	return true
}

// settled counts and logs what retryLater dropped.
func (p *Outbox) settled(name string, st settled) {
	if st.superseded == 0 {
		return
	}
	p.metrics.result(name, resultSuperseded).Add(float64(st.superseded))
	p.metrics.pending[name].Set(float64(p.box.pending(name)))
	p.logSuperseded(name, st.key, st.superseded, st.resolveDropped)
}

// logSuperseded says, at most once a minute per notifier, that an
// incident's notifications were dropped unsent because it resolved first.
func (p *Outbox) logSuperseded(name, key string, n int, resolveDropped bool) {
	if resolveDropped {
		p.logLimited(slog.LevelWarn, name+"/superseded", "incident resolved before its trigger could be delivered: neither is sent",
			"notifier", name, "key", key, "dropped", n)
		return
	}
	p.logLimited(slog.LevelInfo, name+"/superseded", "incident resolved before its triggers were delivered: only the resolve is sent",
		"notifier", name, "key", key, "dropped", n)
}

// escalate hands entry e of notifier name, failing since it was enqueued,
// to the notifier's escalation target once it has failed for longer than
// the escalation allows.
func (p *Outbox) escalate(name string, e outboxEntry, cause error) {
	esc, ok := p.escalations[name]
	if !ok || p.clock.Now().Sub(e.Enqueued) < esc.After || !p.box.markEscalated(name, e.Seq) {
		return
	}
	n := e.Notification
	n.Summary = fmt.Sprintf("[escalated: %s failing for %s] %s", name, p.clock.Now().Sub(e.Enqueued).Round(time.Second), n.Summary)
	n.Summary = wire.Clip(n.Summary, maxEscalatedSummary)
	if err := p.Enqueue(n, []string{esc.To}); err != nil {
		p.log.Error("cannot escalate a notification", "from", name, "to", esc.To, "key", n.Key, "err", err)
		return
	}
	p.log.Warn("notification escalated: its notifier keeps failing", "from", name, "to", esc.To, "key", n.Key, "err", p.redact(cause.Error()))
}

// finish removes a delivered or refused entry.
func (p *Outbox) finish(name string, e outboxEntry, refused bool) {
	if err := p.box.finish(name, e.Seq, refused); err != nil && !errors.Is(err, errOutboxClosed) {
		p.log.Error("outbox: cannot remove a finished notification; it may be sent again after a restart",
			"notifier", name, "key", e.Notification.Key, "err", err)
	}
	p.metrics.pending[name].Set(float64(p.box.pending(name)))
	p.kickReminders()
}

// backoff returns the wait before attempt+1: a uniformly random duration
// up to min(BackoffMax, BackoffMin·2^(attempt-1)) ("full jitter"), but no
// less than what the destination asked for with Retry-After (capped at
// BackoffMax).
func (p *Outbox) backoff(attempt int, err error) time.Duration {
	ceiling := p.backoffMax
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 32 {
		if d := p.backoffMin << (attempt - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	wait := rand.N(ceiling + 1)
	var de *notify.DeliveryError
	if errors.As(err, &de) && de.RetryAfter > wait {
		wait = min(de.RetryAfter, p.backoffMax)
	}
	return wait
}

// sleep waits d on the pipeline's clock; it returns false if ctx ended
// first.
func (p *Outbox) sleep(ctx context.Context, d time.Duration) bool {
	t := p.clock.NewTimer(d)
	select {
	case <-ctx.Done():
		t.Stop()
		return false
	case <-t.C():
		return true
	}
}

// logLimited logs at most once per retryLogEvery per key, with the number
// of lines held back since.
func (p *Outbox) logLimited(level slog.Level, key, msg string, args ...any) {
	ok, suppressed := p.limiter.Allow(key, p.clock.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	p.log.Log(context.Background(), level, msg, args...)
}

// attemptContext is the context of one delivery attempt: it ends after
// timeout, or grace after ctx ends, whichever comes first. The grace runs
// on the real clock: it bounds a process's shutdown, not a decision.
func attemptContext(ctx context.Context, timeout, grace time.Duration) (context.Context, context.CancelFunc) {
	a, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	var mu sync.Mutex
	var cut *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cut = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return a, func() {
		stop()
		mu.Lock()
		if cut != nil {
			cut.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
