package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

const (
	busAgentKey = "us-east-agent-key-0123456789"
	busToken    = "nats-agent-token-9e8d7c6b"
)

// busAgentConfig writes a configuration whose one check (hourly, so that
// only a confirmation runs it during the test) probes target, with a bus
// at natsURL.
func busAgentConfig(t *testing.T, natsURL, target string) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "outpost.yaml", fmt.Sprintf(`version: 1
regions: [us-east]
reporting: {heartbeat: 200ms, batch_delay: 100ms}
agents:
  - {region: us-east, key: "${OUTPOST_KEY_US_EAST}"}
bus:
  nats:
    url: %s
    token: "${NATS_TOKEN}"
    shards: 8
checks:
  - id: web
    interval: 1h
    timeout: 2s
    http: {url: %q}
`, natsURL, target))
}

// TestAgentOnABus runs "outpost agent" with a bus: block and no
// --evaluator: it publishes liveness, runs a confirmation request from
// the bus, publishes the result to its shard's subject, signed, and never
// shows the NATS token.
func TestAgentOnABus(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{Token: busToken})
	n := &checks.NATSBus{URL: srv.URL, Token: checks.NewSecret(busToken), Stream: "OUTPOST", Shards: 8, Replicas: 1,
		Retention: time.Hour, MaxBytes: 64 << 20, Duplicates: time.Minute}
	nc, err := bus.Connect(n, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := bus.EnsureStream(context.Background(), js, n)
	if err != nil {
		t.Fatal(err)
	}
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(target.Close)
	cfg := busAgentConfig(t, srv.URL, target.URL)

	a := startAgentCommand(t, map[string]string{"OUTPOST_KEY_US_EAST": busAgentKey, "NATS_TOKEN": busToken},
		"agent", "-c", cfg, "--region", "us-east", "--name", "a1", "--listen", "127.0.0.1:0", "--spool-dir", t.TempDir())
	last := func(subject string) *jetstream.RawStreamMsg {
		ctx, cancel := context.WithTimeout(context.Background(), bus.RequestTimeout)
		defer cancel()
		m, _ := stream.GetLastMsgForSubject(ctx, subject)
		return m
	}
	verify := func(m *jetstream.RawStreamMsg) wire.Batch {
		t.Helper()
		if err := wire.Verify([][]byte{[]byte(busAgentKey)}, m.Header.Get(wire.HeaderTimestamp), m.Header.Get(wire.HeaderSignature), m.Data, m.Time); err != nil {
			t.Fatalf("%s: %v", m.Subject, err)
		}
		if id := m.Header.Get(jetstream.MsgIDHeader); !strings.HasPrefix(id, "us-east.a1.") {
			t.Errorf("Nats-Msg-Id %q", id)
		}
		var b wire.Batch
		if err := json.Unmarshal(m.Data, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	clocktest.WaitFor(t, 30*time.Second, "the agent's liveness on the bus", func() bool { return last(bus.LiveSubject("us-east")) != nil })
	if b := verify(last(bus.LiveSubject("us-east"))); len(b.Results) != 0 || b.Agent != "a1" {
		t.Fatalf("liveness of %s with %d results", b.Agent, len(b.Results))
	}

	results := bus.ResultsSubject(checks.Shard("web", 8), "us-east")
	req, _ := json.Marshal(wire.ConfirmRequest{Checks: []string{"web"}})
	clocktest.WaitFor(t, 30*time.Second, "a confirmation run's result on "+results, func() bool {
		nc.Publish(bus.ConfirmSubject("us-east"), req)
		return last(results) != nil
	})
	b := verify(last(results))
	if len(b.Results) == 0 || b.Results[0].Check != "web" || !b.Results[0].OK {
		t.Fatalf("results batch %+v", b.Results)
	}
	if code, body := a.health(t); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz: %d %q, want 200 ok", code, body)
	}
	srv.Stop()
	clocktest.WaitFor(t, 30*time.Second, "/healthz to say the bus is away", func() bool {
		_, body := a.health(t)
		return strings.Contains(body, "degraded: not connected to NATS (reconnecting): batches wait in the spool")
	})
	a.stop(t)
	if strings.Contains(a.stderr.String(), busToken) {
		t.Errorf("the agent logged the NATS token:\n%s", a.stderr)
	}
	for _, want := range []string{`msg="outpost agent running"`, "bus=nats://127.0.0.1:"} {
		if !strings.Contains(a.stderr.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, a.stderr)
		}
	}
}

// TestAgentBusDestinationFlags: with a bus, --evaluator is refused rather
// than silently ignored or used alongside; without one it is required; a
// wrong token fails at start with an error that does not show it.
func TestAgentBusDestinationFlags(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{Token: busToken})
	cfg := busAgentConfig(t, srv.URL, "http://127.0.0.1:1/")
	plain := writeFile(t, t.TempDir(), "plain.yaml", `version: 1
regions: [us-east]
agents:
  - {region: us-east, key: "${OUTPOST_KEY_US_EAST}"}
checks:
  - {id: web, http: {url: "http://127.0.0.1:1/"}}
`)
	const wrong = "wrong-token-0a1b2c3d4e"
	for _, tc := range []struct {
		name, config, token string
		extra               []string
		want                string
	}{
		{"bus and --evaluator", cfg, busToken, []string{"--evaluator", "http://127.0.0.1:1"}, "--evaluator and the configuration's bus: block exclude each other"},
		{"neither", plain, busToken, nil, "--evaluator is required (or a bus: block in the configuration)"},
		{"wrong token", cfg, wrong, nil, "Authorization Violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"agent", "-c", tc.config, "--region", "us-east", "--listen", "127.0.0.1:0", "--spool-dir", t.TempDir()}, tc.extra...)
			code, _, stderr := runCLI(t, map[string]string{"OUTPOST_KEY_US_EAST": busAgentKey, "NATS_TOKEN": tc.token}, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, exitUsage, tc.want)
			}
			if strings.Contains(stderr, tc.token) {
				t.Fatalf("stderr shows the token:\n%s", stderr)
			}
		})
	}
}
