package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus/bustest"
)

// TestBusEndToEnd runs the sharded deployment of docs/scale.md with real
// processes: a NATS server with JetStream, three agents (one per region)
// publishing to it, and two shard groups of two evaluators each (HA
// pairs). Every process starts before NATS does and waits for it, rather
// than exiting. One check of each group probes a dead port: each is paged
// by its own group's evaluators only; one evaluator of a pair is killed
// with SIGKILL mid-incident and restarted, and pages nothing again; each
// check is resolved once its port answers. Every evaluator's status page
// shows all the checks.
func TestBusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs seven processes")
	}
	// The server's address is chosen now; the server starts after the
	// processes that use it.
	natsDown := bustest.Start(t, bustest.Options{})
	natsDown.Stop()
	natsURL, natsPort, natsDir := natsDown.URL, natsDown.Port, natsDown.StoreDir
	pd := &pdEvents{}
	pdSrv := httptest.NewServer(pd)
	t.Cleanup(pdSrv.Close)

	// A check id of each shard group.
	idIn := func(lo, hi int) string {
		for i := 0; ; i++ {
			id := fmt.Sprintf("svc-%d", i)
			if s := checks.Shard(id, 64); s >= lo && s <= hi {
				return id
			}
		}
	}
	checkA, checkB := idIn(0, 31), idIn(32, 63)
	deadA, deadB := deadPort(t), deadPort(t)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "outpost.yaml")
	regions := []string{"us", "eu", "ap"}
	var b strings.Builder
	fmt.Fprintf(&b, `version: 1
defaults: {interval: 1s, timeout: 500ms}
reporting: {heartbeat: 1s, stale_after: 5s}
regions: [us, eu, ap]
agents:
`)
	env := []string{"NATS_TOKEN=bus-token-0123456789", "PD_KEY=bus0test0routing0key00000000001"}
	for _, r := range regions {
		fmt.Fprintf(&b, "  - {region: %s, name: agent-%s, key: \"${KEY_%s}\"}\n", r, r, strings.ToUpper(r))
		env = append(env, fmt.Sprintf("KEY_%s=key-of-%s-0123456789abcdef", strings.ToUpper(r), r))
	}
	fmt.Fprintf(&b, `notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: %q}}
bus:
  nats: {url: %q, token: "${NATS_TOKEN}", shards: 64}
  evaluators:
    - {name: eval-a1, shards: "0-31"}
    - {name: eval-a2, shards: "0-31"}
    - {name: eval-b1, shards: "32-63"}
    - {name: eval-b2, shards: "32-63"}
checks:
  - {id: %s, notify: [oncall], tcp: {address: %q}}
  - {id: %s, notify: [oncall], tcp: {address: %q}}
`, pdSrv.URL, natsURL, checkA, deadA, checkB, deadB)
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	evals := map[string]string{}
	procs := map[string]*exec.Cmd{}
	startEval := func(name string) {
		evals[name], procs[name] = startOutpostProc(t, env, `msg="outpost evaluator running" listen=(\S+)`,
			"evaluator", "-c", cfg, "--name", name, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, name))
	}
	for _, name := range []string{"eval-a1", "eval-a2", "eval-b1", "eval-b2"} {
		startEval(name)
	}
	for _, r := range regions {
		startOutpostEnv(t, env, `msg="outpost agent running" listen=(\S+)`,
			"agent", "-c", cfg, "--region", r, "--name", "agent-"+r, "--listen", "127.0.0.1:0",
			"--spool-dir", filepath.Join(dir, "spool-"+r))
	}
	bustest.Start(t, bustest.Options{Token: "bus-token-0123456789", Port: natsPort, StoreDir: natsDir})

	owners := map[string][]string{checkA: {"eval-a1", "eval-a2"}, checkB: {"eval-b1", "eval-b2"}}
	// keyOf maps each check's dedup key, learnt from its triggers.
	keyOf := map[string]string{}
	waitUntil(t, "a trigger for each check", 90*time.Second, func() bool {
		for _, ev := range pd.all() {
			payload, _ := ev["payload"].(map[string]any)
			summary, _ := payload["summary"].(string)
			source, _ := payload["source"].(string)
			for id := range owners {
				if ev["event_action"] == "trigger" && strings.Contains(summary, id) {
					if !slices.Contains(owners[id], source) {
						t.Fatalf("%s paged by %q, not one of its owners %v", id, source, owners[id])
					}
					keyOf[id], _ = ev["dedup_key"].(string)
				}
			}
		}
		return len(keyOf) == 2
	})
	if keyOf[checkA] == keyOf[checkB] {
		t.Fatalf("both checks paged under one dedup key %s", keyOf[checkA])
	}

	// Kill one evaluator of checkA's pair mid-incident, once its outbox has
	// delivered its trigger (killed before, it would send it again after
	// the restart: delivery is at least once), and start it again on its
	// data dir: its durable consumer resumes, and it pages nothing again.
	waitUntil(t, "eval-a1's trigger delivered", 30*time.Second, func() bool {
		m := scrapeMetrics(evals["eval-a1"])
		return strings.Contains(m, `outpost_notifications_total{notifier="oncall",result="delivered"} 1`) &&
			strings.Contains(m, `outpost_outbox_pending{notifier="oncall"} 0`)
	})
	if err := procs["eval-a1"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	procs["eval-a1"].Wait()
	triggers := len(pd.actionsOf(keyOf[checkA], "trigger"))
	startEval("eval-a1")
	restarted := time.Now()
	waitUntil(t, "eval-a1 consuming again", 30*time.Second, func() bool {
		ids := statusIDs(t, evals["eval-a1"])
		return slices.Contains(ids, checkA) && slices.Contains(ids, checkB)
	})
	waitUntil(t, "five seconds of the restarted evaluator", 10*time.Second, func() bool { return time.Since(restarted) >= 5*time.Second })
	if got := len(pd.actionsOf(keyOf[checkA], "trigger")); got != triggers {
		t.Fatalf("the restarted evaluator paged %s again: %d triggers, %d before the kill", checkA, got, triggers)
	}

	// Every evaluator shows every check, its own and the other group's.
	for name, base := range evals {
		waitUntil(t, name+" shows both checks", 30*time.Second, func() bool {
			ids := statusIDs(t, base)
			return slices.Contains(ids, checkA) && slices.Contains(ids, checkB)
		})
	}

	serveTCP(t, deadA)
	serveTCP(t, deadB)
	waitUntil(t, "a resolve for each check", 90*time.Second, func() bool {
		resolved := pd.keys("resolve")
		return slices.Contains(resolved, keyOf[checkA]) && slices.Contains(resolved, keyOf[checkB])
	})
	// An HA pair may both send an event; PagerDuty folds them under the
	// dedup key. What must not happen is a trigger after the resolve.
	for _, id := range []string{checkA, checkB} {
		var last string
		for _, ev := range pd.all() {
			if ev["dedup_key"] == keyOf[id] {
				last, _ = ev["event_action"].(string)
			}
		}
		if last != "resolve" {
			t.Errorf("%s: the last event is %q, want its resolve", id, last)
		}
	}
	if len(pd.bad) > 0 {
		t.Errorf("invalid events: %v", pd.bad)
	}
}

