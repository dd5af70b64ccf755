package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary runs as "outpost" itself when asked to, so that a test
// can kill a real evaluator process with SIGKILL.
const selfRunEnv = "OUTPOST_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(selfRunEnv) == "1" {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		os.Exit(run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv}))
	}
	os.Exit(m.Run())
}

// pdEvents is a minimal PagerDuty Events v2 endpoint: it checks the fields
// PagerDuty requires and records accepted events.
type pdEvents struct {
	mu     sync.Mutex
	events []map[string]any
	bad    []string
}

func (p *pdEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev map[string]any
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path != "/v2/enqueue" || json.Unmarshal(body, &ev) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	action, _ := ev["event_action"].(string)
	payload, _ := ev["payload"].(map[string]any)
	ok := ev["routing_key"] != "" && ev["dedup_key"] != "" && (action == "resolve" || action == "trigger" && payload != nil &&
		payload["summary"] != nil && payload["source"] != nil && payload["severity"] != nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok {
		p.bad = append(p.bad, string(body))
		http.Error(w, `{"status":"invalid event"}`, http.StatusBadRequest)
		return
	}
	p.events = append(p.events, ev)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"status":"success","dedup_key":%q}`, ev["dedup_key"])
}

func (p *pdEvents) actions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, ev := range p.events {
		out = append(out, fmt.Sprintf("%s %s", ev["event_action"], ev["dedup_key"]))
	}
	return out
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEvaluatorKilledMidIncident kills "outpost run" with SIGKILL while a
// check is DOWN and paged, and starts it again on the same data dir: the
// open incident is not paged again as new, and its resolve still goes out
// when the target recovers. The probe intervals here are real (1s): this is
// the one test of a real process's crash.
func TestEvaluatorKilledMidIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a process")
	}
	pd := &pdEvents{}
	pdSrv := httptest.NewServer(pd)
	t.Cleanup(pdSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // the target is down

	dir := t.TempDir()
	cfg := filepath.Join(dir, "outpost.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`reporting: {heartbeat: 1s, stale_after: 5s}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: %q}}
checks:
  - id: api-port
    interval: 1s
    timeout: 500ms
    tcp: {address: %q}
`, pdSrv.URL, target)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	// delivered is signalled when a child logs that its outbox recorded a
	// delivered trigger. Killing before that point re-sends the trigger
	// after the restart: delivery is at least once, and PagerDuty folds the
	// repeat under the same dedup key. This test kills after it, to check
	// that the restarted process does not decide to page again.
	delivered := make(chan struct{}, 4)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "run", "-c", cfg, "--listen", "127.0.0.1:0", "--data-dir", data)
		cmd.Env = append(os.Environ(), selfRunEnv+"=1", "PD_KEY=kill0test0routing0key0000000001")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { // drain the logs so the child never blocks on them
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Text()
				if strings.Contains(line, `msg="notification delivered"`) && strings.Contains(line, "action=trigger") {
					select {
					case delivered <- struct{}{}:
					default:
					}
				}
				if testing.Verbose() {
					t.Log(line)
				}
			}
		}()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}

	first := start()
	select {
	case <-delivered:
	case <-time.After(30 * time.Second):
		t.Fatal("no trigger delivered")
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	trigger := pd.actions()[0]
	if !strings.HasPrefix(trigger, "trigger ") {
		t.Fatalf("first event = %q, want a trigger", trigger)
	}

	start()
	// The restarted evaluator probes the still-dead target for a while: it
	// must recognise the incident as open, not page it again.
	restarted := time.Now()
	waitUntil(t, "five seconds of the restarted process", 10*time.Second, func() bool { return time.Since(restarted) >= 5*time.Second })
	if got := pd.actions(); len(got) != 1 {
		t.Fatalf("after the restart: %v, want only the first trigger", got)
	}

	up, err := net.Listen("tcp", target) // the target recovers
	if err != nil {
		t.Fatalf("reopen target: %v", err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	waitUntil(t, "the resolve", 30*time.Second, func() bool { return len(pd.actions()) >= 2 })
	got := pd.actions()
	if len(got) != 2 || got[1] != "resolve "+strings.TrimPrefix(trigger, "trigger ") {
		t.Fatalf("events = %v, want one trigger and its resolve", got)
	}
	if len(pd.bad) > 0 {
		t.Fatalf("invalid events: %v", pd.bad)
	}
}
