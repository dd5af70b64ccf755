package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/ratelog"
)

// Outbox defaults.
const (
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 5 * time.Minute
)

// maxEscalatedSummary bounds an escalated notification's summary: what
// PagerDuty's summary holds.
const maxEscalatedSummary = 1024

// retryLogEvery is the most often a notifier's failing attempts are logged.
const retryLogEvery = time.Minute

// ErrUnknownNotifier is wrapped by Enqueue when a target names no notifier
// of the pipeline.
var ErrUnknownNotifier = errors.New("unknown notifier")

// Options configure a Outbox. Notifiers and Dir are required.
type Options struct {
	// Notifiers are the destinations, by name (checks.Notifier.Name).
	Notifiers map[string]notify.Notifier
	// Routes are the routes each notifier takes; a notifier missing here
	// takes every route.
	Routes map[string][]string
	// CheckNotifiers are the notifiers of each check that names its own
	// (checks.Check.Notify), by check id; see Enqueue.
	CheckNotifiers map[string][]string
	// Dir holds the outbox file (OutboxFileName), created if needed.
	Dir string
	// Clock is the time source of dedup decisions and backoff timers; nil
	// means the wall clock.
	Clock clock.Clock
	// Logger receives the pipeline's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the pipeline's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// MaxPending bounds each notifier's outbox queue; zero means
	// DefaultMaxPending. When a queue is full, the oldest non-critical
	// entry goes first.
	MaxPending int
	// RepeatInterval is how long an identical trigger or notice is not
	// sent again; zero means DefaultRepeatInterval.
	RepeatInterval time.Duration
	// Repeat are the notifiers that are reminded of incidents still open
	// (checks.Notifier.Repeat): each is sent an open incident's trigger
	// again, as a reminder, every interval, which is also its
	// RepeatInterval. A notifier missing here gets no reminders.
	Repeat map[string]time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts (with full jitter); zero means 1s and 5m.
	BackoffMin, BackoffMax time.Duration
	// AttemptTimeout bounds one attempt on top of the notifier's own
	// deadline; zero means notify.DefaultTimeout.
	AttemptTimeout time.Duration
	// StopGrace is how long an attempt under way when Run's context ends
	// may go on: it finishes if it can (so it is not sent twice), and one
	// that hangs is cut and stays pending for the next start. Zero means
	// DefaultStopGrace.
	StopGrace time.Duration
	// Redact is applied to every error before it is logged (e.g.
	// cfg.Redactor()); nil means none beyond the notifiers' own.
	Redact func(string) string
	// Escalations name, per notifier, a fallback notifier that also gets
	// what the first has failed to deliver for a while (NotifierEscalations).
	Escalations map[string]checks.Escalation
	// Groups are the notifiers' grouping stages (see GroupPolicy and
	// Policies); a notifier missing here has DefaultGroup.
	Groups       map[string]GroupPolicy
	DefaultGroup GroupPolicy
	// Facts looks up the grouping facts of checks (CheckFacts).
	Facts Facts
	// Budgets are the notifiers' event budgets (Budgets); a notifier
	// missing here has none.
	Budgets map[string]Budget
}

// DefaultStopGrace is Options.StopGrace's default: a stop takes at most
// this long however the destinations answer.
const DefaultStopGrace = 2 * time.Second

