package decide

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// CheckState is a check's verdict across its regions.
type CheckState string

// Check states, from best to worst for the service; UNKNOWN is about the
// monitoring itself.
const (
	// StateOK: every live region with a result passes.
	StateOK CheckState = "OK"
	// StateDegraded: some live regions fail, fewer than the quorum needs.
	// A regional problem, reported on the warning route.
	StateDegraded CheckState = "DEGRADED"
	// StateDown: at least Decision.Need live regions fail. Pages.
	StateDown CheckState = "DOWN"
	// StateUnknown: fewer regions are live than a verdict needs (see
	// Decide). Silence is never reported as health; this pages on the
	// meta route.
	StateUnknown CheckState = "UNKNOWN"
)

// maxSummaryBytes caps Decision.Summary, Finding.Summary and
// Event.Summary: PagerDuty's summary field holds 1024 characters.
const maxSummaryBytes = 1024

// RegionHealth says whether one region is failing a check, from the
// region's recent results w and whether it was failing at the previous
// evaluation (prev). It is a pure function of its arguments.
//
// The region is failing when the failure rule is crossed now:
//   - consecutive: the latest failure.Consecutive results all failed;
//   - ratio: at least failure.Ratio × failure.Window of the latest
//     failure.Window results failed. While fewer than Window results exist
//     (after a start or a restart), the missing ones count as passes: the
//     rule needs as many failures then as it does later, so one failed
//     first probe never trips a region, and a total outage trips it after
//     ceil(Ratio × Window) probes, as it would at any other time.
//
// Once failing (prev), the region stays failing until its latest
// recovery.Consecutive results all passed and the failure rule is no
// longer crossed (hysteresis: a region on the edge of the rule does not
// flap). The window must keep at least recovery.Consecutive samples for a
// region to recover; Window keeps max(failure window, 10) at least.
//
// A nil failure rule means checks.DefaultConsecutive consecutive failures;
// a nil recovery rule means checks.DefaultRecovery passes. why is empty
// when the region is not failing; otherwise it says which rule holds and
// ends with the latest failure's reason, for instance
// "3 consecutive failures: status 503, want 200" or
// "4 of the last 10 probes failed (ratio 0.30): status 500, want 200".
func RegionHealth(w Window, failure *checks.FailureRule, recovery *checks.RecoveryRule, prev bool) (failing bool, why string) {
	s := judged(w.Samples)
	failRun, passRun := runs(s)
	reason := latestFailure(s)
	if tripped, rule := crossed(s, failure, failRun); tripped {
		return true, withReason(rule, reason)
	}
	need := checks.DefaultRecovery
	if recovery != nil && recovery.Consecutive > 0 {
		need = recovery.Consecutive
	}
	if prev && passRun < need {
		rule := fmt.Sprintf("recovering: %d of %d passes in a row", passRun, need)
		if reason != "" {
			rule += "; last failure"
		}
		return true, withReason(rule, reason)
	}
	return false, ""
}

// judged returns the samples a failure rule counts: all but the late ones
// (Sample.Late), which are history. It copies only when there are some.
func judged(s []Sample) []Sample {
	late := func(x Sample) bool { return x.Late }
	if !slices.ContainsFunc(s, late) {
		return s
	}
	return slices.DeleteFunc(slices.Clone(s), late)
}

// crossed reports whether samples cross the failure rule now, and the
// rule's part of the why.
func crossed(s []Sample, f *checks.FailureRule, failRun int) (bool, string) {
	if f != nil && f.Ratio > 0 && f.Window > 0 {
		recent := s[max(len(s)-f.Window, 0):]
		failures := 0
		for i := range recent {
			if !recent[i].OK {
				failures++
			}
		}
		// The tolerance keeps 3 failures of 10 at ratio 0.3 tripping
		// despite 0.3 having no exact binary form.
		if failures == 0 || float64(failures)+1e-9 < f.Ratio*float64(f.Window) {
			return false, ""
		}
		if len(recent) < f.Window {
			return true, fmt.Sprintf("%d of the first %d probes failed (ratio %.2f over %d)", failures, len(recent), f.Ratio, f.Window)
		}
		return true, fmt.Sprintf("%d of the last %d probes failed (ratio %.2f)", failures, len(recent), f.Ratio)
	}
	n := checks.DefaultConsecutive
	if f != nil && f.Consecutive > 0 {
		n = f.Consecutive
	}
	switch {
	case failRun < n:
		return false, ""
	case failRun == 1:
		return true, "1 failed probe"
	}
	return true, fmt.Sprintf("%d consecutive failures", failRun)
}

