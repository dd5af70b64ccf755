package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Notification kinds: every kind Outpost sends, in one place.
const (
	// KindRegionStale: a region's agents went silent, or never reported
	// since the evaluator started; the region has left every quorum.
	KindRegionStale = "region_stale"
	// KindRegionLive: a stale region reports again.
	KindRegionLive = "region_live"
	// KindChecksUnknown: the one meta notification for every check that is
	// UNKNOWN, too few live regions to decide. Stale regions make many
	// checks UNKNOWN at once; one page names them all instead of one each.
	KindChecksUnknown = "checks_unknown"
	// KindMonitoring: the one meta incident about what the monitoring
	// cannot see: regions silent for meta.for and checks too few regions
	// can judge (a trigger, updated as that changes), or a resolve.
	// Evaluators before it sent KindRegionStale, KindRegionLive and
	// KindChecksUnknown, which an outbox may still hold.
	KindMonitoring = "monitoring"
	// KindStateSetAside: a notice (no action) that a damaged state file
	// was moved aside at start, and what was lost with it.
	KindStateSetAside = "state_set_aside"
	// KindPeerDown: another evaluator of the peers: list stopped answering
	// (a trigger), or answers again (a resolve).
	KindPeerDown = "peer_down"
	// KindEvaluatorFault: a part of this evaluator fails (its data dir
	// cannot be written, its outbox cannot record notifications), or
	// works again.
	KindEvaluatorFault = "evaluator_fault"
	// KindEvaluatorsUnreachable: an agent reached no evaluator for
	// reporting.lost_after and pages through its own notifiers.
	KindEvaluatorsUnreachable = "evaluators_unreachable"
	// KindGroup: the incidents of several checks folded into one
	// notification by a notifier's grouping (see Members).
	KindGroup = "group"
	// KindStorm: a burst of incidents on one route folded into one by the
	// storm guard (see Members).
	KindStorm = "storm"
	// KindCheckPrefix starts the kinds of a check's incidents: "check_"
	// and the incident kind (check_down, check_degraded, check_unknown,
	// check_disagreement, check_shape, check_forecast), and of a check's
	// certificate warnings (check_cert_expiring); see CheckKind.
	KindCheckPrefix = "check_"
)

// CheckKind is the notification kind of a check's incident of kind
// incident ("down", "degraded", ...).
func CheckKind(incident string) string { return KindCheckPrefix + incident }

// Notification severities, in PagerDuty Events v2 terms.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Notification actions. A trigger opens (or updates) the incident named by
// the notification's Key, a resolve closes it; a notification without an
// action is a one-shot notice.
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"
)

// Notification routes: which notifiers take a notification (see
// checks.Notifier.Routes).
const (
	// RouteCritical: a check is DOWN.
	RouteCritical = checks.RouteCritical
	// RouteWarning: DEGRADED, disagreements, shape findings, certificates
	// nearing expiry.
	RouteWarning = checks.RouteWarning
	// RouteMeta: the monitoring itself (stale regions, UNKNOWN checks).
	RouteMeta = checks.RouteMeta
)

