package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEvaluatorOnBus: with a bus: block and bus.evaluators, outpost
// evaluator refuses to start without --name; with it, it connects with
// the token from the environment, creates its durable consumer for its
// shards, and stops cleanly, the token in none of its logs.
func TestEvaluatorOnBus(t *testing.T) {
	const token = "bus-token-0123456789abcdef"
	srv := bustest.Start(t, bustest.Options{Token: token})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bus.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`version: 1
regions: [us-east]
agents: [{region: us-east, key: "${K}"}]
bus:
  nats: {url: %q, token: "${NATS_TOKEN}", max_bytes: 64MiB}
  evaluators:
    - {name: e1, shards: "0-31"}
    - {name: e2, shards: "32-63"}
checks:
  - {id: web, http: {url: "https://example.test/"}}
`, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"K": "agent-key-0123456789", "NATS_TOKEN": token}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	args := []string{"evaluator", "-c", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}

	var stderr syncBuffer
	if code := run(context.Background(), args, env{stdout: &stderr, stderr: &stderr, lookup: lookup}); code == exitOK {
		t.Fatal("started without --name although bus.evaluators assigns shards by name")
	}
	if !strings.Contains(stderr.String(), "start this one with --name (one of e1, e2)") {
		t.Errorf("the refusal does not say what to do:\n%s", stderr.String())
	}

	stderr = syncBuffer{}
	if code := run(context.Background(), append(args, "--name", "e1.example.com"), env{stdout: &stderr, stderr: &stderr, lookup: lookup}); code == exitOK {
		t.Fatal("started with a name that is not one of bus.evaluators")
	}
	if !strings.Contains(stderr.String(), `e1.example.com\" is not one of bus.evaluators (e1, e2)`) {
		t.Errorf("the refusal does not say what is wrong:\n%s", stderr.String())
	}
	// Without bus.evaluators every name owns every shard, but a dotted
	// host name cannot name a consumer.
	openPath := filepath.Join(dir, "open.yaml")
	if err := os.WriteFile(openPath, []byte(fmt.Sprintf(`version: 1
regions: [us-east]
agents: [{region: us-east, key: "${K}"}]
bus:
  nats: {url: %q, token: "${NATS_TOKEN}", max_bytes: 64MiB}
checks:
  - {id: web, http: {url: "https://example.test/"}}
`, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr = syncBuffer{}
	if code := run(context.Background(), []string{"evaluator", "-c", openPath, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "open"), "--name", "eval.example.com"},
		env{stdout: &stderr, stderr: &stderr, lookup: lookup}); code == exitOK {
		t.Fatal("started with a name no consumer can have")
	}
	if !strings.Contains(stderr.String(), "cannot name a JetStream consumer") {
		t.Errorf("the refusal does not say what is wrong:\n%s", stderr.String())
	}

	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append(args, "--name", "e1"), env{stdout: &logs, stderr: &logs, lookup: lookup})
	}()
	n := &checks.NATSBus{URL: srv.URL, Token: checks.NewSecret(token)}
	nc, err := bus.Connect(n, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var filters []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("outpost evaluator logged:\n%s", logs.String())
		}
	})
	clocktest.WaitFor(t, 30*time.Second, "the consumer outpost-e1", func() bool {
		c, err := js.Consumer(context.Background(), checks.DefaultBusStream, bus.ConsumerName("e1"))
		if err != nil {
			return false
		}
		filters = c.CachedInfo().Config.FilterSubjects
		return true
	})
	if len(filters) != 33 {
		t.Errorf("consumer reads %d subjects, want 32 shards and liveness: %v", len(filters), filters)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the evaluator did not stop")
	}
	if strings.Contains(logs.String(), token) || strings.Contains(stderr.String(), token) {
		t.Error("the NATS token is in the logs")
	}
	if !strings.Contains(logs.String(), `msg="bus: connected"`) {
		t.Errorf("no bus connection logged:\n%s", logs.String())
	}
}
