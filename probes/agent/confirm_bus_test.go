package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// TestBusConfirmations: a request on the region's subject reaches RunNow;
// another region's, oversized, malformed and empty ones do not, and are
// counted, the drops logged once.
func TestBusConfirmations(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, bustest.Options{})
	nc, err := bus.Connect(b.cfg, "agent", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	got := make(chan wire.ConfirmRequest, 10)
	logs, reg := &repLogs{}, prometheus.NewRegistry()
	c := &BusConfirmer{Conn: nc, Region: "us-east", RunNow: func(r wire.ConfirmRequest) { got <- r }, Registerer: reg,
		Clock: newFakeClock(repEpoch), Logger: slog.New(logs)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	pub, err := bus.Connect(b.cfg, "evaluator", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	count := func(result string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "outpost_agent_bus_confirmations_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	// The subscription may not be in place yet: publish until it is.
	want := wire.ConfirmRequest{Checks: []string{"web-home"}, Runs: map[string]int{"web-home": 2}}
	body, _ := json.Marshal(want)
	clocktest.WaitFor(t, repWait, "the request reaches the agent", func() bool {
		pub.Publish(bus.ConfirmSubject("us-east"), body)
		pub.Flush()
		return len(got) > 0
	})
	if r := <-got; !slices.Equal(r.Checks, want.Checks) || r.RunsOf("web-home") != 2 {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	other, _ := json.Marshal(wire.ConfirmRequest{Checks: []string{"other-region"}})
	pub.Publish(bus.ConfirmSubject("eu-west"), other)           // another region's
	pub.Publish(bus.ConfirmSubject("us-east"), []byte("{oops")) // malformed
	pub.Publish(bus.ConfirmSubject("us-east"), make([]byte, maxConfirmMsg+1))
	pub.Publish(bus.ConfirmSubject("us-east"), []byte(`{"checks":[]}`))
	// A last valid one: once it is run, everything before it was handled.
	pub.Publish(bus.ConfirmSubject("us-east"), []byte(`{"checks":["last"]}`))
	pub.Flush()
	for last := false; !last; {
		select {
		case r := <-got:
			switch r.Checks[0] {
			case "last":
				last = true
			case "web-home": // a repeat of the first, published before it arrived
			default:
				t.Fatalf("ran %v", r.Checks)
			}
		case <-time.After(repWait):
			t.Fatal("the last request never ran")
		}
	}
	if count("malformed") != 1 || count("oversized") != 1 || count("empty") != 1 {
		t.Fatalf("malformed %v, oversized %v, empty %v: want 1 each", count("malformed"), count("oversized"), count("empty"))
	}
	if n := logs.count("dropping a confirmation request"); n != 1 {
		t.Errorf("%d logs of dropped requests, want 1 (rate-limited)", n)
	}
}