// keys returns the dedup keys of the events of action, sorted, once each.
func (p *pdEvents) keys(action string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, ev := range p.events {
		if k, _ := ev["dedup_key"].(string); ev["event_action"] == action && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// scrapeMetrics returns base's /metrics text, "" if it does not answer.
func scrapeMetrics(base string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// actionsOf returns the events of action under dedup key.
func (p *pdEvents) actionsOf(key, action string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, ev := range p.events {
		if ev["dedup_key"] == key && ev["event_action"] == action {
			out = append(out, ev)
		}
	}
	return out
}

// all returns a copy of the events received.
func (p *pdEvents) all() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// deadPort returns a loopback address nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveTCP accepts and closes connections on addr until the test ends.
func serveTCP(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// statusIDs returns the ids of the checks base's /status.json lists.
func statusIDs(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/status.json")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var doc struct {
		Checks []struct {
			ID string `json:"id"`
		} `json:"checks"`
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil {
		return nil
	}
	var ids []string
	for _, c := range doc.Checks {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestRunRefusesABus: "outpost run" is one process, its own agent and
// evaluator; a bus: block would make it decide part of its checks, or
// none. It says so instead of starting.
func TestRunRefusesABus(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bus.yaml", `version: 1
bus: {nats: {url: "nats://127.0.0.1:1"}}
checks:
  - {id: web, http: {url: "http://127.0.0.1:1/"}}
`)
	code, _, stderr := runCLI(t, nil, "run", "-c", cfg, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	if code == exitOK || !strings.Contains(stderr, "bus: block") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}
