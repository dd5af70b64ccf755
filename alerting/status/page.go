package status

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/probes/wire"
)

//go:embed page.html
var statusPageHTML string

// Headers of every status page answer. The page has no script, loads
// nothing and embeds its sparklines as inline SVG, so the policy allows
// inline style and nothing else.
const (
	statusPageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// statusPageRefresh is the page's meta refresh, in seconds.
	statusPageRefresh = 30
)

// Status page bounds.
const (
	// sparkSamples is how many of the latest durations per region a
	// sparkline draws.
	sparkSamples = 60
	sparkW       = 240
	sparkH       = 36
	// sparkColors is the size of the region palette (.c0 to .c5).
	sparkColors = 6
	// pageReasonBytes caps a reason shown in the table; the whole reason
	// is in /status.json.
	pageReasonBytes = 300
	// pageIncidents caps the timeline of open incidents.
	pageIncidents = 20
	// pageMaintenanceChecks caps the checks listed per maintenance window.
	pageMaintenanceChecks = 50
)

// Source is what the status page is built from: the evaluator.
type Source interface {
	// PublicStatus is the current state, without the evidence of private
	// checks.
	PublicStatus() Status
	// Overview is PublicStatus without the checks' regions: every check's
	// id, type, state, summary, incidents and maintenance, cheap enough
	// for tens of thousands of checks.
	Overview() Status
	// PublicChecks is the public status of the checks named by ids, with
	// their regions, as of now, in the order of ids; unknown ids are left
	// out. Its cost grows with len(ids), not with the configuration.
	PublicChecks(ids []string, now time.Time) []CheckStatus
	// Window returns the recent results of check from region.
	Window(check, region string) (decide.Window, bool)
	// Private reports whether check is private: its page row shows states
	// only.
	Private(check string) bool
	// CheckHistory returns check's last history.Days days up to now,
	// oldest first, and its incidents, newest first (without the evidence
	// of a private check).
	CheckHistory(check string, now time.Time) ([]DayStatus, []IncidentRecord)
}

// Handler serves the evaluator's state as one self-contained HTML page
// for humans: an overall banner, region liveness, open incidents, active
// maintenance, and per check its state in each region with the latest
// reason and a sparkline of probe durations. It answers GET and HEAD.
//
// ?check=ID shows that check alone under the banner, regions and
// incidents of every check (pages link to it); an unknown ID is 404.
//
// The page is built from src.PublicStatus, so a private check shows its id
// and states only. It never shows a check's configuration (URLs, names,
// addresses), has no script, refreshes itself every 30 seconds, and is
// sent with a Content-Security-Policy that forbids everything but inline
// style. Silence is never shown as health: a region that stopped reporting
// is STALE and a check with too few live regions is UNKNOWN, both in the
// banner.
func Handler(src Source, log *slog.Logger) http.Handler {
	tmpl := template.Must(template.New("status").Parse(statusPageHTML))
	var pages Shared   // readers at the same time share one rendering
	var summary Recent // the default page of a large configuration
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", statusPageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q, err := ParseQuery(req.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		render := func(p statusPage) ([]byte, error) {
			var buf bytes.Buffer
			err := tmpl.Execute(&buf, p)
			return buf.Bytes(), err
		}
		var page []byte
		switch ov := src.Overview(); {
		case q.Check != "":
			// One check, as pages link to it: the overview of every
			// check and that check in full, built for it alone.
			one := src.PublicChecks([]string{q.Check}, ov.Time)
			if len(one) == 0 {
				http.Error(w, "no check "+strconv.Quote(wire.Clip(q.Check, 128)), http.StatusNotFound)
				return
			}
			p := build(src, ov, one)
			p.One = true
			page, err = render(p)
		case !q.Paged() && len(ov.Checks) <= FullMaxChecks:
			page, err = pages.Get(func() ([]byte, error) {
				s := src.PublicStatus()
				return render(build(src, s, s.Checks))
			})
		case !q.Paged():
			page, err = summary.Get(ov.Time, time.Second, func() ([]byte, error) { return render(buildPaged(src, ov, q)) })
		default:
			page, err = render(buildPaged(src, ov, q))
		}
		if err != nil {
			log.Error("status page not rendered", "err", err)
			http.Error(w, "status page unavailable", http.StatusInternalServerError)
			return
		}
		Write(w, req, "text/html; charset=utf-8", page)
	})
}