// runs returns the number of failed and of passed results in a row at the
// end of s; one of them is 0.
func runs(s []Sample) (failRun, passRun int) {
	for i := len(s) - 1; i >= 0 && !s[i].OK; i-- {
		failRun++
	}
	for i := len(s) - 1; i >= 0 && s[i].OK; i-- {
		passRun++
	}
	return failRun, passRun
}

// latestFailure returns the reason of the newest failed sample, or "".
func latestFailure(s []Sample) string {
	for i := len(s) - 1; i >= 0; i-- {
		if !s[i].OK {
			return s[i].Reason
		}
	}
	return ""
}

func withReason(rule, reason string) string {
	if reason == "" {
		return rule
	}
	return rule + ": " + reason
}

// RegionInput is what Decide needs to know about one region of a check.
type RegionInput struct {
	// Live is whether the region counts: its agents are LIVE (see
	// RegionState) and it has a result for the check recent enough to
	// judge by. A region that is not live leaves the quorum's denominator.
	Live bool
	// Failing and Why are RegionHealth's verdict on the region's window.
	Failing bool
	Why     string
	// Last is the region's latest result for the check (Window.Last), nil
	// when there is none or it is older than the check's max_result_age.
	// A live region without one does not count: a region reporting
	// nothing current for a check is not healthy, and old news is not
	// the present.
	Last *wire.Result
	// Shape are the region's current shape findings, and Forecast a spike
	// it expects (see DetectLatency, DetectSeries, ForecastSpike).
	Shape    []shape.Finding
	Forecast *shape.Finding
	// ShapeJudged is whether Shape and Forecast come from a verdict (see
	// shapeTracker.judged); without one, their absence means nothing.
	ShapeJudged bool
}

// Decision is a check's verdict across its regions at one evaluation. It
// holds copies only and marshals to JSON as its tags say.
type Decision struct {
	Check string     `json:"check"`
	State CheckState `json:"state"`
	// Regions is how many regions the check is configured for.
	Regions int `json:"regions"`
	// MinLive is how many live regions a verdict other than UNKNOWN needs:
	// the quorum applied to the configured regions (Quorum.Need(Regions)).
	MinLive int `json:"min_live"`
	// Need is how many failing live regions make the check DOWN: the
	// quorum applied to the live regions (Quorum.Need(len(Live))).
	Need int `json:"need"`
	// Live, Failing, Stale and NoData are sorted region names. Failing is a
	// subset of Live. Stale regions are not LIVE; NoData regions are LIVE
	// but have no fresh result for the check (none yet, or the latest is
	// older than max_result_age). Neither counts towards any quorum.
	Live    []string `json:"live"`
	Failing []string `json:"failing"`
	Stale   []string `json:"stale"`
	NoData  []string `json:"no_data"`
	// Why says, for each failing region, why it is failing (RegionInput.Why).
	Why map[string]string `json:"why,omitempty"`
	// Disagreement is what CompareDNS or CompareAddresses found between
	// the live regions' latest results, when the check's on_disagreement
	// is not ignore; nil when they agree.
	Disagreement *Finding `json:"disagreement,omitempty"`
	// Shape gathers the live regions' shape findings, with their scope;
	// Forecast the spikes they expect. Nil when there are none.
	Shape    *ShapeReport `json:"shape,omitempty"`
	Forecast *ShapeReport `json:"forecast,omitempty"`
	// ShapeUnjudged lists the live regions whose shape has no verdict yet
	// (after a restart, or while their baseline is cold): no finding from
	// them is not the all-clear.
	ShapeUnjudged []string `json:"shape_unjudged,omitempty"`
	// Summary is one line of at most 1024 bytes for a page, such as
	// "web-home DOWN from 3/3 regions: us-east status 503, want 200; ...".
	Summary string `json:"summary"`
}

