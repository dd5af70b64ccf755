package alerting

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// benchBatchSize is the agents' default batch size.
const benchBatchSize = 500

// benchResults are realistic results of an HTTP check: phases, resolved
// addresses, the connected address and a TLS observation, about 600 bytes
// of JSON each.
func benchResults(region, agent string) []wire.Result {
	rs := make([]wire.Result, benchBatchSize)
	for i := range rs {
		ok := i%10 != 0
		r := wire.Result{
			V: 1, Check: "web", Type: "http", Region: region, Agent: agent, Seq: uint64(i + 1),
			// Two results a second: all within wire.MaxClockSkew of the
			// clock, which refuses results probed further ahead.
			Time: t0.Add(time.Duration(i/2) * time.Second), OK: ok, Duration: 0.183,
			Phases: wire.Phases{Resolve: 0.004, Connect: 0.021, TLS: 0.043, Processing: 0.101, Transfer: 0.014},
			Observed: wire.Observed{
				ResolvedIPs:   []string{"203.0.113.10", "203.0.113.11"},
				ConnectedAddr: "203.0.113.10:443",
				StatusCode:    200,
				HTTPVersion:   "HTTP/2.0",
				BodyBytes:     18234,
				Headers:       map[string]string{"X-Served-By": "web-3"},
				TLS:           &wire.TLSObservation{Version: "TLS 1.3", ServerName: "www.example.com", NotAfter: t0.Add(60 * 24 * time.Hour), Subject: "CN=www.example.com", Issuer: "CN=R11,O=Let's Encrypt,C=US"},
			},
		}
		if !ok {
			r.Reason = "status 503, want 200"
			r.Observed.StatusCode = 503
		}
		rs[i] = r
	}
	return rs
}

// signedBatch is the body and headers of one batch, ready to send.
type signedBatch struct {
	body    []byte
	ts, sig string
	region  string
	agent   string
}

// batchTemplate is a marshalled batch whose sequence number can be
// rewritten in place, so that a benchmark does not pay for the agent's
// encoding of every batch.
type batchTemplate struct {
	f     *fixture
	agent string
	body  []byte
	at    int // offset of the 19 sequence digits
}

// seqBase has 19 digits, as has every seqBase+n below 9e18.
const seqBase = 1_000_000_000_000_000_000

func (f *fixture) template(b testing.TB, agent string, results []wire.Result) *batchTemplate {
	batch := f.batch("us-east", seqBase, results...)
	batch.Agent = agent
	body := mustJSON(b, batch)
	at := bytes.Index(body, []byte(fmt.Sprintf(`"seq":%d`, uint64(seqBase))))
	if at < 0 {
		b.Fatal("no seq in the batch")
	}
	return &batchTemplate{f: f, agent: agent, body: body, at: at + len(`"seq":`)}
}

// next returns the batch with sequence number seqBase+n, signed now.
func (t *batchTemplate) next(n uint64) signedBatch {
	body := bytes.Clone(t.body)
	strconv.AppendUint(body[:t.at], seqBase+n, 10)
	ts, sig := wire.Sign(keyUS, t.f.clock.Now(), body)
	return signedBatch{body: body, ts: ts, sig: sig, region: "us-east", agent: t.agent}
}

func serve(b *testing.B, h http.Handler, s signedBatch) {
	req := httptest.NewRequest(http.MethodPost, wire.ResultsPath, bytes.NewReader(s.body))
	req.Header.Set(wire.HeaderRegion, s.region)
	req.Header.Set(wire.HeaderAgent, s.agent)
	req.Header.Set(wire.HeaderTimestamp, s.ts)
	req.Header.Set(wire.HeaderSignature, s.sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		b.Fatalf("answer %d %q", rec.Code, rec.Body.String())
	}
}

// BenchmarkIngest sends signed 500-result batches through the real Handler,
// one at a time. Batches are signed ahead in chunks with the timer stopped,
// since signing is the agent's work; verifying is counted.
func BenchmarkIngest(b *testing.B) {
	f := newFixture(b)
	h := f.ev.Handler()
	tmpl := f.template(b, "a1", benchResults("us-east", "a1"))
	const chunk = 32
	pending := make([]signedBatch, 0, chunk)
	seq := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(pending) == 0 {
			b.StopTimer()
			for range chunk {
				seq++
				pending = append(pending, tmpl.next(seq))
			}
			b.StartTimer()
		}
		serve(b, h, pending[0])
		pending = pending[1:]
	}
	reportResultsPerSecond(b)
	b.ReportMetric(float64(len(tmpl.body))/benchBatchSize, "bytes/result")
}

// BenchmarkIngestParallel sends batches from GOMAXPROCS agents at once
// (run with -cpu 2 for the two-core goal). Each goroutine copies and signs
// its next batch inline, so the figure includes that agent-side work and
// is a lower bound of the evaluator's throughput.
func BenchmarkIngestParallel(b *testing.B) {
	benchmarkParallel(b, newFixture(b))
}

// BenchmarkIngestParallelDataDir is BenchmarkIngestParallel with the
// sequence memory on disk and four agents per CPU: every accepted batch
// waits for an fsync, shared by the agents that commit meanwhile.
func BenchmarkIngestParallelDataDir(b *testing.B) {
	b.SetParallelism(4)
	benchmarkParallel(b, newFixture(b, withDataDir(b.TempDir())))
}

func benchmarkParallel(b *testing.B, f *fixture) {
	h := f.ev.Handler()
	var agents atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		agent := fmt.Sprintf("agent-%d", agents.Add(1))
		tmpl := f.template(b, agent, benchResults("us-east", agent))
		seq := uint64(0)
		for pb.Next() {
			seq++
			serve(b, h, tmpl.next(seq))
		}
	})
	reportResultsPerSecond(b)
}

func reportResultsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)*benchBatchSize/b.Elapsed().Seconds(), "results/s")
}
