package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// TestEvaluatorMuxRoutes checks that every evaluator route is reachable
// through the command's mux, not only through alerting's own handler.
func TestEvaluatorMuxRoutes(t *testing.T) {
	env := map[string]string{"K": "agent-key-0123456789", "PING": "ping-token-0123456789abcdef"}
	cfg, err := checks.LoadBytes("m.yaml", []byte(`regions: [us-east]
agents: [{region: us-east, key: "${K}"}]
checks:
  - {id: web, http: {url: "https://example.test/"}}
  - {id: backup, heartbeat: {every: 1h, token: "${PING}"}}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	ev, err := alerting.New(cfg, alerting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evaluatorMux(reg, ev, nil))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/metrics", 200},
		{"GET", "/status.json", 200},
		{"GET", "/status", 200},
		{"POST", "/v1/results", 401},                        // unsigned: refused by ingest, not a 404
		{"GET", "/v1/confirm", 401},                         // likewise
		{"GET", "/ping/" + env["PING"], 200},                // a heartbeat ping
		{"POST", "/ping/" + env["PING"] + "/start", 200},    // a start ping
		{"GET", "/ping/not-a-token-at-all-0000000000", 404}, // reveals nothing
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestStatusJSONSchema decodes /status.json strictly into the shape the
// documentation promises, and checks that a private check's evidence is
// not in it.
func TestStatusJSONSchema(t *testing.T) {
	env := map[string]string{"K": "agent-key-0123456789"}
	cfg, err := checks.LoadBytes("m.yaml", []byte(`regions: [us-east, eu-west]
agents: [{region: us-east, key: "${K}"}]
checks:
  - {id: web, http: {url: "https://example.test/"}}
  - {id: secret-db, private: true, tcp: {address: "10.1.2.3:5432"}}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alerting.New(cfg, alerting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := []wire.Result{
		{V: 1, Check: "web", Type: "http", Region: "us-east", Time: now, OK: false, Reason: "status 503, want 200"},
		{V: 1, Check: "secret-db", Type: "tcp", Region: "us-east", Time: now, OK: false, Reason: "connect 10.1.2.3:5432: connection refused",
			Observed: wire.Observed{ConnectedAddr: "10.1.2.3:5432"}},
	}
	if err := ev.Apply(wire.Batch{V: 1, Agent: "a", Region: "us-east", Seq: 1, Created: now, Results: res}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evaluatorMux(newRegistry(), ev, nil))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc struct {
		Time         time.Time `json:"time"`
		Started      time.Time `json:"started"`
		ConfigDigest string    `json:"config_digest"`
		StaleAfter   float64   `json:"stale_after_seconds"`
		Regions      []struct {
			Name              string    `json:"name"`
			State             string    `json:"state"`
			Since             time.Time `json:"since"`
			LastSeen          time.Time `json:"last_seen"`
			ConfigDigestMatch bool      `json:"config_digest_match"`
			Agents            []struct {
				Name              string    `json:"name"`
				LastSeen          time.Time `json:"last_seen"`
				LastSeq           uint64    `json:"last_seq"`
				ConfigDigest      string    `json:"config_digest"`
				ConfigDigestMatch bool      `json:"config_digest_match"`
			} `json:"agents"`
		} `json:"regions"`
		Checks []struct {
			ID          string            `json:"id"`
			Type        string            `json:"type"`
			State       string            `json:"state"`
			Summary     string            `json:"summary"`
			Incidents   []json.RawMessage `json:"incidents"`
			Maintenance []string          `json:"maintenance"`
			Regions     []struct {
				Region string `json:"region"`
				Last   *struct {
					OK       bool      `json:"ok"`
					Reason   string    `json:"reason"`
					Time     time.Time `json:"time"`
					Received time.Time `json:"received"`
					Agent    string    `json:"agent"`
					Duration float64   `json:"duration_seconds"`
				} `json:"last"`
				Window struct {
					Samples     int `json:"samples"`
					Size        int `json:"size"`
					Failures    int `json:"failures"`
					Passes      int `json:"passes"`
					Consecutive int `json:"consecutive_failures"`
				} `json:"window"`
				Shape *struct {
					Latency *struct {
						WindowSeconds float64            `json:"window_seconds"`
						Samples       int                `json:"samples"`
						Quantiles     map[string]float64 `json:"quantiles_seconds"`
						Phases        map[string]struct {
							Samples int     `json:"samples"`
							P50     float64 `json:"p50"`
							P99     float64 `json:"p99"`
						} `json:"phases"`
						Usual map[string]float64 `json:"usual_seconds"`
					} `json:"latency"`
					Value *float64 `json:"value"`
					Usual struct {
						Value  float64 `json:"value"`
						Spread float64 `json:"spread"`
					} `json:"usual"`
					Warm        bool              `json:"warm"`
					Slot        string            `json:"slot"`
					Findings    []json.RawMessage `json:"findings"`
					Forecast    json.RawMessage   `json:"forecast"`
					MemoryBytes int               `json:"memory_bytes"`
				} `json:"shape"`
			} `json:"regions"`
		} `json:"checks"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("status.json does not match its schema: %v\n%s", err, body)
	}
	if len(doc.Regions) != 2 || doc.Regions[0].Name != "us-east" || doc.Regions[0].Agents[0].Name != "a" || len(doc.Checks) != 2 {
		t.Fatalf("status.json = %s", body)
	}
	if web := doc.Checks[0]; web.ID != "web" || web.Regions[0].Last == nil || web.Regions[0].Last.Reason != "status 503, want 200" {
		t.Errorf("web = %+v", web)
	}
	if strings.Contains(string(body), "10.1.2.3") {
		t.Errorf("a private check's target is in /status.json:\n%s", body)
	}
}

// TestEvaluatorHealthzSaysWhatIsWrong: an evaluator whose data dir refuses
// writes answers /healthz with a 503 that says so; an agent's degraded
// health stays a 200.
func TestEvaluatorHealthzSaysWhatIsWrong(t *testing.T) {
	cfg, err := checks.LoadBytes("m.yaml", []byte(`regions: [us-east]
checks:
  - {id: web, http: {url: "https://example.test/"}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Where the write check writes its file, a directory: the write
	// fails for any user, root included.
	if err := os.Mkdir(filepath.Join(dir, ".write-check"), 0o700); err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev, err := alerting.New(cfg, alerting.Options{DataDir: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	srv := httptest.NewServer(evaluatorMux(newRegistry(), ev, nil))
	t.Cleanup(srv.Close)
	healthz := func() (int, string) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := healthz(); code != 200 || body != "ok\n" {
		t.Fatalf("before the first check: %d %q", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var code int
	var body string
	for range 100 {
		clocktest.WaitIdle(t, 30*time.Second)
		if code, body = healthz(); code != 200 {
			break
		}
		clk.Advance(time.Second)
	}
	if code != 503 || !strings.HasPrefix(body, "unhealthy: cannot write its data dir "+dir+": ") || !strings.Contains(body, "is a directory") {
		t.Fatalf("/healthz = %d %q, want 503 naming the data dir", code, body)
	}

	agentMux := baseMux(newRegistry(), func() string { return "3 check runs skipped" }, nil)
	rec := httptest.NewRecorder()
	agentMux.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != "degraded: 3 check runs skipped\n" {
		t.Errorf("degraded agent: %d %q", rec.Code, rec.Body.String())
	}
}

// TestBuildInfo: every process exports outpost_build_info with its
// version, revision and Go version, as Prometheus' own binaries do.
func TestBuildInfo(t *testing.T) {
	mfs, err := newRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "outpost_build_info" {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] == "" || labels["goversion"] == "" || mf.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Fatalf("outpost_build_info = %v", labels)
		}
		return
	}
	t.Fatal("no outpost_build_info")
}
