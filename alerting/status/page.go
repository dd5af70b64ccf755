package status

import (
	"bytes"
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
)

// Source is what the status page is built from: the evaluator.
type Source interface {
	// PublicStatus is the current state, without the evidence of private
	// checks.
	PublicStatus() Status
	// Window returns the recent results of check from region.
	Window(check, region string) (decide.Window, bool)
	// Private reports whether check is private: its page row shows states
	// only.
	Private(check string) bool
}

// Handler serves the evaluator's state as one self-contained HTML page
// for humans: an overall banner, region liveness, open incidents, active
// maintenance, and per check its state in each region with the latest
// reason and a sparkline of probe durations. It answers GET and HEAD.
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
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, build(src)); err != nil {
			log.Error("status page not rendered", "err", err)
			http.Error(w, "status page unavailable", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
		if req.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(buf.Bytes())
	})
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
	Checks      []checkView
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
}

type checkView struct {
	ID, Type, State, Class, Summary string
	Private                         bool
	Incidents                       []incidentRow
	Maintenance                     []string
	Spark                           *sparkline
	Rows                            []checkRegionRow
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

// build gathers the page's content at the evaluator's now.
func build(src Source) statusPage {
	s := src.PublicStatus()
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
		v := checkView{
			ID: cs.ID, Type: cs.Type, State: checkStateText(cs.State), Class: checkClass(cs.State),
			Summary: cs.Summary, Maintenance: cs.Maintenance,
		}
		v.Private = src.Private(cs.ID)
		for _, in := range cs.Incidents {
			row := incidentRow{Check: cs.ID, Kind: string(in.Kind), Class: incidentClass(in.Kind), Opened: stampOf(in.OpenedAt, now), Paged: in.Paged, Flapping: in.Flapping, opened: in.OpenedAt}
			v.Incidents = append(v.Incidents, row)
			p.Incidents = append(p.Incidents, row)
		}
		for _, name := range cs.Maintenance {
			i, ok := maint[name]
			if !ok {
				i = len(p.Maintenance)
				maint[name] = i
				p.Maintenance = append(p.Maintenance, maintenanceRow{Name: name})
			}
			p.Maintenance[i].Checks = append(p.Maintenance[i].Checks, cs.ID)
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

// sparkOf draws the latest durations of wins, placed by receipt time on
// the evaluator's clock so that a region that went silent stops short of
// the right edge; nil when there is nothing to draw.
func sparkOf(wins []decide.Window, color map[string]int, now time.Time) *sparkline {
	const pad = 3.0
	var oldest time.Time
	maxD := 0.0
	n := 0
	for i := range wins {
		w := &wins[i]
		w.Samples = w.Samples[max(0, len(w.Samples)-sparkSamples):]
		for _, s := range w.Samples {
			if oldest.IsZero() || s.Received.Before(oldest) {
				oldest = s.Received
			}
			maxD = max(maxD, s.Duration)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if maxD <= 0 {
		maxD = 0.001
	}
	span := now.Sub(oldest)
	sp := &sparkline{W: sparkW, H: sparkH, Max: shape.FormatSeconds(maxD)}
	var label []string
	for _, w := range wins {
		if len(w.Samples) == 0 {
			continue
		}
		l := sparkLine{Color: color[w.Region]}
		var pts strings.Builder
		for i, s := range w.Samples {
			var x float64
			switch {
			case span > 0:
				x = float64(s.Received.Sub(oldest)) / float64(span)
			case len(w.Samples) > 1:
				x = float64(i) / float64(len(w.Samples)-1)
			default:
				x = 1
			}
			x = pad + min(max(x, 0), 1)*(sparkW-2*pad)
			y := sparkH - pad - min(s.Duration/maxD, 1)*(sparkH-2*pad)
			pt := sparkPoint{X: strconv.FormatFloat(x, 'f', 1, 64), Y: strconv.FormatFloat(y, 'f', 1, 64)}
			if i > 0 {
				pts.WriteByte(' ')
			}
			pts.WriteString(pt.X + "," + pt.Y)
			if !s.OK {
				sp.Fails = append(sp.Fails, pt)
			}
			l.End = pt
		}
		l.Points = pts.String()
		sp.Lines = append(sp.Lines, l)
		label = append(label, w.Region+" "+shape.FormatSeconds(w.Samples[len(w.Samples)-1].Duration))
	}
	sp.Label = "Probe durations, latest per region: " + strings.Join(label, ", ") + "; max " + sp.Max
	return sp
}

func (s Seconds) duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

func stampOf(t, now time.Time) stamp {
	if t.IsZero() {
		return stamp{}
	}
	u := t.UTC()
	clock := u.Format(time.TimeOnly)
	if y, m, d := u.Date(); y != now.UTC().Year() || m != now.UTC().Month() || d != now.UTC().Day() {
		clock = u.Format("2006-01-02 15:04")
	}
	return stamp{ISO: u.Format(time.RFC3339), Clock: clock, Ago: ago(now.Sub(t))}
}

// ago says how long ago d was, coarsely.
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < 90*time.Second:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < 90*time.Minute:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// windowText says how many of the results the failure rule looks at
// failed.
func windowText(w WindowCounts) string {
	if w.Samples == 0 {
		return "no results"
	}
	t := fmt.Sprintf("%d of %d failed", w.Failures, min(w.Samples, w.Size))
	if w.Consecutive > 1 {
		t += fmt.Sprintf(", %d in a row", w.Consecutive)
	}
	return t
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func regionsText(names []string) string {
	if len(names) == 1 {
		return "region " + names[0]
	}
	return "regions " + strings.Join(names, ", ")
}

func checkStateText(s decide.CheckState) string {
	if s == "" {
		return "PENDING"
	}
	return string(s)
}

// checkClass maps a state to its CSS class; every unknown is grey, never
// green.
func checkClass(s decide.CheckState) string {
	switch s {
	case decide.StateOK:
		return "ok"
	case decide.StateDegraded:
		return "degraded"
	case decide.StateDown:
		return "down"
	default:
		return "unknown"
	}
}

func regionClass(s decide.RegionState) string {
	switch s {
	case decide.RegionLive:
		return "ok"
	case decide.RegionStale:
		return "degraded"
	default:
		return "unknown"
	}
}

func incidentClass(k decide.IncidentKind) string {
	switch k {
	case decide.IncidentDown:
		return "down"
	case decide.IncidentDegraded, decide.IncidentDisagreement, decide.IncidentShape, decide.IncidentForecast:
		return "degraded"
	default:
		return "unknown"
	}
}
