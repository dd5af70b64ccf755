package outbox

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
)

// Policies returns the grouping stage of each notifier of cfg, and the
// stage of a notifier cfg does not configure (the default console): the
// storm guard of cfg's defaults.
func Policies(cfg *checks.Config) (map[string]GroupPolicy, GroupPolicy) {
	out := make(map[string]GroupPolicy, len(cfg.Notifiers))
	for _, n := range cfg.Notifiers {
		out[n.Name] = GroupPolicy{Grouping: n.Grouping, Storm: n.Storm}
	}
	def := GroupPolicy{Grouping: cfg.Defaults.Grouping}
	if s := cfg.Defaults.Storm; s != nil && !s.Disabled {
		def.Storm = s
	}
	return out, def
}

// CheckFacts returns the grouping facts of cfg's checks.
func CheckFacts(cfg *checks.Config) Facts {
	byID := make(map[string]*checks.Check, len(cfg.Checks))
	for _, c := range cfg.Checks {
		byID[c.ID] = c
	}
	return func(id, fact string) string {
		if c := byID[id]; c != nil {
			return c.GroupFact(fact)
		}
		return ""
	}
}

// Budget is a notifier's own budget of events per minute. Notifiers with
// the same Key share one budget (PagerDuty throttles per routing key).
type Budget struct {
	Key       string
	PerMinute int
}

// Budgets returns the event budgets of cfg's notifiers: one per PagerDuty
// routing key, shared by the notifiers that use it. The key itself stays
// in memory, never in a log or a metric.
func Budgets(cfg *checks.Config) map[string]Budget {
	out := map[string]Budget{}
	first := map[string]string{} // routing key → first notifier's name
	for _, n := range cfg.Notifiers {
		if n.PagerDuty == nil {
			continue
		}
		rk := n.PagerDuty.RoutingKey.Value() + "\x00" + n.PagerDuty.URL
		if _, ok := first[rk]; !ok {
			first[rk] = n.Name
		}
		out[n.Name] = Budget{Key: first[rk], PerMinute: n.PagerDuty.MaxEventsPerMinute}
	}
	return out
}

// bucket is a token bucket: PerMinute events a minute, in bursts of up to
// a quarter of that.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	at     time.Time
}

func newBuckets(budgets map[string]Budget, now time.Time) map[string]*bucket {
	shared := map[string]*bucket{}
	out := map[string]*bucket{}
	for name, b := range budgets {
		if b.PerMinute <= 0 {
			continue
		}
		bk := shared[b.Key]
		if bk == nil {
			burst := max(1, float64(b.PerMinute)/4)
			bk = &bucket{rate: float64(b.PerMinute) / 60, burst: burst, tokens: burst, at: now}
			shared[b.Key] = bk
		}
		out[name] = bk
	}
	return out
}

// take spends a token at now, or returns how long until one is there.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.at) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// flushGroups is one notifier's grouping loop: it queues the group
// notifications as they fall due, until ctx is done.
func (p *Outbox) flushGroups(ctx context.Context, name string) {
	pol := p.groups[name]
	for {
		next, res, err := p.box.flush(name, pol, p.clock.Now())
		if err != nil {
			if errors.Is(err, errOutboxClosed) {
				return
			}
			p.logLimited(slog.LevelError, name+"/groups", "notification groups not flushed; will retry", "notifier", name, "err", err)
		}
		p.queued(res.added)
		if res.folded > 0 {
			p.logLimited(slog.LevelWarn, name+"/storm", "storm guard: incidents opening too fast, folded into one storm notification",
				"notifier", name, "groups_folded", res.folded)
		}
		var wait <-chan time.Time
		var t clock.Timer
		if !next.IsZero() {
			t = p.clock.NewTimer(max(next.Sub(p.clock.Now()), 0))
			wait = t.C()
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-p.kick[name]:
		case <-wait:
		}
		if t != nil {
			t.Stop()
		}
	}
}
