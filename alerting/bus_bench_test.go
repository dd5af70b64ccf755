package alerting

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// BenchmarkIngestBus is BenchmarkIngest over the bus: the same signed
// 500-result batches of one agent, published to a real NATS server on
// loopback beforehand (timer stopped), then consumed by the evaluator's
// durable consumer, verified, ingested and acked one at a time, as they
// are in production. Run it beside BenchmarkIngest to compare:
//
//	go test -run '^$' -bench 'BenchmarkIngest(Bus)?$' -benchtime 300x ./alerting/
//
// The timer runs from the start of Run (stream and consumer ensured) to
// the last message applied: what it measures includes the delivery from
// the server, which BenchmarkIngest's in-process handler does not pay.
func BenchmarkIngestBus(b *testing.B) {
	srv := bustest.Start(b, bustest.Options{})
	env := map[string]string{"KEY_US": string(keyUS), "KEY_US2": string(keyUS2), "KEY_EU": string(keyEU)}
	cfg, err := checks.LoadBytes("test.yaml", []byte(testConfig+fmt.Sprintf("bus:\n  nats: {url: %q, max_bytes: 512MiB}\n", srv.URL)),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatal(err)
	}
	clk := clocktest.New(t0)
	_, js := dialBus(b, srv.URL, "bench")
	reg := prometheus.NewRegistry()
	ev, err := New(cfg, Options{Clock: clk, Registerer: reg, Bus: js, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ev.Close() })
	if _, err := bus.EnsureStream(context.Background(), js, cfg.Bus.NATS); err != nil {
		b.Fatal(err)
	}

	f := &fixture{t: b, cfg: cfg, clock: clk}
	tmpl := f.template(b, "a1", benchResults("us-east", "a1"))
	subject := bus.ResultsSubject(checks.Shard("web", cfg.Bus.NATS.Shards), "us-east")
	for i := range b.N {
		body := bytes.Clone(tmpl.body)
		strconv.AppendUint(body[:tmpl.at], seqBase+uint64(i+1), 10)
		// Signed on the real clock, as the server stores on it.
		ts, sig := wire.Sign(keyUS, time.Now(), body)
		msg := nats.NewMsg(subject)
		msg.Data = body
		msg.Header.Set(wire.HeaderRegion, "us-east")
		msg.Header.Set(wire.HeaderAgent, "a1")
		msg.Header.Set(wire.HeaderTimestamp, ts)
		msg.Header.Set(wire.HeaderSignature, sig)
		msg.Header.Set(jetstream.MsgIDHeader, bus.MsgID("us-east", "a1", seqBase+uint64(i+1)))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("publishing did not complete")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	go func() { defer close(done); ev.Run(ctx) }()
	applied := ev.bus.messages[busApplied]
	for poll := time.Microsecond; counterValue(applied) < float64(b.N); poll = min(2*poll, time.Millisecond) {
		time.Sleep(poll)
	}
	b.StopTimer()
	cancel()
	<-done
	if n := counterValue(ev.bus.messages[busApplied]); n != float64(b.N) {
		b.Fatalf("%v messages applied, want %d", n, b.N)
	}
	reportResultsPerSecond(b)
	b.ReportMetric(float64(len(tmpl.body))/benchBatchSize, "bytes/result")
}

// counterValue reads a counter without the test-only helpers' allocation
// of a registry.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