// Notification is one message for humans about the monitoring or the
// monitored. It carries no secret: every field may be logged, shown on a
// status page, stored in the outbox or sent to a third party. Its JSON form
// is the body the webhook notifier sends.
type Notification struct {
	// Kind says what happened (KindRegionStale, KindRegionLive, ...).
	Kind string `json:"kind"`
	// Action is ActionTrigger, ActionResolve or "" for a one-shot notice.
	// The pipeline fills it in for KindRegionStale (trigger) and
	// KindRegionLive (resolve) when it is empty.
	Action string `json:"action,omitempty"`
	// Key is stable for one subject across events and evaluators, so that
	// a pager folds a trigger and the following resolve into one incident
	// (e.g. "outpost:region:us-east"). It is PagerDuty's dedup_key; keys
	// longer than 255 bytes are shortened deterministically there.
	Key string `json:"key"`
	// Route is RouteCritical, RouteWarning or RouteMeta. When empty the
	// pipeline derives it: region kinds are meta, SeverityCritical is
	// critical, anything else warning.
	Route string `json:"route,omitempty"`
	// Severity is SeverityCritical, SeverityError, SeverityWarning or
	// SeverityInfo. Normalize makes it SeverityOf(n), which every
	// receiver shows.
	Severity string `json:"severity"`
	// Summary is one line a human can act on.
	Summary string `json:"summary"`
	// Check is the check concerned, if any.
	Check string `json:"check,omitempty"`
	// Region is the region concerned, if any.
	Region string `json:"region,omitempty"`
	// Source names the evaluator that decided (PagerDuty's payload.source).
	Source string `json:"source,omitempty"`
	// Component, Group and Class are PagerDuty's payload fields of the same
	// names: the part of the system affected (default: Check), a grouping
	// such as a team or service, and the class of problem (default: Kind).
	Component string `json:"component,omitempty"`
	Group     string `json:"group,omitempty"`
	Class     string `json:"class,omitempty"`
	// Link is the status page URL for the subject (the check's own
	// answer, external_url + "/status?check=ID"); empty when the
	// configuration has no external_url.
	Link string `json:"link,omitempty"`
	// Runbook is the check's runbook URL (its runbook: key), if any.
	Runbook string `json:"runbook,omitempty"`
	// Target is what the check probes ("GET https://www.example.com/"),
	// redacted; see checks.Check.Target.
	Target string `json:"target,omitempty"`
	// Time is when the evaluator decided, on its clock.
	Time time.Time `json:"time"`
	// Details are extra facts, shown as key/value pairs.
	Details map[string]string `json:"details,omitempty"`
	// Evidence is what each region saw, in region order.
	Evidence []RegionEvidence `json:"evidence,omitempty"`
	// Members are the check incidents a group or storm notification
	// stands for (KindGroup, KindStorm), firing ones first.
	Members []Member `json:"members,omitempty"`
	// Adopted marks the resolve of an incident another evaluator
	// triggered before the bus's shard map handed its check to this one:
	// the pipeline sends it although it never sent the trigger.
	Adopted bool `json:"adopted,omitempty"`
}

// Member is one check incident of a group or storm notification, with the
// evidence its own page would have carried.
type Member struct {
	// Key is the incident's own key (its dedup key when paged alone).
	Key   string `json:"key"`
	Check string `json:"check"`
	// Kind is the incident's notification kind (CheckKind).
	Kind string `json:"kind"`
	// State is "firing" or "resolved".
	State    string           `json:"state"`
	Summary  string           `json:"summary"`
	Evidence []RegionEvidence `json:"evidence,omitempty"`
}

// Member states.
const (
	MemberFiring   = "firing"
	MemberResolved = "resolved"
)

// Region states in evidence (RegionEvidence.State).
const (
	// StateFailing: the region crosses the check's failure rule, or has
	// not yet passed as often in a row as its recovery rule needs.
	StateFailing = "FAILING"
	// StateOK: the region does not cross the failure rule.
	StateOK = "OK"
	// StateStale: the region's agents are silent; it is out of the quorum.
	StateStale = "STALE"
	// StateNoFreshResult: the region's agents report, but it has no
	// result for the check within the check's max_result_age; it is out
	// of the quorum.
	StateNoFreshResult = "NO FRESH RESULT"
)

// Outcomes of a region's latest probe (RegionEvidence.Latest).
const (
	LatestPass = "pass"
	LatestFail = "fail"
)

