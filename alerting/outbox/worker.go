package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/probes/wire"
)

// work is one notifier's delivery loop.
func (p *Outbox) work(ctx context.Context, name string) {
	notifier := p.notifiers[name]
	attempt := 0
	for ctx.Err() == nil {
		e, ok, corrupt, err := p.box.head(name)
		if corrupt > 0 {
			p.log.Error("outbox: dropped undecodable entries", "notifier", name, "dropped", corrupt)
		}
		if errors.Is(err, errOutboxClosed) {
			return
		}
		if err != nil {
			attempt++
			p.logLimited(slog.LevelError, name, "outbox unreadable", "notifier", name, "err", err)
			if !p.sleep(ctx, p.backoff(attempt, nil)) {
				return
			}
			continue
		}
		if !ok {
			attempt = 0
			select {
			case <-ctx.Done():
				return
			case <-p.wake[name]:
			}
			continue
		}
		if b := p.budgets[name]; b != nil {
			if wait := b.take(p.clock.Now()); wait > 0 {
				// Let the entry compete again when the budget has a token:
				// a new incident that arrives meanwhile goes first.
				p.box.release(name)
				p.metrics.result(name, resultHeld).Inc()
				p.logLimited(slog.LevelWarn, name+"/budget", "events budget spent: notifications held back, new incidents first",
					"notifier", name, "pending", p.box.pending(name), "next_in", wait.Round(time.Millisecond))
				if !p.sleep(ctx, wait) {
					return
				}
				continue
			}
		}
		attempt++
		// An attempt under way when ctx ends is finished (within its
		// deadline), so that a clean stop does not send it twice.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.attemptTimeout)
		retry, err := notifier.Notify(actx, e.Notification)
		cancel()
		switch {
		case err == nil:
			p.finish(name, e, false)
			p.metrics.result(name, resultDelivered).Inc()
			// One line per notifier and minute at most: in a storm the
			// metric counts every delivery, the log says it happens.
			p.logLimited(slog.LevelInfo, name+"/delivered", "notification delivered",
				"notifier", name, "key", e.Notification.Key, "action", e.Notification.Action, "attempts", attempt)
			attempt = 0
		case !retry:
			p.finish(name, e, true)
			p.metrics.result(name, resultFailed).Inc()
			p.logLimited(slog.LevelError, name+"/failed", "notification refused for good, dropped",
				"notifier", name, "key", e.Notification.Key, "action", e.Notification.Action, "attempts", attempt, "err", p.redact(err.Error()))
			attempt = 0
		case ctx.Err() != nil:
			return // the entry stays for the next start
		default:
			p.metrics.result(name, resultRetried).Inc()
			p.escalate(name, e, err)
			wait := p.backoff(attempt, err)
			p.logLimited(slog.LevelWarn, name, "notification not delivered, will retry",
				"notifier", name, "key", e.Notification.Key, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", p.redact(err.Error()))
			if !p.sleep(ctx, wait) {
				return
			}
		}
	}
}

// escalate hands entry e of notifier name, failing since it was enqueued,
// to the notifier's escalation target once it has failed for longer than
// the escalation allows.
func (p *Outbox) escalate(name string, e outboxEntry, cause error) {
	esc, ok := p.escalations[name]
	if !ok || p.escalated[name][e.Seq] || p.clock.Now().Sub(e.Enqueued) < esc.After {
		return
	}
	if p.escalated[name] == nil {
		p.escalated[name] = map[uint64]bool{}
	}
	p.escalated[name][e.Seq] = true
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
	delete(p.escalated[name], e.Seq)
	if err := p.box.finish(name, e.Seq, refused); err != nil && !errors.Is(err, errOutboxClosed) {
		p.log.Error("outbox: cannot remove a finished notification; it may be sent again after a restart",
			"notifier", name, "key", e.Notification.Key, "err", err)
	}
	p.metrics.pending[name].Set(float64(p.box.pending(name)))
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