// buildPaged is the page of a large configuration: the banner, regions,
// incidents and maintenance of every check from ov, and the checks of one
// page (not OK first) in full.
func buildPaged(src Source, ov Status, q Query) statusPage {
	idx, _, pg := Select(ov, q)
	ids := make([]string, len(idx))
	for i, j := range idx {
		ids[i] = ov.Checks[j].ID
	}
	p := build(src, ov, src.PublicChecks(ids, ov.Time))
	p.Page = &pg
	return p
}

// statusPage is what the template renders; every string is plain text.
type statusPage struct {
	Refresh     int
	Generated   stamp
	Started     stamp
	Digest      string
	StaleAfter  string
	Banner      banner
	Regions     []regionRow
	Mismatch    []mismatchRow
	Incidents   []incidentRow
	More        int // open incidents left off the timeline
	Maintenance []maintenanceRow
	Upcoming    []upcomingRow
	Checks      []checkView
	// Page is set when Checks is one page of the checks; One when it is
	// one check's view, with its incident history.
	Page *PageInfo
	One  bool
}

type upcomingRow struct {
	Name       string
	Start, End stamp
	Checks     string
}

// stamp is a time as the page shows it, in UTC; the zero stamp is no
// time at all.
type stamp struct {
	ISO, Clock, Ago string
}

type banner struct {
	Class, Headline string
	Notes           []string
}

type regionRow struct {
	Name, State, Class string
	Color              int
	Since, LastSeen    stamp
	Agents             int
}

type mismatchRow struct {
	Region, Agent, Digest string
}

type incidentRow struct {
	Check, Kind, Class string
	Opened             stamp
	Paged, Flapping    bool
	opened             time.Time
}

type maintenanceRow struct {
	Name   string
	Checks []string
	More   int // checks left off Checks
}

type checkView struct {
	ID, Type, State, Class, Summary string
	Private                         bool
	// Owner, with shards, is the evaluator that decides the check.
	Owner       string
	Incidents   []incidentRow
	Maintenance []string
	Spark       *sparkline
	Rows        []checkRegionRow
	// GroupHead is the group's name on the first check of a group.
	GroupHead string
	// Uptime is the uptime line; Bars one bar a day, oldest first.
	Uptime  string
	Bars    []dayBar
	History []historyRow
}

// dayBar is one day of a check's history bar: its worst state as a class
// and its figures as the title a pointer shows.
type dayBar struct{ Class, Title string }

// historyRow is one past incident of a check with its timeline.
type historyRow struct {
	Kind, Class, Summary, Regions, Lasted string
	Opened, Resolved                      stamp
	Timeline                              []timelineRow
}

type timelineRow struct {
	At                     stamp
	Action, Route, Summary string
}

type checkRegionRow struct {
	Region           string
	Color            int
	Result, Class    string
	RegionState      string // set when the region is not LIVE
	Reason, Duration string
	Window           string
	At               stamp
}

// sparkline is an inline SVG of durations: one line per region, a dot on
// each failed probe and on each region's latest one.
type sparkline struct {
	W, H  int
	Max   string
	Label string
	Lines []sparkLine
	Fails []sparkPoint
}

type sparkLine struct {
	Color  int
	Points string
	End    sparkPoint
}

type sparkPoint struct{ X, Y string }

