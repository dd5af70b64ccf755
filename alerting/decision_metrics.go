package alerting

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/decide"
)

// Outpost's own decisions as Prometheus series, so that dashboards can
// graph them and uptime is a PromQL query (avg_over_time of
// outpost_check_up). They are built at scrape time from each check's
// latest decision: no series objects are kept per check.

var checkStates = []decide.CheckState{decide.StateOK, decide.StateDegraded, decide.StateDown, decide.StateUnknown}

// decisionCollector exports the latest decision of every check.
type decisionCollector struct {
	e                        *Evaluator
	state, failing, open, up *prometheus.Desc
}

func newDecisionCollector(e *Evaluator) *decisionCollector {
	return &decisionCollector{
		e: e,
		state: prometheus.NewDesc("outpost_check_state",
			"1 for the check's current verdict (OK, DEGRADED, DOWN, UNKNOWN), 0 for the others; no series before its first verdict.",
			[]string{"check", "state"}, nil),
		failing: prometheus.NewDesc("outpost_check_regions_failing",
			"Live regions failing the check by its failure rule, at its latest verdict.", []string{"check"}, nil),
		open: prometheus.NewDesc("outpost_incident_open",
			"1 while an incident of the check is open, by kind (down, degraded, unknown, disagreement, shape, forecast); absent while none is.",
			[]string{"check", "kind"}, nil),
		up: prometheus.NewDesc("outpost_check_up",
			"1 unless the check's latest verdict is DOWN (UNKNOWN counts as up: silence is paged on the meta route, not as downtime); avg_over_time of it is the check's uptime.",
			[]string{"check"}, nil),
	}
}

func (c *decisionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.failing
	ch <- c.open
	ch <- c.up
}

func (c *decisionCollector) Collect(ch chan<- prometheus.Metric) {
	kinds := decide.IncidentKinds()
	for _, chk := range c.e.config().Checks {
		cd := c.e.plan.Load().deciders[chk.ID]
		if cd == nil {
			continue
		}
		cd.mu.Lock()
		d, st := cd.last.State, cd.state
		failing := len(cd.last.Failing)
		cd.mu.Unlock()
		if d == "" {
			continue // no verdict yet
		}
		for _, s := range checkStates {
			v := 0.0
			if s == d {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, chk.ID, string(s))
		}
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, float64(failing), chk.ID)
		up := 1.0
		if d == decide.StateDown {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, chk.ID)
		for _, k := range kinds {
			if in, ok := st.Incident(k); ok && in.Open {
				ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, 1, chk.ID, string(k))
			}
		}
	}
}
