package outbox

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
)

// The grouping stage sits between routing and the queue, per notifier.
// A check's incident notification (trigger or resolve) either goes straight
// to the queue, as every notification did before grouping existed, or
// becomes a member of a group, whose one notification stands for all its
// members:
//
//   - With grouping (checks.Grouping), every check incident joins the group
//     of its route and grouping facts. A group's first notification waits
//     Wait for the rest of the group; a changed group is sent again at most
//     every Interval; it resolves when its last member has.
//   - The storm guard (checks.StormGuard) counts the incidents that open on
//     each route. Past its threshold within its window, the next ones, be
//     they groups or single incidents, join one storm group for the route.
//
// Incidents already open on their own, and every notification that is not
// a check's incident (regions, peers, UNKNOWN checks), go straight to the
// queue.

// Facts looks up a grouping fact (checks.Check.GroupFact) of a check by id;
// "" when the check or the fact is unknown.
type Facts func(check, fact string) string

// GroupPolicy is one notifier's grouping stage.
type GroupPolicy struct {
	// Grouping is nil when each incident is notified on its own.
	Grouping *checks.Grouping
	// Storm is nil when the storm guard is off.
	Storm *checks.StormGuard
}

// memberState is what the stage holds of one check incident.
type memberState struct {
	Group  string              `json:"group"`
	Firing bool                `json:"firing"`
	Last   notify.Notification `json:"last"`
}

// groupState is one group, as stored.
type groupState struct {
	Route string `json:"route"`
	// Key is the group notification's key (its dedup key).
	Key string `json:"key"`
	// Label says what the members share, for the page.
	Label   string    `json:"label,omitempty"`
	Storm   bool      `json:"storm,omitempty"`
	Created time.Time `json:"created"`
	// Opened: a trigger for Key went to the queue and no resolve since.
	Opened   bool      `json:"opened,omitempty"`
	LastSent time.Time `json:"last_sent,omitzero"`
	// Dirty: the members changed since the last notification.
	Dirty bool `json:"dirty,omitempty"`

	members map[string]*memberState
}

// groupFor returns the id, key and label of the group n joins under g.
func groupFor(g *checks.Grouping, n notify.Notification, facts Facts) (id, key, label string) {
	var pairs []string
	for _, by := range g.By {
		v := ""
		if facts != nil {
			v = facts(n.Check, by)
		}
		pairs = append(pairs, by+"="+v)
	}
	label = strings.Join(pairs, ",")
	key = "outpost:group:" + n.Route
	if label != "" {
		key += ":" + label
	}
	return "group\x00" + n.Route + "\x00" + label, key, label
}

// stormGroup returns the id and key of route's storm group.
func stormGroup(route string) (id, key string) {
	return "storm\x00" + route, "outpost:storm:" + route
}

// groupable reports whether n may join a group: a check incident's trigger
// or resolve.
func groupable(n notify.Notification) bool {
	return strings.HasPrefix(n.Kind, notify.KindCheckPrefix) && n.Action != "" && n.Check != ""
}

// dueAt is when g's pending change may be sent. A storm group waits like
// a group (the default wait without grouping), so that its first page
// lists the burst, not its first few.
func (g *groupState) dueAt(p GroupPolicy) time.Time {
	wait, interval := checks.DefaultGroupWait, checks.DefaultGroupInterval
	if p.Grouping != nil {
		wait, interval = p.Grouping.Wait, p.Grouping.Interval
	}
	if !g.Opened {
		return g.Created.Add(wait)
	}
	return g.LastSent.Add(interval)
}

// sortedMembers returns g's members, firing first, each part by check and
// key.
func (g *groupState) sortedMembers() []*memberState {
	ms := slices.Collect(maps.Values(g.members))
	slices.SortFunc(ms, func(a, b *memberState) int {
		if a.Firing != b.Firing {
			if a.Firing {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Last.Check, b.Last.Check), cmp.Compare(a.Last.Key, b.Last.Key))
	})
	return ms
}

