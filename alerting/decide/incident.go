package decide

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// IncidentKind is what an incident of a check is about. Each kind of a
// check is its own incident, with its own dedup key and route.
type IncidentKind string

// Incident kinds.
const (
	// IncidentDown: the check is DOWN (quorum failing) and has been for
	// the check's for:. Route critical.
	IncidentDown IncidentKind = "down"
	// IncidentDegraded: some live regions fail, fewer than the quorum.
	// Route warning.
	IncidentDegraded IncidentKind = "degraded"
	// IncidentUnknown: too few live regions to judge the check. Route meta.
	IncidentUnknown IncidentKind = "unknown"
	// IncidentDisagreement: regions see different DNS answers or reach
	// different addresses (a Finding). Route critical or warning, as the
	// check's on_disagreement says.
	IncidentDisagreement IncidentKind = "disagreement"
	// IncidentShape: a shape detector found something (a tail shift, a
	// slow rise, a spike or a drop) in some live region. Route warning,
	// or critical with shape.page.
	IncidentShape IncidentKind = "shape"
	// IncidentForecast: a recurring spike is due soon. Route warning.
	IncidentForecast IncidentKind = "forecast"
)

// incidentKinds lists the kinds in the order Step handles them and emits
// their events.
var incidentKinds = [...]IncidentKind{IncidentDown, IncidentDegraded, IncidentUnknown, IncidentDisagreement, IncidentShape, IncidentForecast}

// IncidentKinds returns every incident kind, in the order Step handles them.
func IncidentKinds() []IncidentKind { return slices.Clone(incidentKinds[:]) }

// EventAction is what an Event asks a notifier to do, in PagerDuty Events
// v2 terms.
type EventAction string

// Event actions.
const (
	EventTrigger EventAction = "trigger"
	EventResolve EventAction = "resolve"
)

// maxFlapHistory bounds Incident.Transitions whatever a hand-built
// FlapRule says; the loader allows at most 100 transitions.
const maxFlapHistory = 100

// DedupKey returns the key every event of one incident kind of one check
// carries: "outpost-" and the first 16 hex digits of
// SHA-256(check + "/" + kind). It depends on nothing else, so every
// evaluator replica, before and after a restart or an upgrade, sends the
// same key and PagerDuty folds their events into one incident.
func DedupKey(check string, kind IncidentKind) string {
	sum := sha256.Sum256([]byte(check + "/" + string(kind)))
	return "outpost-" + hex.EncodeToString(sum[:])[:16]
}

// Event is a notification Step decided to send. Two evaluators that step
// the same state with the same inputs produce equal events: there is no
// randomness and no process-local identifier in one.
type Event struct {
	Check  string       `json:"check"`
	Kind   IncidentKind `json:"kind"`
	Action EventAction  `json:"action"`
	// Route is checks.RouteCritical, RouteWarning or RouteMeta. A resolve
	// goes to the route its trigger went to.
	Route    string `json:"route"`
	DedupKey string `json:"dedup_key"`
	// Summary is one line of at most 1024 bytes.
	Summary string `json:"summary"`
	// Time is the now of the Step that decided the event.
	Time time.Time `json:"time"`
	// OpenedAt is when the incident opened (which may be before it was
	// paged, when it opened during maintenance).
	OpenedAt time.Time `json:"opened_at"`
	// Flapping is whether the incident is held open by flap damping.
	Flapping bool `json:"flapping,omitempty"`
	// Decision is the verdict the event was decided on.
	Decision Decision `json:"decision"`
	// Finding is the disagreement, for IncidentDisagreement triggers.
	Finding *Finding `json:"finding,omitempty"`
	// Shape is the shape report, for IncidentShape and IncidentForecast
	// triggers.
	Shape *ShapeReport `json:"shape,omitempty"`
}

// Incident is one kind of incident of a check. Open is the incident as
// the rules see it; Paged is what notifiers were last told. The two differ
// while maintenance suppresses a trigger.
type Incident struct {
	Open bool `json:"open"`
	// OpenedAt is when the incident last opened.
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// Paged is whether a trigger was sent and no resolve since.
	Paged   bool      `json:"paged"`
	PagedAt time.Time `json:"paged_at,omitzero"`
	// Route is where the trigger went, for the resolve to follow.
	Route string `json:"route,omitempty"`
	// Flapping: the incident opened and resolved more than
	// flap.transitions times within flap.window, and is held open until
	// its condition has been clear (for down: the check OK) for a full
	// flap.window.
	Flapping bool `json:"flapping,omitempty"`
	// ClearSince is, while flapping, when the condition last became clear.
	ClearSince time.Time `json:"clear_since,omitzero"`
	// Transitions are the times of the latest opens and resolves within
	// flap.window, oldest first; at most flap.transitions of them.
	Transitions []time.Time `json:"transitions,omitempty"`
	// Topic is what the latest trigger was about, for kinds whose subject
	// can change while open (shape: its detectors and scope). A new topic
	// sends the trigger again, under the same dedup key, as an update.
	Topic string `json:"topic,omitempty"`
}

