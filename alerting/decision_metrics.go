package alerting

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/probes/exposition"
)

// Outpost's own decisions as Prometheus series, so that dashboards can
// graph them and uptime is a PromQL query (avg_over_time of
// outpost_check_up). They are built at scrape time from each check's
// latest decision: no series objects are kept per check. The collector is
// an exposition.Source: served by exposition.Handler it writes the text
// formats itself, with each check's label rendered once (checkDecider.label).

var checkStates = []decide.CheckState{decide.StateOK, decide.StateDegraded, decide.StateDown, decide.StateUnknown}

const (
	helpCheckState = "1 for the check's current verdict (OK, DEGRADED, DOWN, UNKNOWN), 0 for the others; no series before its first verdict."
	helpFailing    = "Live regions failing the check by its failure rule, at its latest verdict."
	helpOpen       = "1 while an incident of the check is open, by kind (down, degraded, unknown, disagreement, shape, forecast); absent while none is."
	helpUp         = "1 unless the check's latest verdict is DOWN (UNKNOWN counts as up: silence is paged on the meta route, not as downtime); avg_over_time of it is the check's uptime."
)

// decisionCollector exports the latest decision of every check.
type decisionCollector struct {
	e                        *Evaluator
	state, failing, open, up *prometheus.Desc
	kinds                    []decide.IncidentKind
	stateL, kindL            []exposition.Labels

	mu    sync.Mutex // serializes scrapes; guards views
	views []decisionView
}

// decisionView is a check's latest decision as one scrape reads it.
type decisionView struct {
	id      string
	label   exposition.Labels
	state   decide.CheckState
	failing int
	open    uint64 // bit k: an incident of kinds[k] is open
}

func newDecisionCollector(e *Evaluator) *decisionCollector {
	c := &decisionCollector{
		e:       e,
		state:   prometheus.NewDesc("outpost_check_state", helpCheckState, []string{"check", "state"}, nil),
		failing: prometheus.NewDesc("outpost_check_regions_failing", helpFailing, []string{"check"}, nil),
		open:    prometheus.NewDesc("outpost_incident_open", helpOpen, []string{"check", "kind"}, nil),
		up:      prometheus.NewDesc("outpost_check_up", helpUp, []string{"check"}, nil),
		kinds:   decide.IncidentKinds(),
	}
	for _, s := range checkStates {
		c.stateL = append(c.stateL, exposition.MakeLabels("state", string(s)))
	}
	for _, k := range c.kinds {
		c.kindL = append(c.kindL, exposition.MakeLabels("kind", string(k)))
	}
	return c
}

func (c *decisionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.failing
	ch <- c.open
	ch <- c.up
}

// read calls f with the latest decision of every check that has one,
// holding each check's lock only to copy it.
func (c *decisionCollector) read(f func([]decisionView)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	views := c.views[:0]
	p := c.e.plan.Load()
	for _, chk := range p.cfg.Checks {
		cd := p.deciders[chk.ID]
		if cd == nil {
			continue
		}
		cd.mu.Lock()
		v := decisionView{id: chk.ID, label: cd.label, state: cd.last.State, failing: len(cd.last.Failing)}
		for i, k := range c.kinds {
			if in, ok := cd.state.Incident(k); ok && in.Open {
				v.open |= 1 << i
			}
		}
		cd.mu.Unlock()
		if v.state != "" { // no verdict yet: no series
			views = append(views, v)
		}
	}
	f(views)
	c.views = views[:0]
}

func (c *decisionCollector) Collect(ch chan<- prometheus.Metric) {
	c.read(func(views []decisionView) {
		for _, v := range views {
			for _, s := range checkStates {
				ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, b2f(s == v.state), v.id, string(s))
			}
			ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, float64(v.failing), v.id)
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, b2f(v.state != decide.StateDown), v.id)
			for i, k := range c.kinds {
				if v.open&(1<<i) != 0 {
					ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, 1, v.id, string(k))
				}
			}
		}
	})
}

// WriteMetrics writes what Collect sends; see exposition.Source.
func (c *decisionCollector) WriteMetrics(w *exposition.Writer) {
	c.read(func(views []decisionView) {
		w.Family("outpost_check_state", helpCheckState, exposition.Gauge)
		for i := range views {
			for j, s := range checkStates {
				w.Sample(b2f(s == views[i].state), views[i].label, c.stateL[j])
			}
		}
		w.Family("outpost_check_regions_failing", helpFailing, exposition.Gauge)
		for i := range views {
			w.Sample(float64(views[i].failing), views[i].label)
		}
		w.Family("outpost_check_up", helpUp, exposition.Gauge)
		for i := range views {
			w.Sample(b2f(views[i].state != decide.StateDown), views[i].label)
		}
		w.Family("outpost_incident_open", helpOpen, exposition.Gauge)
		for i := range views {
			for k := range c.kinds {
				if views[i].open&(1<<k) != 0 {
					w.Sample(1, views[i].label, c.kindL[k])
				}
			}
		}
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