// Outbox delivers notifications durably, Alertmanager-style, in small
// stages: routing (Enqueue picks the notifiers whose routes take the
// notification), dedup (a repeat of what a notifier already has is not
// queued; see dedup), the outbox (every accepted notification is on disk
// before Enqueue returns and leaves it only once delivered or refused for
// good), and one worker per notifier (Run) that delivers its queue in
// order per incident (dedup key), retrying a failed incident's events with
// exponential backoff while the other incidents' events go on. Its methods are safe for concurrent use.
type Outbox struct {
	notifiers map[string]notify.Notifier
	names     []string
	routes    map[string][]string
	byCheck   map[string][]string
	box       *store
	clock     clock.Clock
	log       *slog.Logger
	redact    func(string) string
	metrics   *metrics
	wake      map[string]chan struct{}
	limiter   *ratelog.Keyed

	backoffMin, backoffMax, attemptTimeout, stopGrace time.Duration

	// escalations by notifier. The entries already escalated are marked in
	// the queue (queue.escalated); after a restart an entry may be
	// escalated again, and the escalation target's dedup stage drops the
	// repeat.
	escalations map[string]checks.Escalation

	groups  map[string]GroupPolicy
	facts   Facts
	kick    map[string]chan struct{}
	budgets map[string]*bucket

	// remindKick wakes the reminder loop (remind.go) when a trigger is
	// queued, which may make an earlier reminder due.
	remindKick chan struct{}

	running atomic.Bool

	// path is the outbox file; setAside where a damaged one was moved at
	// Open, or "".
	path, setAside string
}

var _ notify.Notifier = (*Outbox)(nil)

