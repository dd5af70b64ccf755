package alerting

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
)

// What the monitoring cannot see is one cause, and one incident: the
// regions gone silent and the checks too few regions can judge are one
// meta page under metaKey, sent once the blindness has lasted meta.for,
// updated (same key) when what it covers changes, and resolved when the
// monitoring sees everything again. One region coming back cannot resolve
// what is still wrong with another; three regions going silent is one page
// ("monitoring blind: 3/3 regions silent"), not three plus one for the
// checks they leave UNKNOWN.

// metaKey is the dedup key of the meta incident, the same on every
// evaluator so that PagerDuty folds theirs into one.
const metaKey = "outpost:monitoring"

// maxMetaNames bounds the checks named in the meta page's summary.
const maxMetaNames = 10

// metaPage is the meta incident's state; used by the liveness loop only.
type metaPage struct {
	open         bool
	summary      string    // what was last sent
	unknownSince time.Time // since when some check has been UNKNOWN; zero if none
}

// silentRegion is a region STALE for meta.for or longer.
type silentRegion struct {
	name  string
	since time.Time // the start of its silence
	never bool      // never heard from since the evaluator started
}

// flushMeta sends the meta incident's trigger, update or resolve that the
// regions' liveness and the UNKNOWN checks at now call for.
func (e *Evaluator) flushMeta(ctx context.Context, now time.Time) {
	wait := e.config().Meta.For
	var silent []silentRegion
	for _, r := range e.regionList {
		r.mu.Lock()
		l := r.live
		r.mu.Unlock()
		if l.State == decide.RegionStale && now.Sub(l.Since) >= wait {
			silent = append(silent, silentRegion{r.name, l.SilentSince, l.NeverSeen})
		}
	}
	u := &e.unknown
	u.mu.Lock()
	unknown := slices.Sorted(maps.Keys(u.open))
	example := ""
	if len(unknown) > 0 {
		example = u.open[unknown[0]]
	}
	u.mu.Unlock()
	m := &e.meta
	switch {
	case len(unknown) == 0:
		m.unknownSince = time.Time{}
	case m.unknownSince.IsZero():
		m.unknownSince = now
	}
	// UNKNOWN checks page on their own once they have lasted meta.for;
	// beside silent regions they are part of the same page at once.
	if len(silent) == 0 && (len(unknown) == 0 || now.Sub(m.unknownSince) < wait) {
		unknown = nil
	}

	n := notify.Notification{Kind: notify.KindMonitoring, Key: metaKey, Route: checks.RouteMeta, Severity: notify.SeverityCritical,
		Time: now, Details: map[string]string{"route": checks.RouteMeta}}
	switch {
	case len(silent) == 0 && len(unknown) == 0:
		if !m.open {
			return
		}
		m.open, m.summary = false, ""
		n.Action = notify.ActionResolve
		n.Summary = "monitoring sees again: every region reporting, every check judged"
	default:
		summary := e.metaSummary(silent, unknown)
		if m.open && summary == m.summary {
			return
		}
		m.open, m.summary = true, summary
		n.Action, n.Summary = notify.ActionTrigger, summary
		for _, s := range silent {
			n.Details["region."+s.name] = "silent since " + s.since.UTC().Format(time.RFC3339)
		}
		if len(unknown) > 0 {
			n.Details["checks_unknown"] = fmt.Sprint(len(unknown))
			n.Details["example"] = example
		}
	}
	n.Details["action"] = n.Action
	e.send(ctx, n)
}

// metaSummary says what the monitoring cannot see, such as "monitoring
// blind: 3/3 regions silent: us-east since 12:00:01, ...; 40 checks
// UNKNOWN" or "1/3 regions silent: ap-south since 12:03:41".
func (e *Evaluator) metaSummary(silent []silentRegion, unknown []string) string {
	var b strings.Builder
	if len(silent) > 0 {
		if len(silent) == len(e.regionList) {
			b.WriteString("monitoring blind: ")
		}
		fmt.Fprintf(&b, "%d/%d regions silent: ", len(silent), len(e.regionList))
		for i, s := range silent {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.name)
			if s.never {
				b.WriteString(" never heard from since evaluator start at ")
			} else {
				b.WriteString(" since ")
			}
			b.WriteString(s.since.UTC().Format(time.TimeOnly))
		}
	}
	if len(unknown) > 0 {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		shown := unknown[:min(len(unknown), maxMetaNames)]
		fmt.Fprintf(&b, "%d check(s) UNKNOWN, too few live regions to decide (%s", len(unknown), strings.Join(shown, ", "))
		if more := len(unknown) - len(shown); more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
		b.WriteString(")")
	}
	return b.String()
}
