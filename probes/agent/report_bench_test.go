package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/wire"
)

// benchChecks is how many checks the results of the publish benchmarks
// come from: enough for every one of 64 shards to get some.
const benchChecks = 1000

// benchPublish pushes b.N results through a Reporter made with opts (on
// the real clock, default batch size, a 10ms batch delay so that the last
// batch does not wait) and reports results/s from the first Submit until
// the spool is empty: sealing, spooling, sending and the answers.
func benchPublish(b *testing.B, opts ReporterOptions) {
	opts.Key, opts.Region, opts.Agent, opts.ConfigDigest = repKey, "us-east", "agent-1", "0123456789abcdef"
	opts.Reporting = checks.Reporting{Heartbeat: time.Minute, BatchSize: checks.DefaultBatchSize, BatchDelay: 10 * time.Millisecond, SpoolSize: 1 << 30}
	opts.SpoolDir = b.TempDir()
	opts.Registerer = prometheus.NewRegistry()
	r, err := NewReporter(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	res := wire.Result{Type: "http", OK: true, Reason: "status 200", Time: time.Now(), Duration: 0.042,
		Phases: wire.Phases{Resolve: 0.001, Connect: 0.01, TLS: 0.02, Processing: 0.01, Transfer: 0.001}}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for len(r.queue) == cap(r.queue) {
			runtime.Gosched() // Submit drops when the queue is full
		}
		res.Check = fmt.Sprintf("check-%04d", i%benchChecks)
		r.Submit(res)
	}
	for {
		r.seqMu.Lock()
		sealed := value(r.metrics.results)
		empty := r.evals[0].spool.Len() == 0
		r.seqMu.Unlock()
		if sealed == float64(b.N) && empty {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "results/s")
	b.ReportMetric(value(r.evals[0].sent), "batches")
}

// BenchmarkBusPublish: results through a Reporter to JetStream on an
// in-process NATS server (file storage), 64 shards.
func BenchmarkBusPublish(b *testing.B) {
	srv := bustest.Start(b, bustest.Options{})
	n := &checks.NATSBus{URL: srv.URL, Stream: "OUTPOST", Shards: checks.DefaultShards, Replicas: 1,
		Retention: time.Hour, MaxBytes: 1 << 30, Duplicates: time.Minute}
	nc, err := bus.Connect(n, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bus.EnsureStream(context.Background(), js, n); err != nil {
		b.Fatal(err)
	}
	benchPublish(b, ReporterOptions{Bus: &BusOptions{JetStream: js, Stream: n.Stream, Shards: n.Shards}})
}

// BenchmarkHTTPPublish: the same through a Reporter to one evaluator over
// loopback HTTP, an endpoint that reads each batch and answers 200 (the
// evaluator's own ingest is measured by outpost-bench ingest).
func BenchmarkHTTPPublish(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	benchPublish(b, ReporterOptions{Evaluators: []string{srv.URL}})
}