// IncidentState is everything Step remembers about one check. Its zero
// value is a check never evaluated. It marshals to JSON and back without
// loss of meaning, to be persisted between evaluations and restarts.
type IncidentState struct {
	Check string `json:"check"`
	// State is the latest Decision's state and Since when it was entered.
	State CheckState `json:"state,omitempty"`
	Since time.Time  `json:"since,omitzero"`
	// DownSince is when the current run of DOWN decisions began; zero when
	// the latest decision was not DOWN. The down incident opens once it is
	// c.For old.
	DownSince    time.Time `json:"down_since,omitzero"`
	Down         Incident  `json:"down"`
	Degraded     Incident  `json:"degraded"`
	Unknown      Incident  `json:"unknown"`
	Disagreement Incident  `json:"disagreement"`
	Shape        Incident  `json:"shape,omitzero"`
	Forecast     Incident  `json:"forecast,omitzero"`
	// ShapeSince is when the current run of decisions with shape findings
	// began; the shape incident opens once it has settled (see Step).
	ShapeSince time.Time `json:"shape_since,omitzero"`
}

// AnyOpen reports whether some incident is open.
func (s IncidentState) AnyOpen() bool {
	for _, k := range incidentKinds {
		if s.incident(k).Open {
			return true
		}
	}
	return false
}

// OpenBefore reports whether some incident opened before t is open: after
// a restart at t, one restored from disk.
func (s IncidentState) OpenBefore(t time.Time) bool {
	for _, k := range incidentKinds {
		if in := s.incident(k); in.Open && in.OpenedAt.Before(t) {
			return true
		}
	}
	return false
}

// Incident returns the incident of kind k; ok is false for an unknown kind.
func (s IncidentState) Incident(k IncidentKind) (in Incident, ok bool) {
	p := s.incident(k)
	if p == nil {
		return Incident{}, false
	}
	return *p, true
}

func (s *IncidentState) incident(k IncidentKind) *Incident {
	switch k {
	case IncidentDown:
		return &s.Down
	case IncidentDegraded:
		return &s.Degraded
	case IncidentUnknown:
		return &s.Unknown
	case IncidentDisagreement:
		return &s.Disagreement
	case IncidentShape:
		return &s.Shape
	case IncidentForecast:
		return &s.Forecast
	}
	return nil
}

// want is what the rules say an incident should do at one step.
type want int

const (
	wantKeep  want = iota // neither: stay as it is
	wantOpen              // the condition holds
	wantClear             // the condition is over
)

// Step advances a check's incidents by one evaluation: the state s, the
// check's Decision d (from Decide) at now, the check c and every
// configured maintenance window. It returns the next state and the events
// to send, in the order down, degraded, unknown, disagreement, shape,
// forecast. It is a pure function of its arguments and does not modify s.
//
// Rules, per incident kind:
//   - down opens when d has been DOWN continuously for c.For (at once when
//     For is 0) and resolves when d is OK. DEGRADED and UNKNOWN keep it as
//     it is: fewer failing regions is not recovery, and silence is not
//     health.
//   - degraded opens when d is DEGRADED and no down incident is open; it
//     resolves when d is OK or a down incident opens (the page supersedes
//     the warning).
//   - unknown opens when d is UNKNOWN and resolves when it is not.
//   - disagreement opens while d.Disagreement is set and resolves when it
//     is not; an UNKNOWN decision keeps it as it is.
//   - shape opens once d.Shape has been set for one bucket of the shape
//     window (so that every region has had its say on the scope) and no
//     down incident is open; it resolves when d.Shape is not set and
//     every live region has judged its shape (UNKNOWN, or a region with
//     no verdict yet, keeps it) or a down incident opens (the page supersedes the
//     warning). While open, a change of detectors or scope sends the
//     trigger again under the same dedup key, as an update.
//   - forecast opens while d.Forecast is set and resolves when it is not
//     and every live region has judged its shape.
//
// Flap damping (c.Flap): an open or a resolve that would make more than
// Flap.Transitions of them within Flap.Window marks the incident flapping;
// a flapping incident stays open, sends nothing more, and resolves once
// its condition has been clear (for down: OK) for a full Flap.Window.
//
// Maintenance: a trigger is suppressed while maintenance covers the check
// in every region the incident is about (down and degraded: the failing
// regions; unknown: the stale and silent ones; disagreement: the odd ones;
// shape and forecast: those with findings; every region of the check
// when there are none). The incident is still tracked: when the maintenance ends and its condition still holds, the
// trigger goes out then; if the condition no longer holds, the incident
// closes without a word. Resolves are never suppressed, and only sent for
// incidents whose trigger was sent.
func Step(s IncidentState, d Decision, c *checks.Check, maint []*checks.Maintenance, now time.Time) (IncidentState, []Event) {
	s = s.clone()
	s.Check = c.ID
	if s.State != d.State || s.Since.IsZero() {
		s.State, s.Since = d.State, now
	}
	if d.State != StateDown {
		s.DownSince = time.Time{}
	} else if s.DownSince.IsZero() {
		s.DownSince = now
	}
	if d.Shape == nil {
		s.ShapeSince = time.Time{}
	} else if s.ShapeSince.IsZero() {
		s.ShapeSince = now
	}

	var events []Event
	for _, k := range incidentKinds {
		in := s.incident(k)
		w, holds := s.rule(k, d, c, now)
		in.advance(w, c.Flap, now)
		route, regions, topic := checks.RouteCritical, d.Failing, ""
		switch k {
		case IncidentDegraded:
			route = checks.RouteWarning
		case IncidentUnknown:
			route, regions = checks.RouteMeta, append(slices.Clone(d.Stale), d.NoData...)
		case IncidentDisagreement:
			regions = nil
			if d.Disagreement != nil {
				route, regions = d.Disagreement.Route, d.Disagreement.Regions
			}
		case IncidentShape:
			route, regions = checks.RouteWarning, nil
			if c.Shape != nil && c.Shape.Page {
				route = checks.RouteCritical
			}
			if d.Shape != nil {
				regions = d.Shape.Regions
				topic = strings.Join(d.Shape.Detectors, ",") + "/" + d.Shape.Scope
			}
		case IncidentForecast:
			route, regions = checks.RouteWarning, nil
			if d.Forecast != nil {
				regions = d.Forecast.Regions
			}
		}
		suppressed := inMaintenance(c, maint, regions, now)
		if ev, ok := in.reconcile(k, holds, suppressed, route, topic, d, now); ok {
			events = append(events, ev)
		}
	}
	return s, events
}

