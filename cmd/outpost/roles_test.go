package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// TestAgentStartsWithOnlyItsOwnKey starts an agent as docs/deploy.md and
// examples/systemd/outpost-agent.service do: the shared configuration, and
// in the environment only the region's key (and systemd's STATE_DIRECTORY).
// It must run, sign with that key, and stop cleanly; before, it exited 2
// for want of the other regions' keys and the notifiers' secrets.
func TestAgentStartsWithOnlyItsOwnKey(t *testing.T) {
	const key = "us-east-agent-key-0123456789"
	polled := make(chan error, 10)
	eval := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.ConfirmPath:
			err := wire.Verify([][]byte{[]byte(key)}, r.Header.Get(wire.HeaderTimestamp), r.Header.Get(wire.HeaderSignature),
				wire.ConfirmPayload(r.Header.Get(wire.HeaderRegion), r.Header.Get(wire.HeaderAgent)), time.Now())
			select {
			case polled <- err:
			default:
			}
			<-r.Context().Done() // nothing to confirm: hold the poll
		case wire.ResultsPath:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(eval.Close)

	envVars := map[string]string{"OUTPOST_KEY_US_EAST": key, "STATE_DIRECTORY": t.TempDir()}
	a := startAgentCommand(t, envVars, "agent", "-c", multiRegion, "--region", "us-east",
		"--evaluator", eval.URL, "--listen", "127.0.0.1:0")
	if code, body := a.health(t); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	select {
	case err := <-polled:
		if err != nil {
			t.Errorf("the agent's poll is not signed with its key: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent never polled its evaluator")
	}

	a.stop(t)
	logs := a.stderr.String()
	if !strings.Contains(logs, "notifiers without their secrets here are not used") || !strings.Contains(logs, "notifiers=oncall,chat") {
		t.Errorf("the agent does not say which notifiers it cannot use:\n%s", logs)
	}
	if strings.Contains(logs, key) {
		t.Error("the agent's key is in its log")
	}
}

func TestAgentWithoutItsOwnKeyFails(t *testing.T) {
	envVars := map[string]string{"OUTPOST_KEY_EU_WEST": "eu-west-agent-key", "STATE_DIRECTORY": t.TempDir()}
	code, _, errOut := runCLI(t, envVars, "agent", "-c", multiRegion, "--region", "us-east",
		"--evaluator", "http://127.0.0.1:9", "--listen", "127.0.0.1:0")
	data, err := os.ReadFile(multiRegion)
	if err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(data[:strings.Index(string(data), "${OUTPOST_KEY_US_EAST}")]), "\n")
	want := fmt.Sprintf("%s:%d:28: agents[0].key: environment variable OUTPOST_KEY_US_EAST is not set", multiRegion, line)
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("code %d, want %d and %q in:\n%s", code, exitUsage, want, errOut)
	}
	if strings.Contains(errOut, "OUTPOST_KEY_AP_SOUTH") || strings.Contains(errOut, "PAGERDUTY_ROUTING_KEY") {
		t.Errorf("an agent complains about secrets it does not need:\n%s", errOut)
	}
}

func TestEvaluatorNeedsTheNotifierSecrets(t *testing.T) {
	envVars := map[string]string{"OUTPOST_KEY_US_EAST": "a", "OUTPOST_KEY_EU_WEST": "b", "OUTPOST_KEY_AP_SOUTH": "c",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/x"}
	code, _, errOut := runCLI(t, envVars, "evaluator", "-c", multiRegion, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	want := "pagerduty.routing_key: environment variable PAGERDUTY_ROUTING_KEY is not set"
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("code %d, want %d and %q in:\n%s", code, exitUsage, want, errOut)
	}
}

func TestCheckNeedsOnlyTheSelectedChecksSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Welcome") }))
	t.Cleanup(srv.Close)
	cfg := writeFile(t, t.TempDir(), "c.yaml", `regions: [us-east]
agents:
  - {region: us-east, key: "${OUTPOST_KEY_US_EAST}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PAGERDUTY_ROUTING_KEY}"}}
checks:
  - id: open
    http: {url: "`+srv.URL+`/"}
  - id: private
    http: {url: "`+srv.URL+`/", bearer_token: "${API_TOKEN}"}
`)
	if code, out, errOut := runCLI(t, nil, "check", "-c", cfg, "--only", "open"); code != exitOK {
		t.Errorf("--only open: code %d\n%s%s", code, out, errOut)
	}
	code, _, errOut := runCLI(t, nil, "check", "-c", cfg)
	if code != exitUsage || !strings.Contains(errOut, `check "private": http.bearer_token: environment variable API_TOKEN is not set`) ||
		strings.Contains(errOut, "PAGERDUTY_ROUTING_KEY") || strings.Contains(errOut, "OUTPOST_KEY_US_EAST") {
		t.Errorf("every check: code %d, want %d and only API_TOKEN missing:\n%s", code, exitUsage, errOut)
	}
	// validate checks everything, as before.
	if code, _, errOut := runCLI(t, map[string]string{"API_TOKEN": "x"}, "validate", "-c", cfg); code != exitFailed ||
		!strings.Contains(errOut, "OUTPOST_KEY_US_EAST is not set") || !strings.Contains(errOut, "PAGERDUTY_ROUTING_KEY is not set") {
		t.Errorf("validate: code %d:\n%s", code, errOut)
	}
	// validate --only needs only what the named checks use.
	if code, out, errOut := runCLI(t, nil, "validate", "-c", cfg, "--only", "open"); code != exitOK || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("validate --only open: code %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "validate", "-c", cfg, "--only", "private"); code != exitFailed ||
		!strings.Contains(errOut, "API_TOKEN is not set") || strings.Contains(errOut, "PAGERDUTY_ROUTING_KEY") {
		t.Errorf("validate --only private: code %d:\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "validate", "-c", cfg, "--only", "nope"); code != exitUsage || !strings.Contains(errOut, "--only nope: no check has that id") {
		t.Errorf("validate --only nope: code %d:\n%s", code, errOut)
	}
}
