package alertmanager

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/outposthq/outpost/alerting/notify"
)

// postableAlert is one alert of Alertmanager's API v2
// (POST /api/v2/alerts takes a list of them).
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Labels every alert carries; a check's own labels of the same names are
// sent as exported_NAME, as Prometheus does with clashing target labels.
const (
	LabelAlertname = "alertname"
	LabelCheck     = "check"
	LabelSeverity  = "severity"
	LabelKind      = "kind"
	LabelRoute     = "route"
	// LabelRegions lists the failing regions, sorted, comma-separated.
	LabelRegions = "regions"
	// LabelRegion is the region of a region's own notification.
	LabelRegion = "region"
	// LabelKey is the incident's dedup key: stable for one check and
	// kind, so no more series than check × alertname.
	LabelKey = "dedup_key"
)

var reserved = []string{LabelAlertname, LabelCheck, LabelSeverity, LabelKind, LabelRoute, LabelRegions, LabelRegion, LabelKey}

// Alertmanager 0.25 takes label and annotation names of the classic
// form only.
var invalidName = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// labelName turns s into a valid label or annotation name.
func labelName(s string) string {
	s = invalidName.ReplaceAllString(s, "_")
	if s == "" || unicode.IsDigit(rune(s[0])) {
		s = "_" + s
	}
	return s
}

// AlertName is the alertname of a notification kind: "Outpost" and the
// kind in CamelCase (check_down → OutpostCheckDown, peer_down →
// OutpostPeerDown).
func AlertName(kind string) string {
	var b strings.Builder
	b.WriteString("Outpost")
	for part := range strings.SplitSeq(kind, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return labelName(b.String())
}

// firingSeverity is the severity of an incident while it fires, from its
// route: the severity label must be the same on the trigger and on the
// resolve (whose own severity is info), or Alertmanager would see two
// alerts.
func firingSeverity(n notify.Notification) string {
	switch n.Route {
	case notify.RouteCritical:
		return notify.SeverityCritical
	case notify.RouteWarning:
		return notify.SeverityWarning
	case notify.RouteMeta:
		return notify.SeverityError
	}
	return notify.SeverityOf(n)
}

// one is what one alert is made from: a notification, or a member of a
// group or storm notification.
type one struct {
	key, kind, check, summary string
	firing                    bool
	evidence                  []notify.RegionEvidence
}

// split returns the alerts n stands for: its members for a group or storm
// notification (Alertmanager groups by itself), else n alone.
func split(n notify.Notification) []one {
	if len(n.Members) == 0 {
		return []one{{key: n.Key, kind: n.Kind, check: n.Check, summary: n.Summary, firing: n.Action != notify.ActionResolve, evidence: n.Evidence}}
	}
	out := make([]one, 0, len(n.Members))
	for _, m := range n.Members {
		out = append(out, one{key: m.Key, kind: m.Kind, check: m.Check, summary: m.Summary, firing: m.State != notify.MemberResolved, evidence: m.Evidence})
	}
	return out
}

// alertFor builds the alert of o, a part of n. labels are the check's
// labels (may be nil).
func alertFor(n notify.Notification, o one, labels map[string]string) postableAlert {
	l := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		name := labelName(k)
		if slices.Contains(reserved, name) {
			name = "exported_" + name
		}
		if labels[k] != "" {
			l[name] = labels[k]
		}
	}
	set := func(k, v string) {
		if v != "" {
			l[k] = v
		}
	}
	set(LabelAlertname, AlertName(o.kind))
	set(LabelKind, o.kind)
	set(LabelCheck, o.check)
	set(LabelSeverity, firingSeverity(n))
	set(LabelRoute, n.Route)
	set(LabelKey, o.key)
	if o.check == "" {
		set(LabelRegion, n.Region)
	}
	var failing []string
	for _, ev := range o.evidence {
		if ev.State == notify.StateFailing {
			failing = append(failing, ev.Region)
		}
	}
	slices.Sort(failing)
	set(LabelRegions, strings.Join(slices.Compact(failing), ","))

	a := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	put("summary", o.summary)
	var lines []string
	for _, ev := range o.evidence {
		line := notify.EvidenceLine(ev)
		name := "evidence_" + labelName(ev.Region)
		if _, dup := a[name]; !dup {
			put(name, line)
		}
		lines = append(lines, ev.Region+": "+line)
	}
	put("description", strings.Join(lines, "\n"))
	put("runbook_url", n.Runbook)
	put("status_url", n.Link)
	put("target", n.Target)
	put("source", n.Source)
	return postableAlert{Labels: l, Annotations: a, GeneratorURL: n.Link}
}

// sameLabels reports whether a and b are one alert to Alertmanager.
func sameLabels(a, b map[string]string) bool { return maps.Equal(a, b) }