// notification is the group's one notification at now: a trigger that
// lists every member while any fires, a resolve once none does. A group
// of one firing check (not a storm) reads as that check's own page.
func (g *groupState) notification(now time.Time, window time.Duration) notify.Notification {
	ms := g.sortedMembers()
	firing := 0
	for _, m := range ms {
		if m.Firing {
			firing++
		}
	}
	if firing == 0 {
		n := notify.Notification{Kind: notify.KindGroup, Key: g.Key, Action: notify.ActionResolve, Route: g.Route, Time: now,
			Summary: fmt.Sprintf("all %d check(s) of the group recovered", len(ms))}
		if g.Storm {
			n.Kind = notify.KindStorm
		}
		for _, m := range ms {
			n.Members = append(n.Members, member(m))
		}
		return n
	}
	if len(ms) == 1 && !g.Storm {
		n := ms[0].Last
		n.Key, n.Action, n.Time = g.Key, notify.ActionTrigger, now
		n.Details = maps.Clone(n.Details)
		if n.Details == nil {
			n.Details = map[string]string{}
		}
		n.Details["action"] = notify.ActionTrigger
		n.Details["group"] = cmp.Or(g.Label, g.Route)
		n.Details["incident_key"] = ms[0].Last.Key
		return n
	}
	first := ms[0].Last
	n := notify.Notification{
		Kind:     notify.KindGroup,
		Key:      g.Key,
		Action:   notify.ActionTrigger,
		Route:    g.Route,
		Severity: first.Severity,
		Source:   first.Source,
		Group:    g.Label,
		Time:     now,
		Details: map[string]string{
			"action":          notify.ActionTrigger,
			"route":           g.Route,
			"checks_firing":   fmt.Sprint(firing),
			"checks_resolved": fmt.Sprint(len(ms) - firing),
		},
	}
	if g.Label != "" {
		n.Details["group"] = g.Label
	}
	for _, m := range ms {
		n.Members = append(n.Members, member(m))
		if m.Firing && severityRank(m.Last.Severity) > severityRank(n.Severity) {
			n.Severity = m.Last.Severity
		}
	}
	n.Summary = groupSummary(ms[:firing], len(ms)-firing)
	if g.Storm {
		n.Kind = notify.KindStorm
		n.Details["storm"] = "true"
		n.Summary = fmt.Sprintf("storm on route %s (incidents opening faster than the storm guard allows in %s): %s", g.Route, window, n.Summary)
	}
	return n
}

func member(m *memberState) notify.Member {
	state := notify.MemberResolved
	if m.Firing {
		state = notify.MemberFiring
	}
	return notify.Member{Key: m.Last.Key, Check: m.Last.Check, Kind: m.Last.Kind, State: state, Summary: m.Last.Summary, Evidence: m.Last.Evidence}
}

// maxListedChecks bounds the check names a group summary lists.
const maxListedChecks = 8

// groupSummary is "37 checks DOWN from 3/3 regions: web-home, api-login,
// … (+29)" for the firing members, with the number recovered. When the
// members disagree on how many regions fail, it gives the range ("from 2
// to 3 of 3 regions").
func groupSummary(firing []*memberState, resolved int) string {
	state := ""
	lo, hi, of := -1, -1, -1
	for i, m := range firing {
		s := m.Last.Details["state"]
		f, n := regionShare(m.Last.Evidence)
		if i == 0 {
			state, lo, hi, of = s, f, f, n
			continue
		}
		if s != state {
			state = ""
		}
		if n != of {
			of = -1
		}
		lo, hi = min(lo, f), max(hi, f)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d checks %s", len(firing), cmp.Or(state, "failing"))
	switch {
	case of <= 0:
	case lo == hi:
		fmt.Fprintf(&b, " from %d/%d regions", lo, of)
	default:
		fmt.Fprintf(&b, " from %d to %d of %d regions", lo, hi, of)
	}
	b.WriteString(": ")
	seen := map[string]bool{}
	listed := 0
	for _, m := range firing {
		if seen[m.Last.Check] {
			continue
		}
		seen[m.Last.Check] = true
		if listed < maxListedChecks {
			if listed > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m.Last.Check)
			listed++
		}
	}
	if more := len(seen) - listed; more > 0 {
		fmt.Fprintf(&b, ", … (+%d)", more)
	}
	if resolved > 0 {
		fmt.Fprintf(&b, "; %d recovered", resolved)
	}
	return b.String()
}

// regionShare is how many regions of a member's evidence fail, of how
// many.
func regionShare(ev []notify.RegionEvidence) (failing, of int) {
	for _, e := range ev {
		if e.State == "FAILING" {
			failing++
		}
	}
	return failing, len(ev)
}

func severityRank(s string) int {
	switch s {
	case notify.SeverityCritical:
		return 4
	case notify.SeverityError:
		return 3
	case notify.SeverityWarning:
		return 2
	case notify.SeverityInfo:
		return 1
	}
	return 0
}
