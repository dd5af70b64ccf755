package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/checks"
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
	srv := httptest.NewServer(evaluatorMux(reg, ev))
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