// RegionEvidence is what one region saw of a check: the facts an on-call
// engineer needs in the page itself. EvidenceFromResult builds it from a
// probe result.
//
// State and Reason always agree: Reason says why the region is in State.
// The latest probe may say otherwise (a FAILING region recovering with one
// pass of the two its recovery rule needs, an OK region with one failure
// of the two its failure rule needs); Latest and LatestReason say what it
// said, and Reason says so too.
type RegionEvidence struct {
	Region string `json:"region"`
	// State is the region's verdict: StateFailing, StateOK, StateStale
	// or StateNoFreshResult.
	State string `json:"state"`
	// Reason says why the region is in State, e.g. "2 consecutive
	// failures: status 503, want 200" or "recovering: 1 of 2 passes in a
	// row; last failure: status 503, want 200; latest ok: status 200".
	Reason string `json:"reason,omitempty"`
	// Latest is the outcome of the region's latest probe (LatestPass or
	// LatestFail) and LatestReason the probe's own reason; empty when
	// the region has no result.
	Latest       string `json:"latest,omitempty"`
	LatestReason string `json:"latest_reason,omitempty"`
	// ProbedAt is when the latest probe started, on the agent's clock,
	// and AgeSeconds how old it was when the evaluator decided.
	ProbedAt   time.Time `json:"probed_at,omitzero"`
	AgeSeconds *float64  `json:"age_seconds,omitempty"`
	// Agent is the agent that ran the latest probe.
	Agent         string   `json:"agent,omitempty"`
	ResolvedIPs   []string `json:"resolved_ips,omitempty"`
	ConnectedAddr string   `json:"connected_addr,omitempty"`
	StatusCode    int      `json:"status_code,omitempty"`
	// DNSAnswers are the answers seen, by resolver.
	DNSAnswers map[string][]string `json:"dns_answers,omitempty"`
	// Phases are timings in seconds by phase (wire.PhaseNames) and of
	// the whole probe (PhaseTotal).
	Phases map[string]float64 `json:"phases_seconds,omitempty"`
}

// Notifier delivers notifications to one destination, Alertmanager-style.
// Notify makes one attempt, bounded by its own deadline as well as ctx's,
// and may be called from several goroutines at once. A nil error means the
// destination accepted the notification. Otherwise retry says whether
// another attempt may succeed (rate limits, 5xx, timeouts, transport
// errors) or not (the destination refused the notification itself). The
// error never contains a secret of the notifier.
type Notifier interface {
	Notify(ctx context.Context, n Notification) (retry bool, err error)
}

// DeliveryError is a delivery attempt the destination answered with an
// unsuccessful HTTP status.
type DeliveryError struct {
	// Notifier is the kind of destination: "pagerduty", "slack", "webhook".
	Notifier string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is the wait the destination asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Message is what the destination said, redacted and shortened.
	Message string
}

func (e *DeliveryError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: status %d", e.Notifier, e.StatusCode)
	}
	return fmt.Sprintf("%s: status %d: %s", e.Notifier, e.StatusCode, e.Message)
}

// ErrInvalidNotification is wrapped by the errors Enqueue returns for a
// notification it cannot deliver anywhere (no key, unknown action, ...).
var ErrInvalidNotification = errors.New("invalid notification")

// EvidenceLine renders one region's evidence on one line, for logs and
// chat: "FAILING: 2 consecutive failures: status 503, want 200 (status
// 503, connected 203.0.113.10:443, 120ms, probed 12s ago)".
func EvidenceLine(ev RegionEvidence) string {
	line := ev.State
	if ev.Reason != "" {
		line += ": " + ev.Reason
	}
	var facts []string
	if ev.StatusCode != 0 {
		facts = append(facts, fmt.Sprintf("status %d", ev.StatusCode))
	}
	if ev.ConnectedAddr != "" {
		facts = append(facts, "connected "+ev.ConnectedAddr)
	} else if len(ev.ResolvedIPs) > 0 {
		facts = append(facts, "resolved "+joinMax(ev.ResolvedIPs, 4))
	}
	if total, ok := ev.Phases[PhaseTotal]; ok {
		facts = append(facts, fmt.Sprintf("%.0fms", total*1000))
	}
	if ev.AgeSeconds != nil {
		facts = append(facts, "probed "+Age(*ev.AgeSeconds)+" ago")
	}
	if len(facts) > 0 {
		line += " (" + joinMax(facts, len(facts)) + ")"
	}
	keys := slices.Sorted(maps.Keys(ev.DNSAnswers))
	for i, k := range keys {
		if i == 4 {
			line += fmt.Sprintf("; +%d more resolvers", len(keys)-i)
			break
		}
		line += "; " + k + "=[" + joinMax(ev.DNSAnswers[k], 8) + "]"
	}
	return line
}