// rule says what the incident of kind k should do given d, and whether its
// condition holds now (for a trigger delayed by maintenance). It reads the
// down incident, so down must be advanced before degraded.
func (s *IncidentState) rule(k IncidentKind, d Decision, c *checks.Check, now time.Time) (w want, holds bool) {
	switch k {
	case IncidentDown:
		holds = d.State == StateDown && now.Sub(s.DownSince) >= c.For
		switch {
		case holds:
			return wantOpen, true
		case d.State == StateOK:
			return wantClear, false
		}
	case IncidentDegraded:
		holds = d.State == StateDegraded && !s.Down.Open
		switch {
		case holds:
			return wantOpen, true
		case d.State == StateOK || s.Down.Open:
			return wantClear, false
		}
	case IncidentUnknown:
		if d.State == StateUnknown {
			return wantOpen, true
		}
		return wantClear, false
	case IncidentDisagreement:
		switch {
		case d.Disagreement != nil:
			return wantOpen, true
		case d.State != StateUnknown:
			return wantClear, false
		}
	case IncidentShape:
		// Regions close their windows' buckets at different moments; a
		// finding waits one bucket for the others before it is judged, so
		// that its scope (one region, or the service) is right.
		settled := d.Shape != nil && now.Sub(s.ShapeSince) >= shapeSettle(c)
		holds = settled && !s.Down.Open
		switch {
		case holds:
			return wantOpen, true
		case s.Down.Open || (d.Shape == nil && d.State != StateUnknown && len(d.ShapeUnjudged) == 0):
			return wantClear, false
		}
	case IncidentForecast:
		switch {
		case d.Forecast != nil:
			return wantOpen, true
		case len(d.ShapeUnjudged) == 0:
			return wantClear, false
		}
	}
	return wantKeep, false
}

// advance applies w to the incident, with flap damping.
func (in *Incident) advance(w want, flap *checks.FlapRule, now time.Time) {
	switch w {
	case wantOpen:
		in.ClearSince = time.Time{}
		if !in.Open {
			in.Open, in.OpenedAt = true, now
			in.transition(flap, now)
		}
	case wantClear:
		switch {
		case !in.Open:
		case in.Flapping:
			if in.ClearSince.IsZero() {
				in.ClearSince = now
			}
			if flap == nil || now.Sub(in.ClearSince) >= flap.Window {
				in.Open, in.Flapping, in.ClearSince, in.Transitions = false, false, time.Time{}, nil
			}
		case in.transition(flap, now):
			in.ClearSince = now // held open from here on
		default:
			in.Open = false
		}
	case wantKeep:
		in.ClearSince = time.Time{} // not clear: the quiet period starts again
	}
}