// Decide turns the state of each region of c into the check's verdict. It
// is a pure function of its arguments.
//
// The regions are c.Regions (the keys of in when c.Regions is empty); a
// region missing from in is stale, an entry of in for another region is
// ignored. With L live regions (RegionInput.Live and a Last result) of the
// check's R configured ones, of which F are failing:
//   - UNKNOWN when L < c.Quorum.Need(R), and always when L is 0: the check
//     cannot be judged with fewer live regions than its quorum needs when
//     every region is live. For an integer quorum N this is L < N; for
//     majority of 3 regions, L < 2; for "all", any region missing. A
//     single vantage point thus never pages DOWN on its own when the
//     check runs in several regions.
//   - DOWN when F >= c.Quorum.Need(L);
//   - DEGRADED when 0 < F < c.Quorum.Need(L);
//   - OK when F is 0.
//
// Decide also compares the live regions' latest results (CompareDNS,
// CompareAddresses) and sets Decision.Disagreement, and gathers their
// shape findings into Decision.Shape and Decision.Forecast.
func Decide(c *checks.Check, in map[string]RegionInput) Decision {
	regions := c.Regions
	if len(regions) == 0 {
		regions = slices.Sorted(maps.Keys(in))
	}
	d := Decision{Check: c.ID, Regions: len(regions), Live: []string{}, Failing: []string{}, Stale: []string{}, NoData: []string{}}
	last := map[string]*wire.Result{}
	for _, r := range regions {
		ri, ok := in[r]
		switch {
		case !ok || !ri.Live:
			d.Stale = append(d.Stale, r)
		case ri.Last == nil:
			d.NoData = append(d.NoData, r)
		default:
			d.Live = append(d.Live, r)
			last[r] = ri.Last
			if ri.Failing {
				d.Failing = append(d.Failing, r)
				if d.Why == nil {
					d.Why = map[string]string{}
				}
				d.Why[r] = ri.Why
			}
		}
	}
	for _, s := range [][]string{d.Live, d.Failing, d.Stale, d.NoData} {
		slices.Sort(s)
	}
	d.MinLive = c.Quorum.Need(len(regions))
	d.Need = c.Quorum.Need(len(d.Live))
	switch {
	case len(d.Live) == 0 || len(d.Live) < d.MinLive:
		d.State = StateUnknown
	case len(d.Failing) >= d.Need:
		d.State = StateDown
	case len(d.Failing) > 0:
		d.State = StateDegraded
	default:
		d.State = StateOK
	}
	d.Disagreement = CompareDNS(c, last)
	if d.Disagreement == nil {
		d.Disagreement = CompareAddresses(c, last)
	}
	for _, r := range d.Live {
		if c.Shape != nil && !in[r].ShapeJudged {
			d.ShapeUnjudged = append(d.ShapeUnjudged, r)
		}
	}
	d.Shape = reportShapes(c, &d, in, false)
	d.Forecast = reportShapes(c, &d, in, true)
	d.Summary = wire.Clip(summarize(&d, in, c.Failure != nil && c.Failure.Ratio > 0), maxSummaryBytes)
	return d
}

// summarize writes the decision's one-line summary.
func summarize(d *Decision, in map[string]RegionInput, ratio bool) string {
	var b strings.Builder
	switch d.State {
	case StateDown:
		fmt.Fprintf(&b, "%s DOWN from %d/%d regions: ", d.Check, len(d.Failing), len(d.Live))
		writeFailing(&b, d, in, ratio)
	case StateDegraded:
		fmt.Fprintf(&b, "%s DEGRADED in %d/%d regions: ", d.Check, len(d.Failing), len(d.Live))
		writeFailing(&b, d, in, ratio)
	case StateUnknown:
		fmt.Fprintf(&b, "%s UNKNOWN: %d of %d regions live, need %d", d.Check, len(d.Live), d.Regions, d.MinLive)
		if len(d.Failing) > 0 {
			b.WriteString("; failing: ")
			writeFailing(&b, d, in, ratio)
		}
	default:
		fmt.Fprintf(&b, "%s OK in %d/%d regions", d.Check, len(d.Live), len(d.Live))
	}
	if len(d.Stale) > 0 {
		b.WriteString(" (stale: " + strings.Join(d.Stale, ", ") + ")")
	}
	if len(d.NoData) > 0 {
		b.WriteString(" (no fresh result: " + strings.Join(d.NoData, ", ") + ")")
	}
	return b.String()
}

// writeFailing writes "region reason; region reason" for the failing
// regions: the latest result's reason when it failed, else the region's
// why (a ratio rule can hold while the latest probe passed). Under a ratio
// rule the why is always given ("4 of the last 10 probes failed (ratio
// 0.30): status 500, want 201"): "fails 30% of the time" is the news, and
// the page must not read differently depending on whether the probe that
// tipped the decision failed.
func writeFailing(b *strings.Builder, d *Decision, in map[string]RegionInput, ratio bool) {
	for i, r := range d.Failing {
		if i > 0 {
			b.WriteString("; ")
		}
		ri := in[r]
		reason := ri.Why
		if !ratio && ri.Last != nil && !ri.Last.OK && ri.Last.Reason != "" {
			reason = ri.Last.Reason
		}
		if reason == "" {
			reason = "failing"
		}
		b.WriteString(r + " " + reason)
	}
}
