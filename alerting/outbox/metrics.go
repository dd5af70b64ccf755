package outbox

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// What became of a notification for one notifier: the result label of
// outpost_notifications_total.
const (
	// resultDelivered: the destination accepted it.
	resultDelivered = "delivered"
	// resultFailed: the destination refused it for good; it was dropped.
	resultFailed = "failed"
	// resultRetried: an attempt failed and will be repeated (counted per
	// failed attempt).
	resultRetried = "retried"
	// resultDeduplicated: not queued, a repeat of what the notifier has.
	resultDeduplicated = "deduplicated"
	// resultDropped: pushed out of a full outbox queue.
	resultDropped = "dropped"
	// resultGrouped: a check incident's notification held by the grouping
	// stage; it goes out as part of its group's notification.
	resultGrouped = "grouped"
	// resultFolded: a check incident that opened in a storm and joined the
	// route's storm notification (also counted as grouped).
	resultFolded = "folded"
	// resultSuperseded: a queued notification made pointless before it
	// was sent: an update of an open incident replaced by a newer one, or
	// the triggers of an incident that resolved before they could be
	// delivered (and that resolve, when the notifier was never told of the
	// incident).
	resultSuperseded = "superseded"
	// resultHeld: a delivery waited for the notifier's events budget
	// (counted per wait).
	resultHeld = "held"
)

var resultNames = []string{resultDelivered, resultFailed, resultRetried, resultDeduplicated, resultDropped,
	resultGrouped, resultFolded, resultSuperseded, resultHeld}

// metrics are the pipeline's metrics; every label value comes from
// the notifier names of the configuration, created up front.
type metrics struct {
	results map[string]map[string]prometheus.Counter
	pending map[string]prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, names []string) (*metrics, error) {
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_notifications_total",
		Help: "Notifications by notifier and what became of them: delivered, failed (refused for good and dropped), retried (failed attempts that will be repeated), deduplicated (not sent again), dropped (outbox full), grouped (held for a group's notification), folded (joined a storm notification), superseded (made pointless before it was sent: an update replaced by a newer one, an incident that resolved before its trigger could be delivered), held (a delivery waited for the events budget).",
	}, []string{"notifier", "result"})
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_outbox_pending",
		Help: "Notifications in the outbox waiting for delivery, by notifier.",
	}, []string{"notifier"})
	if reg != nil {
		// An outbox reopened for a new configuration in the same process
		// takes over its predecessor's series: the counters go on, and
		// the pending gauges are set anew for the notifiers it has.
		var err error
		if results, err = register(reg, results); err != nil {
			return nil, err
		}
		if pending, err = register(reg, pending); err != nil {
			return nil, err
		}
		pending.Reset()
	}
	m := &metrics{results: map[string]map[string]prometheus.Counter{}, pending: map[string]prometheus.Gauge{}}
	for _, name := range names {
		m.results[name] = map[string]prometheus.Counter{}
		for _, r := range resultNames {
			m.results[name][r] = results.WithLabelValues(name, r)
		}
		m.pending[name] = pending.WithLabelValues(name)
	}
	return m, nil
}

func (m *metrics) result(notifier, result string) prometheus.Counter {
	return m.results[notifier][result]
}

// register registers c with reg, or returns the collector of the same
// description registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("registering metrics: %w", err)
	}
	return c, nil
}