// build gathers the page's content at the evaluator's now: the banner,
// incidents and maintenance of every check of s, and a section for each
// check of shown (with its regions).
func build(src Source, s Status, shown []CheckStatus) statusPage {
	now := s.Time
	p := statusPage{
		Refresh:    statusPageRefresh,
		Generated:  stampOf(now, now),
		Started:    stampOf(s.Started, now),
		Digest:     s.ConfigDigest,
		StaleAfter: s.StaleAfter.duration().String(),
		Banner:     bannerOf(s),
	}
	color := map[string]int{}
	live := map[string]decide.RegionState{}
	for i, r := range s.Regions {
		color[r.Name] = i % sparkColors
		live[r.Name] = r.State
		p.Regions = append(p.Regions, regionRow{
			Name: r.Name, State: string(r.State), Class: regionClass(r.State), Color: i % sparkColors,
			Since: stampOf(r.Since, now), LastSeen: stampOf(r.LastSeen, now), Agents: len(r.Agents),
		})
		for _, a := range r.Agents {
			if !a.ConfigDigestMatch && !a.LastSeen.IsZero() && now.Sub(a.LastSeen) < s.StaleAfter.duration() {
				p.Mismatch = append(p.Mismatch, mismatchRow{Region: r.Name, Agent: a.Name, Digest: a.ConfigDigest})
			}
		}
	}
	maint := map[string]int{}
	for _, cs := range s.Checks {
		for _, in := range cs.Incidents {
			p.Incidents = append(p.Incidents, incidentRow{Check: cs.ID, Kind: string(in.Kind), Class: incidentClass(in.Kind), Opened: stampOf(in.OpenedAt, now), Paged: in.Paged, Flapping: in.Flapping, opened: in.OpenedAt})
		}
		for _, name := range cs.Maintenance {
			i, ok := maint[name]
			if !ok {
				i = len(p.Maintenance)
				maint[name] = i
				p.Maintenance = append(p.Maintenance, maintenanceRow{Name: name})
			}
			if m := &p.Maintenance[i]; len(m.Checks) < pageMaintenanceChecks {
				m.Checks = append(m.Checks, cs.ID)
			} else {
				m.More++
			}
		}
	}
	for _, u := range s.Upcoming {
		p.Upcoming = append(p.Upcoming, upcomingRow{Name: u.Name, Start: stampOf(u.Start, now), End: stampOf(u.End, now), Checks: u.Checks})
	}
	shown = groupChecks(shown)
	group := ""
	for i, cs := range shown {
		v := checkView{
			ID: cs.ID, Type: cs.Type, State: checkStateText(cs.State), Class: checkClass(cs.State),
			Summary: cs.Summary, Maintenance: cs.Maintenance, Owner: cs.Owner,
		}
		if cs.Group != group || (i == 0 && cs.Group != "") {
			group, v.GroupHead = cs.Group, cmp.Or(cs.Group, "Other checks")
		}
		v.Private = src.Private(cs.ID)
		v.Uptime = uptimeText(cs.Uptime)
		days, hist := src.CheckHistory(cs.ID, now)
		v.Bars = barsOf(days)
		if len(shown) == 1 {
			v.History = historyOf(hist, now)
		}
		for _, in := range cs.Incidents {
			v.Incidents = append(v.Incidents, incidentRow{Check: cs.ID, Kind: string(in.Kind), Class: incidentClass(in.Kind), Opened: stampOf(in.OpenedAt, now), Paged: in.Paged, Flapping: in.Flapping, opened: in.OpenedAt})
		}
		var wins []decide.Window
		for _, cr := range cs.Regions {
			row := checkRegionRow{
				Region: cr.Region, Color: color[cr.Region], Result: "NO DATA", Class: "unknown",
				Window: windowText(cr.Window),
			}
			if st := live[cr.Region]; st != decide.RegionLive {
				row.RegionState = string(st)
			}
			if l := cr.Last; l != nil {
				row.Result, row.Class = "PASS", "ok"
				if !l.OK {
					row.Result, row.Class = "FAIL", "down"
				}
				row.At = stampOf(l.Received, now)
				if !v.Private {
					row.Reason = wire.Clip(l.Reason, pageReasonBytes)
					row.Duration = shape.FormatSeconds(l.Duration)
				}
			}
			v.Rows = append(v.Rows, row)
			if !v.Private {
				if w, ok := src.Window(cs.ID, cr.Region); ok {
					wins = append(wins, w)
				}
			}
		}
		if !v.Private {
			v.Spark = sparkOf(wins, color, now)
		}
		p.Checks = append(p.Checks, v)
	}
	slices.SortStableFunc(p.Incidents, func(a, b incidentRow) int { return b.opened.Compare(a.opened) })
	if len(p.Incidents) > pageIncidents {
		p.More = len(p.Incidents) - pageIncidents
		p.Incidents = p.Incidents[:pageIncidents]
	}
	return p
}

