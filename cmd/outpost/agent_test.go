package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// syncBuffer is a bytes.Buffer that a running command writes to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// multiRegion is the configuration docs/deploy.md deploys.
var multiRegion = filepath.Join("..", "..", "examples", "multi-region.yaml")

// agentCommand is "outpost agent" running in-process until stop.
type agentCommand struct {
	stderr    *syncBuffer
	cancel    context.CancelFunc
	done      chan int
	healthURL string
}

// startAgentCommand runs the command args with envVars as its environment
// and waits until it serves.
func startAgentCommand(t *testing.T, envVars map[string]string, args ...string) *agentCommand {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := envVars[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	a := &agentCommand{stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	t.Cleanup(cancel)
	go func() {
		a.done <- run(ctx, args, env{stdout: io.Discard, stderr: a.stderr, lookup: checks.LookupEnv(lookup)})
	}()
	listen := regexp.MustCompile(`msg="outpost agent running" listen=(\S+)`)
	clocktest.WaitFor(t, 30*time.Second, "the agent serves", func() bool {
		select {
		case code := <-a.done:
			t.Fatalf("the agent exited %d:\n%s", code, a.stderr.String())
		default:
		}
		m := listen.FindStringSubmatch(a.stderr.String())
		if m == nil {
			return false
		}
		a.healthURL = m[1] + "/healthz"
		return true
	})
	return a
}

// health returns the status and body of the agent's /healthz.
func (a *agentCommand) health(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(a.healthURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// stop cancels the command and checks that it exits 0.
func (a *agentCommand) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case code := <-a.done:
		if code != exitOK {
			t.Errorf("exit %d after a clean stop:\n%s", code, a.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop")
	}
}

// TestAgentRunsWithAnUnwritableSpool: a spool dir that cannot be made (a
// file stands where it should be) does not keep the agent from probing and
// reporting; its /healthz says what is wrong.
func TestAgentRunsWithAnUnwritableSpool(t *testing.T) {
	eval := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.ConfirmPath {
			<-r.Context().Done()
			return
		}
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(eval.Close)
	file := writeFile(t, t.TempDir(), "state", "not a directory")
	spool := filepath.Join(file, "spool")
	a := startAgentCommand(t, map[string]string{"OUTPOST_KEY_US_EAST": "us-east-agent-key-0123456789"},
		"agent", "-c", multiRegion, "--region", "us-east", "--evaluator", eval.URL, "--listen", "127.0.0.1:0", "--spool-dir", spool)
	code, body := a.health(t)
	for _, want := range []string{
		"degraded: spool " + spool + " cannot be written: not a directory; batches are sent from memory",
		"outbox under " + spool + " cannot be opened (not a directory): no page of its own when no evaluator answers",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/healthz: %d %q, want 200 and %q", code, body, want)
		}
	}
	a.stop(t)
}