// Age renders an age in seconds as a short duration: "850ms", "12s",
// "4m10s", "2h5m0s".
func Age(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func joinMax(items []string, most int) string {
	out := ""
	for i, s := range items {
		if i == most {
			return out + fmt.Sprintf(", +%d more", len(items)-most)
		}
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

// Bounds on what a notification carries, so that an outbox entry, a page
// and a chat message stay small whatever the probes observed.
const (
	maxNoticeSummaryBytes = 4096
	// MaxFieldBytes bounds each short field (kind, check, region, ...),
	// detail and piece of evidence.
	MaxFieldBytes = 1024
	maxEvidence   = 64
	maxListItems  = 32
	maxMapKeys    = 16
	maxDetails    = 64
	// MaxMembers bounds the members a group notification carries; the
	// summary and details still count every one.
	MaxMembers = 5000
)

// bounded returns a copy of n whose strings, lists and maps respect the
// bounds above. It never shares maps or slices with n.
func bounded(n Notification) Notification {
	n.Summary = wire.Clip(n.Summary, maxNoticeSummaryBytes)
	for _, f := range []*string{&n.Kind, &n.Check, &n.Region, &n.Source, &n.Component, &n.Group, &n.Class, &n.Link, &n.Runbook, &n.Target} {
		*f = wire.Clip(*f, MaxFieldBytes)
	}
	if n.Details != nil {
		d := make(map[string]string, min(len(n.Details), maxDetails))
		for _, k := range slices.Sorted(maps.Keys(n.Details)) {
			if len(d) == maxDetails {
				break
			}
			d[wire.Clip(k, MaxFieldBytes)] = wire.Clip(n.Details[k], MaxFieldBytes)
		}
		n.Details = d
	}
	if n.Evidence != nil {
		ev := make([]RegionEvidence, 0, min(len(n.Evidence), maxEvidence))
		for _, e := range n.Evidence[:min(len(n.Evidence), maxEvidence)] {
			ev = append(ev, boundedEvidence(e))
		}
		n.Evidence = ev
	}
	if n.Members != nil {
		ms := make([]Member, 0, min(len(n.Members), MaxMembers))
		for _, m := range n.Members[:min(len(n.Members), MaxMembers)] {
			m.Key = wire.Clip(m.Key, MaxFieldBytes)
			m.Check = wire.Clip(m.Check, MaxFieldBytes)
			m.Kind = wire.Clip(m.Kind, MaxFieldBytes)
			m.State = wire.Clip(m.State, MaxFieldBytes)
			m.Summary = wire.Clip(m.Summary, maxNoticeSummaryBytes)
			ev := make([]RegionEvidence, 0, min(len(m.Evidence), maxEvidence))
			for _, e := range m.Evidence[:min(len(m.Evidence), maxEvidence)] {
				ev = append(ev, boundedEvidence(e))
			}
			m.Evidence = ev
			ms = append(ms, m)
		}
		n.Members = ms
	}
	return n
}

func boundedEvidence(e RegionEvidence) RegionEvidence {
	e.Region = wire.Clip(e.Region, MaxFieldBytes)
	e.State = wire.Clip(e.State, MaxFieldBytes)
	e.Reason = wire.Clip(e.Reason, MaxFieldBytes)
	e.Latest = wire.Clip(e.Latest, MaxFieldBytes)
	e.LatestReason = wire.Clip(e.LatestReason, MaxFieldBytes)
	e.Agent = wire.Clip(e.Agent, MaxFieldBytes)
	if e.AgeSeconds != nil {
		age := *e.AgeSeconds
		e.AgeSeconds = &age
	}
	e.ConnectedAddr = wire.Clip(e.ConnectedAddr, MaxFieldBytes)
	e.ResolvedIPs = boundedList(e.ResolvedIPs)
	if e.DNSAnswers != nil {
		a := make(map[string][]string, min(len(e.DNSAnswers), maxMapKeys))
		for _, k := range slices.Sorted(maps.Keys(e.DNSAnswers)) {
			if len(a) == maxMapKeys {
				break
			}
			a[wire.Clip(k, MaxFieldBytes)] = boundedList(e.DNSAnswers[k])
		}
		e.DNSAnswers = a
	}
	if e.Phases != nil {
		p := make(map[string]float64, min(len(e.Phases), maxMapKeys))
		for _, k := range slices.Sorted(maps.Keys(e.Phases)) {
			if len(p) == maxMapKeys {
				break
			}
			p[wire.Clip(k, MaxFieldBytes)] = e.Phases[k]
		}
		e.Phases = p
	}
	return e
}

func boundedList(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, min(len(l), maxListItems))
	for _, s := range l[:min(len(l), maxListItems)] {
		out = append(out, wire.Clip(s, 256))
	}
	return out
}

// Normalize fills what the pipeline can derive (Action, Route and Check
// from Details["action"], ["route"] and ["check"] when unset; Action and
// Route of the region kinds; Route from Severity; Time) and checks what it
// cannot.
func Normalize(n Notification, now time.Time) (Notification, error) {
	if n.Key == "" {
		return n, fmt.Errorf("%w: no key (kind %q)", ErrInvalidNotification, n.Kind)
	}
	// Producers written before Action, Route and Check existed put them in
	// Details; take them from there.
	for _, f := range []struct {
		field *string
		key   string
	}{{&n.Action, "action"}, {&n.Route, "route"}, {&n.Check, "check"}} {
		if *f.field == "" {
			*f.field = n.Details[f.key]
		}
	}
	if n.Action == "" {
		switch n.Kind {
		case KindRegionStale:
			n.Action = ActionTrigger
		case KindRegionLive:
			n.Action = ActionResolve
		}
	}
	switch n.Action {
	case "", ActionTrigger, ActionResolve:
	default:
		return n, fmt.Errorf("%w: key %q: action %q: use trigger, resolve or none", ErrInvalidNotification, n.Key, n.Action)
	}
	if n.Action != ActionResolve && n.Summary == "" {
		return n, fmt.Errorf("%w: key %q: no summary", ErrInvalidNotification, n.Key)
	}
	if n.Route == "" {
		n.Route = routeOf(n)
	} else if !slices.Contains(checks.Routes, n.Route) {
		return n, fmt.Errorf("%w: key %q: route %q: use critical, warning or meta", ErrInvalidNotification, n.Key, n.Route)
	}
	n.Severity = SeverityOf(n)
	if n.Time.IsZero() {
		n.Time = now
	}
	return bounded(n), nil
}

// SeverityOf is n's one severity, the same on every channel (console,
// Slack, webhook, PagerDuty): info for a resolve and for a notice marked
// info; otherwise by route, critical for RouteCritical, warning for
// RouteWarning and error for RouteMeta (the monitoring's own trouble); a
// notification without a route keeps its severity when it is a valid one,
// else error. Normalize sets Severity to it; receivers use it for
// notifications that did not pass through Normalize.
func SeverityOf(n Notification) string {
	if n.Action == ActionResolve || n.Severity == SeverityInfo {
		return SeverityInfo
	}
	switch n.Route {
	case RouteCritical:
		return SeverityCritical
	case RouteWarning:
		return SeverityWarning
	case RouteMeta:
		return SeverityError
	}
	switch n.Severity {
	case SeverityCritical, SeverityError, SeverityWarning:
		return n.Severity
	}
	return SeverityError
}

func routeOf(n Notification) string {
	switch {
	case n.Kind == KindRegionStale || n.Kind == KindRegionLive:
		return RouteMeta
	case n.Severity == SeverityCritical:
		return RouteCritical
	}
	return RouteWarning
}
