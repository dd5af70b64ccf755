package status

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/shape"
)

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
