package alerting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// unknownChecks tracks which checks have an open UNKNOWN incident, for the
// meta page (flushMeta) sent at the end of each tick.
type unknownChecks struct {
	mu   sync.Mutex
	open map[string]string // check -> its summary
}

func (u *unknownChecks) set(check, summary string, open bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.open == nil {
		u.open = map[string]string{}
	}
	if open {
		u.open[check] = summary
	} else {
		delete(u.open, check)
	}
}

// emit turns an incident event into a notification for the notifiers of
// its route and queues it on cd. UNKNOWN incidents are aggregated by
// flushMeta instead. cd's mutex is held.
func (e *Evaluator) emit(cd *checkDecider, ev decide.Event, in map[string]decide.RegionInput) {
	c := cd.c
	if ev.Kind == decide.IncidentUnknown {
		e.unknown.set(c.ID, ev.Summary, ev.Action == decide.EventTrigger)
		return
	}
	e.noteIncident(cd.id, ev, in)
	n := notify.Notification{
		Kind:    notify.CheckKind(string(ev.Kind)),
		Key:     ev.DedupKey,
		Action:  string(ev.Action),
		Route:   ev.Route,
		Check:   ev.Check,
		Summary: ev.Summary,
		Time:    ev.Time,
		Group:   cd.page.group,
		Link:    cd.page.link,
		Runbook: cd.page.runbook,
		Target:  cd.page.target,
		Details: map[string]string{
			"action": string(ev.Action),
			"route":  ev.Route,
			"check":  ev.Check,
			"state":  string(ev.Decision.State),
		},
	}
	n.Severity = notify.SeverityOf(n)
	n.Adopted = ev.Action == decide.EventResolve && e.shared.adoptedResolve(ev.DedupKey)
	if ev.Flapping {
		n.Details["flapping"] = "true"
	}
	if ev.Action == decide.EventResolve && !ev.OpenedAt.IsZero() {
		// What recovered and for how long it was down: the summary says
		// it in words, these in values.
		n.Details["opened_at"] = ev.OpenedAt.UTC().Format(time.RFC3339)
		n.Details["down_for"] = ev.Time.Sub(ev.OpenedAt).Round(time.Second).String()
	}
	for _, region := range slices.Sorted(maps.Keys(in)) {
		var latest *wire.Result
		if in[region].Last == nil {
			if w, ok := e.Window(c.ID, region); ok {
				latest = w.Last
			}
		}
		rev := regionEvidence(c, region, in[region], latest, ev.Time, cd.page.redact)
		n.Details["region."+region] = notify.EvidenceLine(rev)
		n.Evidence = append(n.Evidence, rev)
	}
	if ev.Finding != nil {
		n.Details["disagreement"] = ev.Finding.Summary
	}
	if ev.Shape != nil {
		decide.ShapeDetails(ev.Shape, n.Details)
	}
	cd.queue(n)
}

// pageFacts are what every page of a check carries besides its evidence,
// worked out once per check.
type pageFacts struct {
	// link is the check on the status page, runbook its runbook, target
	// what it probes, all redacted; group is from its labels.
	link, runbook, target, group string
	// redact removes the configuration's secrets.
	redact func(string) string
}

// groupLabels are the labels that give a page its group (PagerDuty's
// payload.group), in order of preference.
var groupLabels = []string{"group", "service", "team"}

// pageFactsOf returns c's page facts under cfg, with redact as the
// configuration's redactor. A value from ${ENV} counts as a secret
// everywhere, in a link too: it reaches a page as <redacted>.
func pageFactsOf(cfg *checks.Config, c *checks.Check, redact func(string) string) pageFacts {
	f := pageFacts{runbook: redact(c.Runbook), target: redact(c.Target()), redact: redact}
	if cfg.ExternalURL != "" {
		f.link = redact(statusLink(cfg.ExternalURL, c.ID))
	}
	for _, l := range groupLabels {
		if v := c.Labels[l]; v != "" {
			f.group = redact(v)
			break
		}
	}
	return f
}

// statusLink is the status page's answer for check id under the
// configuration's external_url base (for every notification when id is
// empty).
func statusLink(base, id string) string {
	link := strings.TrimSuffix(base, "/") + "/status"
	if id != "" {
		link += "?check=" + url.QueryEscape(id)
	}
	return link
}

// stamp puts on n what this evaluator says of every notification it
// sends: its name as the source, and a status page link when the
// configuration has an external_url and n has none.
func (e *Evaluator) stamp(n *notify.Notification) {
	if n.Source == "" {
		n.Source = e.source
	}
	if p := e.plan.Load(); n.Link == "" && p.cfg.ExternalURL != "" {
		n.Link = p.redact(statusLink(p.cfg.ExternalURL, n.Check))
	}
}

