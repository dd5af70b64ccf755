package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/ratelog"
	"github.com/outposthq/outpost/probes/wire"
)

// Bounds of the confirmation requests an agent takes from the bus.
const (
	// maxConfirmMsg is the largest request taken, as for the HTTP poll.
	maxConfirmMsg = 64 << 10
	// confirmPendingMsgs and confirmPendingBytes bound the requests
	// waiting to be handled; past them NATS drops the newest (a slow
	// consumer, logged through the connection's error handler).
	confirmPendingMsgs  = 256
	confirmPendingBytes = 4 << 20
)

// BusConfirmer takes the evaluators' confirmation requests for its region
// from the bus (bus.ConfirmSubject, core NATS) and runs them as the
// ConfirmPoller runs what it gets over HTTP. Requests that are too large or
// not a wire.ConfirmRequest are dropped, counted and logged at most once a
// minute. Anyone allowed to publish on the subject can make the region's
// agents run their checks now (never more than their in-flight limit): the
// NATS permissions must allow it to evaluators only.
type BusConfirmer struct {
	Conn   *nats.Conn
	Region string
	// RunNow runs the requested checks, as ConfirmPoller.RunNow.
	RunNow func(req wire.ConfirmRequest)
	// Registerer receives outpost_agent_bus_confirmations_total; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Clock times the log limiter; nil means clock.Real.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Run subscribes and handles requests until ctx ends. It returns an error
// if it cannot subscribe or register its metric, nil when ctx ends.
func (c *BusConfirmer) Run(ctx context.Context) error {
	if c.Conn == nil || c.RunNow == nil || c.Region == "" {
		return errors.New("bus confirmations: a connection, a region and RunNow are required")
	}
	clk, log := c.Clock, c.Logger
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	count := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_agent_bus_confirmations_total",
		Help: "Confirmation requests received from the bus, by result: run, empty (nothing asked), oversized or malformed (dropped).",
	}, []string{"result"})
	for _, r := range []string{"run", "empty", "oversized", "malformed"} {
		count.WithLabelValues(r)
	}
	if c.Registerer != nil {
		if err := c.Registerer.Register(count); err != nil {
			return fmt.Errorf("bus confirmations: %w", err)
		}
	}
	badLog := ratelog.Limiter{Every: logEvery}
	subject := bus.ConfirmSubject(c.Region)
	sub, err := c.Conn.Subscribe(subject, func(m *nats.Msg) {
		// NATS calls this from one goroutine per subscription: the
		// limiter and the decoding need no lock.
		result, err := c.handle(m.Data)
		count.WithLabelValues(result).Inc()
		if err != nil {
			if ok, n := badLog.Allow(clk.Now()); ok {
				log.Warn("bus: dropping a confirmation request", "subject", subject, "err", err, "dropped_since_last_log", n)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("bus confirmations: subscribe %s: %w", subject, err)
	}
	if err := sub.SetPendingLimits(confirmPendingMsgs, confirmPendingBytes); err != nil {
		sub.Unsubscribe()
		return fmt.Errorf("bus confirmations: %w", err)
	}
	<-ctx.Done()
	// No request is handed over after this; one in hand finishes, as a
	// poll answered during shutdown does.
	sub.Unsubscribe()
	return nil
}

// handle runs one request and returns its result label, with why it was
// dropped.
func (c *BusConfirmer) handle(data []byte) (string, error) {
	if len(data) > maxConfirmMsg {
		return "oversized", fmt.Errorf("%d bytes, more than the %d a request may have", len(data), maxConfirmMsg)
	}
	var req wire.ConfirmRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return "malformed", fmt.Errorf("not a confirmation request: %w", err)
	}
	if len(req.Checks) == 0 {
		return "empty", nil
	}
	c.RunNow(req)
	return "run", nil
}