// Open opens the outbox in opts.Dir, loads what is pending there and
// returns a pipeline ready for Enqueue; Run delivers. Pending entries for a
// notifier that is no longer configured are dropped and logged. Call Close
// after Run has returned.
func Open(opts Options) (*Outbox, error) {
	if len(opts.Notifiers) == 0 {
		return nil, errors.New("pipeline: no notifiers")
	}
	if opts.Dir == "" {
		return nil, errors.New("pipeline: no outbox directory")
	}
	for check, names := range opts.CheckNotifiers {
		for _, name := range names {
			if _, ok := opts.Notifiers[name]; !ok {
				return nil, fmt.Errorf("pipeline: check %q: %w %q", check, ErrUnknownNotifier, name)
			}
		}
	}
	for name, n := range opts.Notifiers {
		if name == "" || n == nil {
			return nil, fmt.Errorf("pipeline: notifier %q: empty name or nil notifier", name)
		}
		for _, r := range opts.Routes[name] {
			if !slices.Contains(checks.Routes, r) {
				return nil, fmt.Errorf("pipeline: notifier %q: unknown route %q", name, r)
			}
		}
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Redact == nil {
		opts.Redact = func(s string) string { return s }
	}
	// Zero or less means the default.
	opts.MaxPending = cmp.Or(max(opts.MaxPending, 0), DefaultMaxPending)
	opts.RepeatInterval = cmp.Or(max(opts.RepeatInterval, 0), DefaultRepeatInterval)
	opts.BackoffMin = cmp.Or(max(opts.BackoffMin, 0), DefaultBackoffMin)
	opts.BackoffMax = max(cmp.Or(max(opts.BackoffMax, 0), DefaultBackoffMax), opts.BackoffMin)
	opts.AttemptTimeout = cmp.Or(max(opts.AttemptTimeout, 0), notify.DefaultTimeout)
	opts.StopGrace = cmp.Or(max(opts.StopGrace, 0), DefaultStopGrace)

	names := sortedNames(opts.Notifiers)
	m, err := newMetrics(opts.Registerer, names)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	repeats := map[string]time.Duration{}
	for name, d := range opts.Repeat {
		if d > 0 {
			repeats[name] = d
		}
	}
	box, rep, err := openStore(opts.Dir, names, opts.MaxPending, repeatPolicy{def: opts.RepeatInterval, by: repeats}, opts.Clock.Now(), opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p := &Outbox{
		notifiers:      opts.Notifiers,
		names:          names,
		routes:         map[string][]string{},
		byCheck:        opts.CheckNotifiers,
		box:            box,
		clock:          opts.Clock,
		log:            opts.Logger,
		redact:         opts.Redact,
		metrics:        m,
		wake:           map[string]chan struct{}{},
		limiter:        ratelog.NewKeyed(retryLogEvery),
		backoffMin:     opts.BackoffMin,
		backoffMax:     opts.BackoffMax,
		attemptTimeout: opts.AttemptTimeout,
		stopGrace:      opts.StopGrace,
		escalations:    map[string]checks.Escalation{},
		groups:         map[string]GroupPolicy{},
		facts:          opts.Facts,
		kick:           map[string]chan struct{}{},
		budgets:        newBuckets(opts.Budgets, opts.Clock.Now()),
		remindKick:     make(chan struct{}, 1),
	}
	for name, esc := range opts.Escalations {
		if _, ok := opts.Notifiers[esc.To]; !ok {
			box.close()
			return nil, fmt.Errorf("pipeline: notifier %q escalates to %w %q", name, ErrUnknownNotifier, esc.To)
		}
		p.escalations[name] = esc
	}
	for _, name := range names {
		p.routes[name] = opts.Routes[name]
		if len(p.routes[name]) == 0 {
			p.routes[name] = checks.Routes
		}
		p.wake[name] = make(chan struct{}, 1)
		p.kick[name] = make(chan struct{}, 1)
		pol, ok := opts.Groups[name]
		if !ok {
			pol = opts.DefaultGroup
		}
		p.groups[name] = pol
		if rep.groups[name] > 0 {
			p.log.Info("outbox: notification groups open from before the restart", "notifier", name, "groups", rep.groups[name])
		}
		m.pending[name].Set(float64(rep.pending[name]))
		if rep.pending[name] > 0 {
			p.log.Info("outbox: notifications pending from before the restart", "notifier", name, "pending", rep.pending[name])
		}
	}
	for name, n := range rep.orphaned {
		p.log.Warn("outbox: dropped notifications for a notifier no longer configured", "notifier", name, "dropped", n)
	}
	if rep.corrupt > 0 {
		p.log.Error("outbox: dropped undecodable entries", "dropped", rep.corrupt)
	}
	p.path, p.setAside = rep.path, rep.setAside
	return p, nil
}

// SetAside reports whether Open found the outbox file damaged: its path,
// where it was moved (empty when it was not) and what was lost
// (OutboxLost), for the caller to tell on-call.
func (p *Outbox) SetAside() (path, movedTo, lost string) {
	return p.path, p.setAside, OutboxLost
}

// Enqueue routes n to the notifiers named in to whose routes take n's
// route, runs the dedup stage for each, and writes what passes to the
// outbox. An empty to means the notifiers of n's check when it names its
// own (Options.CheckNotifiers), else every notifier. A notifier whose
// grouping stage takes n holds it in a group instead (see GroupPolicy).
// Enqueue returns once the outbox and the groups are on disk; an error
// means nothing was written. Repeats dropped by dedup are not errors.
func (p *Outbox) Enqueue(n notify.Notification, to []string) error {
	return p.enqueue([]notify.Notification{n}, to)
}

// route returns the notifiers that take n: those named in to, else
// those of n's check, else every notifier, whose routes take n's route.
func (p *Outbox) route(n notify.Notification, to []string) ([]string, error) {
	candidates := to
	if len(candidates) == 0 {
		candidates = p.byCheck[n.Check]
	}
	if len(candidates) == 0 {
		candidates = p.names
	}
	var routed []string
	for _, name := range candidates {
		if _, ok := p.notifiers[name]; !ok {
			return nil, fmt.Errorf("notification %q: %w %q", n.Key, ErrUnknownNotifier, name)
		}
		if slices.Contains(p.routes[name], n.Route) && !slices.Contains(routed, name) {
			routed = append(routed, name)
		}
	}
	if len(routed) == 0 {
		p.log.Debug("no notifier takes the route", "key", n.Key, "route", n.Route)
	}
	return routed, nil
}

// held counts a notification the grouping stage of notifier name took and
// wakes its flush loop.
func (p *Outbox) held(name string, res joinResult) {
	p.metrics.result(name, resultGrouped).Inc()
	if res.folded {
		p.metrics.result(name, resultFolded).Inc()
	}
	select {
	case p.kick[name] <- struct{}{}:
	default:
	}
}

// queued counts what the dedup stage did with a notification for each of
// its notifiers and wakes the workers of those that queued it.
func (p *Outbox) queued(results []addResult) {
	for _, r := range results {
		m := p.metrics
		if !r.sent {
			m.result(r.notifier, resultDeduplicated).Inc()
			p.log.Debug("notification not sent again", "notifier", r.notifier, "reason", string(r.reason))
			continue
		}
		if r.superseded > 0 {
			m.result(r.notifier, resultSuperseded).Add(float64(r.superseded))
		}
		if r.unsent {
			p.logSuperseded(r.notifier, r.key, r.superseded, true)
			m.pending[r.notifier].Set(float64(p.box.pending(r.notifier)))
			continue
		}
		if len(r.dropped) > 0 {
			m.result(r.notifier, resultDropped).Add(float64(len(r.dropped)))
			if r.overflow {
				p.log.Error("outbox full: dropping the oldest notifications, non-critical first, until it drains",
					"notifier", r.notifier, "max_pending", p.box.max, "dropped_key", r.dropped[0].key)
			}
		}
		m.pending[r.notifier].Set(float64(p.box.pending(r.notifier)))
		select {
		case p.wake[r.notifier] <- struct{}{}:
		default:
		}
		p.kickReminders()
	}
}

// Notify makes the pipeline a notify.Notifier for producers that send one
// notification at a time: it enqueues n for every notifier whose routes
// take it. retry is true when the outbox could not record n.
func (p *Outbox) Notify(_ context.Context, n notify.Notification) (bool, error) {
	err := p.Enqueue(n, nil)
	return err != nil && !errors.Is(err, notify.ErrInvalidNotification), err
}

// Pending returns how many notifications wait for notifier.
func (p *Outbox) Pending(notifier string) int { return p.box.pending(notifier) }

// OpenIncidents returns the keys that notifier has an open trigger for,
// as far as the pipeline knows (sorted).
func (p *Outbox) OpenIncidents(notifier string) []string { return p.box.openIncidents(notifier) }

// Run delivers pending and new notifications, one worker per notifier,
// until ctx is done, then returns nil once every worker has stopped. An
// attempt under way when ctx ends may finish for StopGrace, and is cut
// after; what is not delivered stays in the outbox for the next start.
// Run may be called once.
func (p *Outbox) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("pipeline: Run called twice")
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.remindLoop(ctx) })
	for _, name := range p.names {
		wg.Go(func() { p.work(ctx, name) })
		if pol := p.groups[name]; pol.Grouping != nil || pol.Storm != nil {
			wg.Go(func() { p.flushGroups(ctx, name) })
		}
	}
	wg.Wait()
	return nil
}

// Close closes the outbox and the notifiers' idle connections. Call it
// after Run has returned; Enqueue fails afterwards.
func (p *Outbox) Close() error {
	for _, n := range p.notifiers {
		if c, ok := n.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
	return p.box.close()
}

// DeliverNow sends n at once to every notifier whose routes take it,
// without recording it, grouping it or deduplicating it, and returns the
// joined errors of the notifiers that failed. It is the last resort of a
// producer whose Enqueue failed because the outbox cannot write (a page
// about that very disk): nothing retries it, so use it for nothing else.
func (p *Outbox) DeliverNow(ctx context.Context, n notify.Notification) error {
	n, err := notify.Normalize(n, p.clock.Now())
	if err != nil {
		return err
	}
	routed, err := p.route(n, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range routed {
		actx, cancel := context.WithTimeout(ctx, p.attemptTimeout)
		_, err := p.notifiers[name].Notify(actx, n)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", name, p.redact(err.Error())))
			continue
		}
		p.metrics.result(name, resultDelivered).Inc()
	}
	return errors.Join(errs...)
}