// groupChecks orders checks by group (labels.service), groups in the
// order they first appear and checks in theirs; without any group the
// order is unchanged.
func groupChecks(cs []CheckStatus) []CheckStatus {
	if !slices.ContainsFunc(cs, func(c CheckStatus) bool { return c.Group != "" }) {
		return cs
	}
	first := map[string]int{}
	for i, c := range cs {
		if _, ok := first[c.Group]; !ok {
			first[c.Group] = i
		}
	}
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b CheckStatus) int {
		// Checks without a group come last.
		switch {
		case a.Group == b.Group:
			return 0
		case a.Group == "":
			return 1
		case b.Group == "":
			return -1
		}
		return first[a.Group] - first[b.Group]
	})
	return out
}

// uptimeText is a check's uptime line, or "" before any verdict.
func uptimeText(u *Uptime) string {
	if u == nil {
		return ""
	}
	var parts []string
	for _, r := range []struct {
		name string
		v    *float64
	}{{"24 h", u.Day}, {"7 d", u.Week}, {"30 d", u.Month}, {"90 d", u.Quarter}} {
		if r.v != nil {
			parts = append(parts, r.name+" "+percent(*r.v))
		}
	}
	return "Uptime " + strings.Join(parts, " · ")
}

// percent shows a ratio as a percentage with as many decimals as it
// takes not to round an outage away: 99.99% stays short of 100%.
func percent(v float64) string {
	if v >= 1 {
		return "100%"
	}
	for _, prec := range []int{1, 2, 3} {
		s := strconv.FormatFloat(v*100, 'f', prec, 64)
		if s != "100."+strings.Repeat("0", prec) {
			return s + "%"
		}
	}
	return "99.999%"
}

// barsOf is one bar a day: its worst verdict, and its figures as title.
func barsOf(days []DayStatus) []dayBar {
	bars := make([]dayBar, 0, len(days))
	for _, d := range days {
		b := dayBar{Class: "nd", Title: d.Date + ": no data"}
		watched := int64(d.OK) + int64(d.Degraded) + int64(d.Down) + int64(d.Unknown)
		if d.Worst != "" && watched > 0 {
			b.Class = checkClass(d.Worst)
			b.Title = fmt.Sprintf("%s: %s up", d.Date, percent(1-float64(d.Down)/float64(watched)))
			for _, st := range []struct {
				name string
				secs int32
			}{{"down", d.Down}, {"degraded", d.Degraded}, {"unknown", d.Unknown}} {
				if st.secs > 0 {
					b.Title += fmt.Sprintf(", %s %s", st.name, (time.Duration(st.secs) * time.Second).String())
				}
			}
			if d.Probes > 0 {
				b.Title += fmt.Sprintf(", %d probes, %d failed", d.Probes, d.Failures)
			}
		}
		bars = append(bars, b)
	}
	return bars
}

// historyOf is a check's incident history as the page shows it.
func historyOf(recs []IncidentRecord, now time.Time) []historyRow {
	out := make([]historyRow, 0, len(recs))
	for _, r := range recs {
		h := historyRow{
			Kind: string(r.Kind), Class: incidentClass(r.Kind), Summary: wire.Clip(r.Summary, pageReasonBytes),
			Regions: strings.Join(r.Regions, ", "), Opened: stampOf(r.OpenedAt, now),
		}
		if !r.ResolvedAt.IsZero() {
			h.Resolved = stampOf(r.ResolvedAt, now)
			h.Lasted = r.ResolvedAt.Sub(r.OpenedAt).Round(time.Second).String()
		}
		for _, t := range r.Timeline {
			h.Timeline = append(h.Timeline, timelineRow{At: stampOf(t.Time, now), Action: t.Action, Route: t.Route, Summary: wire.Clip(t.Summary, pageReasonBytes)})
		}
		out = append(out, h)
	}
	return out
}