// transition records an open or a resolve at now and reports whether it
// made the incident flapping; a transition that does is not recorded, so
// the history stays within flap.Transitions entries.
func (in *Incident) transition(flap *checks.FlapRule, now time.Time) (flapping bool) {
	if flap == nil || flap.Transitions <= 0 || flap.Window <= 0 {
		return false
	}
	in.Transitions = slices.DeleteFunc(in.Transitions, func(t time.Time) bool { return now.Sub(t) >= flap.Window })
	if len(in.Transitions)+1 > flap.Transitions {
		in.Flapping = true
		return true
	}
	in.Transitions = append(in.Transitions, now)
	if len(in.Transitions) > maxFlapHistory {
		in.Transitions = slices.Delete(in.Transitions, 0, len(in.Transitions)-maxFlapHistory)
	}
	return false
}

// reconcile brings what notifiers were told in line with the incident and
// returns the event that does it, if any.
func (in *Incident) reconcile(k IncidentKind, holds, suppressed bool, route, topic string, d Decision, now time.Time) (Event, bool) {
	ev := Event{Check: d.Check, Kind: k, DedupKey: DedupKey(d.Check, k), Time: now, OpenedAt: in.OpenedAt, Decision: d}
	switch {
	case in.Open && !suppressed && holds && (!in.Paged || topic != in.Topic):
		if !in.Paged {
			in.PagedAt, in.Route = now, route
		}
		in.Paged, in.Topic = true, topic
		ev.Route = in.Route
		ev.Action, ev.Flapping = EventTrigger, in.Flapping
		ev.Summary = d.Summary
		switch {
		case k == IncidentDisagreement && d.Disagreement != nil:
			ev.Finding = d.Disagreement
			ev.Summary = d.Check + " regions disagree: " + d.Disagreement.Summary
		case k == IncidentShape && d.Shape != nil:
			ev.Shape, ev.Summary = d.Shape, d.Shape.Summary
		case k == IncidentForecast && d.Forecast != nil:
			ev.Shape, ev.Summary = d.Forecast, d.Forecast.Summary
		}
		if in.Flapping {
			ev.Summary += " [flapping]"
		}
		ev.Summary = wire.Clip(ev.Summary, maxSummaryBytes)
		return ev, true
	case in.Open && !in.Paged && !suppressed:
		// Opened unseen under maintenance and over by its end.
		in.Open, in.Flapping, in.ClearSince = false, false, time.Time{}
	case !in.Open && in.Paged:
		in.Paged, in.Topic = false, ""
		ev.Action, ev.Route = EventResolve, in.Route
		ev.Summary = wire.Clip(fmt.Sprintf("%s %s resolved after %s: %s", d.Check, k, now.Sub(in.OpenedAt).Round(time.Second), d.Summary), maxSummaryBytes)
		return ev, true
	}
	return Event{}, false
}

// inMaintenance reports whether some window covers check c at now in
// every one of regions (every region of c when regions is empty).
func inMaintenance(c *checks.Check, maint []*checks.Maintenance, regions []string, now time.Time) bool {
	if len(maint) == 0 {
		return false
	}
	if len(regions) == 0 {
		regions = c.Regions
	}
	if len(regions) == 0 {
		regions = []string{""}
	}
	for _, r := range regions {
		if !slices.ContainsFunc(maint, func(m *checks.Maintenance) bool { return m != nil && m.Active(c.ID, r, now) }) {
			return false
		}
	}
	return true
}

// clone copies s so that Step shares no slice with its argument.
func (s IncidentState) clone() IncidentState {
	for _, k := range incidentKinds {
		in := s.incident(k)
		in.Transitions = slices.Clone(in.Transitions)
	}
	return s
}

// shapeSettle is how long a shape finding waits for the other regions:
// one bucket of a latency window; nothing for series checks, whose
// detectors already wait for several points.
func shapeSettle(c *checks.Check) time.Duration {
	if c.Shape == nil {
		return 0
	}
	return c.Shape.Bucket()
}

// Retire ends every incident of a check that is no longer configured: each
// one notifiers were told of gets a resolve that says why, on the route its
// trigger went to. The state it returns is at rest, as the zero state of
// the check.
func Retire(check string, s IncidentState, now time.Time) (IncidentState, []Event) {
	var events []Event
	for _, k := range incidentKinds {
		in := s.incident(k)
		if !in.Paged {
			continue
		}
		events = append(events, Event{
			Check: check, Kind: k, Action: EventResolve, Route: in.Route, DedupKey: DedupKey(check, k),
			Time: now, OpenedAt: in.OpenedAt,
			Decision: Decision{Check: check, State: s.State},
			Summary: wire.Clip(fmt.Sprintf("%s %s resolved after %s: the check was removed from the configuration",
				check, k, now.Sub(in.OpenedAt).Round(time.Second)), maxSummaryBytes),
		})
	}
	return IncidentState{Check: check}, events
}