// hand stamps n and hands it to the notifier within notify.DefaultTimeout,
// noting whether the notifier could record it (noteNotifyResult).
func (e *Evaluator) hand(ctx context.Context, n *notify.Notification) (retry bool, err error) {
	nctx, cancel := context.WithTimeout(ctx, notify.DefaultTimeout)
	defer cancel()
	e.stamp(n)
	retry, err = e.notifier.Notify(nctx, *n)
	e.noteNotifyResult(retry, err)
	return retry, err
}

// send hands a notification to the notifier. A failure is logged at most
// once per rejectLogEvery per kind, with the count held back: a notifier
// that fails (a full disk under the outbox) must not turn a storm of
// decisions into a storm of log lines.
func (e *Evaluator) send(ctx context.Context, n notify.Notification) {
	if _, err := e.hand(ctx, &n); err != nil {
		if ok, suppressed := e.limiter.Allow("notify/"+n.Kind, e.clock.Now()); ok {
			e.log.Error("notification not delivered", "kind", n.Kind, "key", n.Key, "err", err, "suppressed", suppressed)
		}
	}
}

// batchNotifier is a notifier that takes several notifications in one
// hand-over (the outbox: one write to disk for all).
type batchNotifier interface {
	EnqueueAll(ns []notify.Notification) error
}

// sendAll hands ns to the notifier, in order: in one hand-over when it
// takes batches, one by one otherwise.
func (e *Evaluator) sendAll(ctx context.Context, ns []notify.Notification) {
	if len(ns) == 0 {
		return
	}
	b, ok := e.notifier.(batchNotifier)
	if !ok || len(ns) == 1 {
		for _, n := range ns {
			e.send(ctx, n)
		}
		return
	}
	for i := range ns {
		e.stamp(&ns[i])
	}
	err := b.EnqueueAll(ns)
	e.noteNotifyResult(err != nil && !errors.Is(err, notify.ErrInvalidNotification), err)
	if err != nil {
		if ok, suppressed := e.limiter.Allow("notify/batch", e.clock.Now()); ok {
			e.log.Error("notifications not delivered", "count", len(ns), "err", err, "suppressed", suppressed)
		}
	}
}

// regionEvidence is what one region saw of check c, as of now: its
// state and a reason that agrees with it, and the facts of its latest
// result. in is the region's decision input; latest is its latest result
// when in has none that is fresh (nil if there is none at all), shown for
// its facts and age but never as the region's verdict. redact removes the
// configuration's secrets from what the agents reported.
func regionEvidence(c *checks.Check, region string, in decide.RegionInput, latest *wire.Result, now time.Time, redact func(string) string) notify.RegionEvidence {
	r := in.Last
	if r == nil {
		r = latest
	}
	var ev notify.RegionEvidence
	var age time.Duration
	if r != nil {
		ev = notify.EvidenceFromResult("", *r)
		ev.Latest, ev.LatestReason = notify.LatestFail, r.Reason
		if r.OK {
			ev.Latest = notify.LatestPass
		}
		age = max(now.Sub(r.Time), 0)
		seconds := age.Seconds()
		ev.ProbedAt, ev.AgeSeconds, ev.Agent = r.Time.UTC(), &seconds, r.Agent
	}
	ev.Region = region
	switch {
	case !in.Live:
		ev.State, ev.Reason = notify.StateStale, "its agents are silent; the region is out of the quorum"
	case in.Last == nil && r == nil:
		ev.State, ev.Reason = notify.StateNoFreshResult, "no result for the check yet; the region is out of the quorum"
	case in.Last == nil:
		ev.State = notify.StateNoFreshResult
		ev.Reason = fmt.Sprintf("latest result is %s old, past max_result_age %s; the region is out of the quorum", age.Round(time.Second), c.MaxResultAge)
	case in.Failing:
		// The rule's verdict and its last failure; a pass since does not
		// end it until the recovery rule is met, and the page says so.
		ev.State, ev.Reason = notify.StateFailing, in.Why
		if r.OK {
			ev.Reason = joinReason(in.Why, "latest ok", r.Reason)
		}
	case !r.OK:
		ev.State = notify.StateOK
		ev.Reason = joinReason("not failing by the check's rule yet", "latest failed", r.Reason)
	default:
		ev.State, ev.Reason = notify.StateOK, r.Reason
	}
	// Agents redact their own reasons; this evaluator's configuration may
	// know secrets theirs did not.
	for _, f := range []*string{&ev.Reason, &ev.LatestReason} {
		*f = redact(*f)
	}
	return ev
}

// joinReason is "head; what: reason", or "head; what" without a reason.
func joinReason(head, what, reason string) string {
	s := what
	if reason != "" {
		s += ": " + reason
	}
	if head == "" {
		return s
	}
	return head + "; " + s
}
