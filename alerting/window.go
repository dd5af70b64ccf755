package alerting

import (
	"maps"
	"slices"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Window bounds.
const (
	// minWindow is the fewest results kept per (check, region), so that a
	// status page shows some history even under a consecutive: 1 rule.
	minWindow = 10
	// maxWindow caps the results kept per (check, region); the loader
	// refuses larger failure windows.
	maxWindow = 1000
)

// window holds the recent results of one (check, region). Its memory is
// fixed at creation except for the last result's observations, which are
// bounded by the batch size. It is guarded by its region's mutex.
type window struct {
	check  string
	typ    string
	region string
	// ruleSize is Window.Size: the samples the failure rule considers.
	ruleSize int
	// horizon is the check's MaxResultAge: a result that arrives older
	// is kept as history but never judged.
	horizon time.Duration
	// recovery is the check's recovery run length.
	recovery int
	ring     []decide.Sample
	next     int // where the next sample goes
	n        int // samples held
	last     wire.Result
	hasLast  bool
}

func newWindow(c *checks.Check, region string) *window {
	f := c.Failure
	if f == nil {
		f = &checks.FailureRule{Consecutive: checks.DefaultConsecutive}
	}
	recovery := checks.DefaultRecovery
	if c.Recovery != nil {
		recovery = c.Recovery.Consecutive
	}
	// Room for the recovery rule too: a region recovering after N passes
	// must be able to see N passes.
	size := max(f.Window, f.Consecutive, recovery+1, minWindow)
	size = min(size, maxWindow)
	rule := size
	if f.Window > 0 {
		rule = min(f.Window, size)
	}
	return &window{check: c.ID, typ: c.Type(), region: region, ruleSize: rule, horizon: c.MaxResultAge, recovery: recovery, ring: make([]decide.Sample, size)}
}

// sameShape reports whether w can stand for o, a window built for the
// same (check, region) from another version of the check: it holds the
// same results for the same rules, so a reload keeps it.
func (w *window) sameShape(o *window) bool {
	return w.check == o.check && w.typ == o.typ && w.region == o.region && w.ruleSize == o.ruleSize &&
		w.horizon == o.horizon && w.recovery == o.recovery && len(w.ring) == len(o.ring)
}

// late reports whether r, received at received, is old news: older than
// the window's horizon, or probed before fence (when its region came back
// from a silence; see regionState.returned).
func (w *window) late(r *wire.Result, received, fence time.Time) bool {
	return (w.horizon > 0 && received.Sub(r.Time) > w.horizon) || r.Time.Before(fence)
}

// add appends r, overwriting the oldest sample when the ring is full. A
// late result (see late) is kept as history only: it is not the window's
// last result and no failure rule counts it. add allocates only to cut
// an overlong reason.
func (w *window) add(r *wire.Result, agent string, received time.Time, late bool) {
	w.ring[w.next] = decide.Sample{
		Time:     r.Time,
		Received: received,
		Agent:    agent,
		OK:       r.OK,
		Reason:   wire.Clip(r.Reason, wire.MaxReasonBytes),
		Duration: r.Duration,
		Late:     late,
	}
	w.next = (w.next + 1) % len(w.ring)
	w.n = min(w.n+1, len(w.ring))
	if !late {
		w.last = *r
		w.hasLast = true
	}
}

// recentFailure reports whether one of the latest n samples failed.
func (w *window) recentFailure(n int) bool {
	for i := w.n - 1; i >= 0 && i >= w.n-n; i-- {
		if s := w.at(i); !s.OK && !s.Late {
			return true
		}
	}
	return false
}

// at returns the i-th sample held, oldest first.
func (w *window) at(i int) *decide.Sample {
	return &w.ring[(w.next-w.n+i+len(w.ring))%len(w.ring)]
}

// counts returns the failures and passes among the latest ruleSize
// samples that arrived in time, and the run of failures at their end.
// Late samples are skipped, not counted.
func (w *window) counts() (failures, passes, consecutive int) {
	for i := w.n - 1; i >= 0 && failures+passes < w.ruleSize; i-- {
		switch s := w.at(i); {
		case s.Late:
		case s.OK:
			passes++
		default:
			failures++
		}
	}
	for i := w.n - 1; i >= 0; i-- {
		s := w.at(i)
		if s.Late {
			continue
		}
		if s.OK {
			break
		}
		consecutive++
	}
	return failures, passes, consecutive
}

// view copies the window out.
func (w *window) view() decide.Window {
	v := decide.Window{Check: w.check, Region: w.region, Size: w.ruleSize, Samples: make([]decide.Sample, w.n)}
	for i := range w.n {
		v.Samples[i] = *w.at(i)
	}
	v.Failures, v.Passes, v.Consecutive = w.counts()
	if w.hasLast {
		last := cloneResult(w.last)
		v.Last = &last
	}
	return v
}

// cloneResult copies r deeply enough that the copy shares no slice or map
// with the evaluator's state.
func cloneResult(r wire.Result) wire.Result {
	o := &r.Observed
	o.ResolvedIPs = slices.Clone(o.ResolvedIPs)
	o.Headers = maps.Clone(o.Headers)
	if o.TLS != nil {
		t := *o.TLS
		o.TLS = &t
	}
	o.Steps = slices.Clone(o.Steps)
	o.DNS = slices.Clone(o.DNS)
	for i := range o.DNS {
		o.DNS[i].Answers = slices.Clone(o.DNS[i].Answers)
		o.DNS[i].CNAMEs = slices.Clone(o.DNS[i].CNAMEs)
	}
	return r
}
