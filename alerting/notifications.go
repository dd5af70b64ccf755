package alerting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

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
	n := notify.Notification{
		Kind:     notify.CheckKind(string(ev.Kind)),
		Key:      ev.DedupKey,
		Action:   string(ev.Action),
		Route:    ev.Route,
		Check:    ev.Check,
		Severity: routeSeverity(ev.Route),
		Summary:  ev.Summary,
		Time:     ev.Time,
		Details: map[string]string{
			"action": string(ev.Action),
			"route":  ev.Route,
			"check":  ev.Check,
			"state":  string(ev.Decision.State),
		},
	}
	if ev.Flapping {
		n.Details["flapping"] = "true"
	}
	for _, region := range slices.Sorted(maps.Keys(in)) {
		n.Details["region."+region] = regionEvidence(in[region])
		n.Evidence = append(n.Evidence, structuredEvidence(region, in[region]))
	}
	if ev.Finding != nil {
		n.Details["disagreement"] = ev.Finding.Summary
	}
	if ev.Shape != nil {
		decide.ShapeDetails(ev.Shape, n.Details)
	}
	cd.queue(n)
}

// send hands a notification to the notifier. A failure is logged at most
// once per rejectLogEvery per kind, with the count held back: a notifier
// that fails (a full disk under the outbox) must not turn a storm of
// decisions into a storm of log lines.
func (e *Evaluator) send(ctx context.Context, n notify.Notification) {
	nctx, cancel := context.WithTimeout(ctx, notify.DefaultTimeout)
	defer cancel()
	retry, err := e.notifier.Notify(nctx, n)
	e.noteNotifyResult(retry, err)
	if err != nil {
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
	err := b.EnqueueAll(ns)
	e.noteNotifyResult(err != nil && !errors.Is(err, notify.ErrInvalidNotification), err)
	if err != nil {
		if ok, suppressed := e.limiter.Allow("notify/batch", e.clock.Now()); ok {
			e.log.Error("notifications not delivered", "count", len(ns), "err", err, "suppressed", suppressed)
		}
	}
}

func routeSeverity(route string) string {
	switch route {
	case checks.RouteCritical, checks.RouteMeta:
		return notify.SeverityCritical
	case checks.RouteWarning:
		return notify.SeverityWarning
	}
	return notify.SeverityInfo
}

// structuredEvidence is one region's evidence for notifiers that carry it
// as data (PagerDuty's custom_details, webhooks).
func structuredEvidence(region string, in decide.RegionInput) notify.RegionEvidence {
	state := "OK"
	switch {
	case !in.Live:
		state = "STALE"
	case in.Last == nil:
		return notify.RegionEvidence{Region: region, State: "NO DATA"}
	case in.Failing:
		state = "FAILING"
	}
	if in.Last == nil {
		return notify.RegionEvidence{Region: region, State: state}
	}
	ev := notify.EvidenceFromResult(state, *in.Last)
	ev.Region = region
	return ev
}

// regionEvidence is one region's line of a page: what it saw last.
func regionEvidence(in decide.RegionInput) string {
	if !in.Live {
		return "STALE"
	}
	if in.Last == nil {
		return "no fresh result"
	}
	r := in.Last
	state := "ok"
	if in.Failing {
		state = "FAILING"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", state, r.Reason)
	if len(r.Observed.ResolvedIPs) > 0 {
		fmt.Fprintf(&b, "; resolved %s", strings.Join(r.Observed.ResolvedIPs, " "))
	}
	if r.Observed.ConnectedAddr != "" {
		fmt.Fprintf(&b, "; connected %s", r.Observed.ConnectedAddr)
	}
	for _, o := range r.Observed.DNS {
		fmt.Fprintf(&b, "; %s=[%s]", dnsServerName(o), strings.Join(o.Answers, " "))
	}
	return b.String()
}

func dnsServerName(o wire.DNSObservation) string {
	if o.NS != "" {
		return o.NS
	}
	return o.Resolver
}
