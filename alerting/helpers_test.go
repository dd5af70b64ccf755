package alerting

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// Test keys; ap-south deliberately has none.
var (
	keyUS    = []byte("test-key-us-east-0123456789")
	keyUS2   = []byte("test-key-us-east-rotated-987")
	keyEU    = []byte("test-key-eu-west-0123456789")
	keyOther = []byte("test-key-nobody-has-this-one")
)

const testConfig = `version: 1
regions: [us-east, eu-west, ap-south]
agents:
  - {region: us-east, key: "${KEY_US}"}
  - {region: us-east, key: "${KEY_US2}"}
  - {region: eu-west, key: "${KEY_EU}"}
reporting: {heartbeat: 10s, stale_after: 30s}
checks:
  - id: web
    failure: {consecutive: 3}
    http: {url: "http://127.0.0.1:1/"}
  - id: api
    regions: [us-east]
    failure: {ratio: 0.5, window: 20}
    tcp: {address: "127.0.0.1:1"}
`

// t0 is where every fake clock starts.
var t0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

func loadTestConfig(t testing.TB) *checks.Config {
	t.Helper()
	env := map[string]string{"KEY_US": string(keyUS), "KEY_US2": string(keyUS2), "KEY_EU": string(keyEU)}
	cfg, err := checks.LoadBytes("test.yaml", []byte(testConfig), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading test config: %v", err)
	}
	return cfg
}

// fixture is an evaluator behind a real HTTP server on loopback.
type fixture struct {
	t     testing.TB
	cfg   *checks.Config
	clock *clocktest.Fake
	reg   *prometheus.Registry
	ev    *Evaluator
	srv   *httptest.Server
	notes *notifytest.Recorder
	logs  *notifytest.LogBuffer
}

type fixtureOption func(*Options)

func withDataDir(dir string) fixtureOption { return func(o *Options) { o.DataDir = dir } }

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	f := &fixture{t: t, cfg: loadTestConfig(t), clock: clocktest.New(t0), reg: prometheus.NewRegistry(), notes: &notifytest.Recorder{}, logs: &notifytest.LogBuffer{}}
	o := Options{Clock: f.clock, Registerer: f.reg, Notifier: f.notes, Logger: slogTo(f.logs)}
	for _, opt := range opts {
		opt(&o)
	}
	ev, err := New(f.cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.ev = ev
	t.Cleanup(func() { ev.Close() })
	f.srv = httptest.NewServer(ev.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// result is a valid result of check from region.
func result(check, region string, ok bool) wire.Result {
	r := wire.Result{V: 1, Check: check, Region: region, Time: t0, OK: ok, Duration: 0.05}
	if !ok {
		r.Reason = "status 503, want 200"
	}
	return r
}

// batch is a valid batch from agent a1 of region.
func (f *fixture) batch(region string, seq uint64, results ...wire.Result) wire.Batch {
	return wire.Batch{V: 1, Agent: "a1", Region: region, Seq: seq, ConfigDigest: f.cfg.Digest, Created: t0, Results: results}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request is one POST to /v1/results.
type request struct {
	region string
	agent  string
	key    []byte
	signAt time.Time
	body   []byte
	// hideLength sends the body chunked, without Content-Length.
	hideLength bool
	// sig, when set, replaces the signature.
	sig string
}

// send posts body signed with key at the fake clock's now for region.
func (f *fixture) send(region string, key []byte, body []byte) (int, string) {
	f.t.Helper()
	return f.do(request{region: region, key: key, signAt: f.clock.Now(), body: body})
}

// sendBatch signs b with the key of its region and posts it.
func (f *fixture) sendBatch(b wire.Batch) (int, string) {
	f.t.Helper()
	key := map[string][]byte{"us-east": keyUS, "eu-west": keyEU}[b.Region]
	return f.send(b.Region, key, mustJSON(f.t, b))
}

func (f *fixture) do(r request) (int, string) {
	f.t.Helper()
	var body io.Reader = bytes.NewReader(r.body)
	if r.hideLength {
		body = io.MultiReader(body)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+wire.ResultsPath, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if r.region != "" {
		req.Header.Set(wire.HeaderRegion, r.region)
	}
	if r.agent != "" {
		req.Header.Set(wire.HeaderAgent, r.agent)
	}
	if r.key != nil {
		ts, sig := wire.Sign(r.key, r.signAt, r.body)
		req.Header.Set(wire.HeaderTimestamp, ts)
		req.Header.Set(wire.HeaderSignature, sig)
	}
	if r.sig != "" {
		req.Header.Set(wire.HeaderSignature, r.sig)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("reading answer: %v", err)
	}
	return resp.StatusCode, string(got)
}

// snapshotJSON is the evaluator's state as /status.json would show it.
func (f *fixture) snapshotJSON() string {
	f.t.Helper()
	return string(mustJSON(f.t, f.ev.Snapshot()))
}

// batches returns outpost_ingest_batches_total{region,result}.
func (f *fixture) batches(region, result string) float64 {
	return testutil.ToFloat64(f.ev.metrics.region(region).batches[outcomeByName(f.t, result)])
}

func outcomeByName(t testing.TB, name string) outcome {
	for o := range numOutcomes {
		if o.String() == name {
			return o
		}
	}
	t.Fatalf("no outcome %q", name)
	return 0
}

// gathered returns the value of the metric name with labels from the
// registry, as a scrape would see it, and whether it exists.
func (f *fixture) gathered(name string, labels map[string]string) (float64, bool) {
	f.t.Helper()
	return gatheredFrom(f.t, f.reg, name, labels)
}

// gatheredFrom returns the value of the first counter or gauge called name
// in reg whose labels include labels.
func gatheredFrom(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// waitFor waits for the evaluator's goroutines or peers to bring cond about.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	clocktest.WaitFor(t, 10*time.Second, what, cond)
}
