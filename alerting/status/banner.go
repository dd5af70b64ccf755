package status

import (
	"fmt"
	"strings"

	"github.com/outposthq/outpost/alerting/decide"
)

// bannerOf sums s up in one line: green only when every check is OK and
// every region is LIVE on this evaluator's configuration.
func bannerOf(s Status) banner {
	var down, degraded, unknown, pending, ok int
	for _, c := range s.Checks {
		switch c.State {
		case decide.StateDown:
			down++
		case decide.StateDegraded:
			degraded++
		case decide.StateUnknown:
			unknown++
		case decide.StateOK:
			ok++
		default:
			pending++
		}
	}
	var stale, never, mismatch []string
	for _, r := range s.Regions {
		switch r.State {
		case decide.RegionLive:
		case decide.RegionStale:
			stale = append(stale, r.Name)
		default:
			never = append(never, r.Name)
		}
		if !r.ConfigDigestMatch {
			mismatch = append(mismatch, r.Name)
		}
	}
	var b banner
	var parts []string
	if sh := s.Shards; sh != nil && !sh.Others {
		parts = append(parts, "other shards unavailable")
		b.Notes = append(b.Notes, "Only the checks of "+sh.Evaluator+" (shards "+sh.Owned+") are shown: "+sh.Note)
	}
	if down > 0 {
		parts = append(parts, plural(down, "check")+" DOWN")
	}
	if degraded > 0 {
		parts = append(parts, plural(degraded, "check")+" DEGRADED")
	}
	if unknown > 0 {
		parts = append(parts, plural(unknown, "check")+" UNKNOWN")
	}
	if pending > 0 {
		parts = append(parts, plural(pending, "check")+" without a verdict yet")
	}
	if len(stale) > 0 {
		parts = append(parts, regionsText(stale)+" STALE")
		b.Notes = append(b.Notes, "A STALE region has sent nothing for "+s.StaleAfter.duration().String()+
			" or more; it is left out of every verdict until it reports again.")
	}
	if len(never) > 0 {
		parts = append(parts, regionsText(never)+" not heard from yet")
	}
	if len(mismatch) > 0 {
		parts = append(parts, "configuration mismatch in "+strings.Join(mismatch, ", "))
	}
	switch {
	case len(s.Checks) == 0:
		b.Class, b.Headline = "unknown", "No checks configured"
		if len(parts) > 0 {
			b.Headline += " · " + strings.Join(parts, " · ")
		}
		return b
	case down > 0:
		b.Class = "down"
	case degraded > 0:
		b.Class = "degraded"
	case len(parts) > 0:
		b.Class = "unknown"
	default:
		b.Class = "ok"
		b.Headline = fmt.Sprintf("All %s OK · %s LIVE", plural(ok, "check"), plural(len(s.Regions), "region"))
		return b
	}
	if ok > 0 {
		parts = append(parts, fmt.Sprintf("%d OK", ok))
	}
	b.Headline = strings.Join(parts, " · ")
	return b
}
