package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outposthq/outpost/checks"
)

// runCLI runs the command in-process with a fixed environment.
func runCLI(t *testing.T, envVars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := envVars[k]; return v, ok }
	code = run(context.Background(), args, env{stdout: &out, stderr: &errOut, lookup: checks.LookupEnv(lookup)})
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "checks:\n  - id: a\n    tcp: {address: '127.0.0.1:1'}\n")
	bad := writeFile(t, dir, "bad.yaml", "checks:\n  - id: a\n    tcp: {address: 'nope'}\n    timout: 5s\n")

	code, out, _ := runCLI(t, nil, "validate", "-c", good)
	if code != exitOK || !strings.Contains(out, "ok: 1 check(s)") {
		t.Errorf("valid: code %d, out %q", code, out)
	}
	code, _, errOut := runCLI(t, nil, "validate", "-c", bad)
	want := []string{
		bad + `:3:20: check "a": tcp.address "nope": want host:port with a port from 1 to 65535`,
		bad + `:4:5: check "a": unknown key "timout"; did you mean "timeout"?`,
		"2 error(s)",
	}
	if code != exitFailed || strings.TrimSpace(errOut) != strings.Join(want, "\n") {
		t.Errorf("invalid: code %d, stderr:\n%s\nwant:\n%s", code, errOut, strings.Join(want, "\n"))
	}
	if code, _, _ := runCLI(t, nil, "validate"); code != exitUsage {
		t.Errorf("no -c: code %d, want %d", code, exitUsage)
	}
	if code, _, _ := runCLI(t, nil, "validate", "--bogus"); code != exitUsage {
		t.Errorf("bad flag: code %d, want %d", code, exitUsage)
	}
	// Positional files and a directory are accepted too.
	if code, _, errOut := runCLI(t, nil, "validate", dir+"/good.yaml"); code != exitOK {
		t.Errorf("positional: code %d: %s", code, errOut)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"help", "check"}, {"validate", "--help"}, {"check", "-h"}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != exitOK || !strings.Contains(out+errOut, "Usage:") {
			t.Errorf("%v: code %d, output %q", args, code, out+errOut)
		}
	}
	if code, _, errOut := runCLI(t, nil, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, %q", code, errOut)
	}
	if code, out, _ := runCLI(t, nil, "version"); code != exitOK || !strings.HasPrefix(out, "outpost, version ") || !strings.Contains(out, "go version:") {
		t.Errorf("version: code %d, %q", code, out)
	}
}

func TestCheckCommand(t *testing.T) {
	const secret = "sekr1t-token-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			// Reflect the credential, so a leak would show in the reason.
			http.Error(w, "no: "+r.Header.Get("Authorization"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "Welcome")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`regions: [us-east, eu-west]
checks:
  - id: home
    http: {url: %[1]s/, bearer_token: "${TOKEN}", expect: {body_contains: Welcome}}
  - id: down
    regions: [eu-west]
    http: {url: %[1]s/down, bearer_token: "${TOKEN}", expect: {body_contains: "Welcome"}}
`, srv.URL))
	envVars := map[string]string{"TOKEN": secret}

	t.Run("table", func(t *testing.T) {
		code, out, errOut := runCLI(t, envVars, "check", "-c", cfg)
		if code != exitFailed {
			t.Fatalf("code %d, want %d; stderr %s", code, exitFailed, errOut)
		}
		for _, want := range []string{"CHECK", "home", "down", "FAIL", "status 503, want 2xx", "2 check(s): 1 ok, 1 failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out+errOut, secret) {
			t.Fatalf("secret leaked:\n%s%s", out, errOut)
		}
	})
	t.Run("json lines", func(t *testing.T) {
		code, out, _ := runCLI(t, envVars, "check", "-c", cfg, "--format", "json")
		if code != exitFailed {
			t.Fatalf("code %d", code)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		n := 0
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			for _, k := range []string{"check", "region", "ok", "reason", "duration_seconds", "phases", "observed"} {
				if _, ok := m[k]; !ok {
					t.Errorf("line lacks %q: %s", k, sc.Text())
				}
			}
			n++
		}
		if n != 2 {
			t.Errorf("%d lines, want 2", n)
		}
		if strings.Contains(out, secret) {
			t.Fatalf("secret leaked:\n%s", out)
		}
	})
	t.Run("only and region", func(t *testing.T) {
		code, out, _ := runCLI(t, envVars, "check", "-c", cfg, "--only", "home", "--format", "json")
		if code != exitOK || strings.Count(out, "\n") != 1 {
			t.Errorf("--only home: code %d, out %s", code, out)
		}
		code, out, _ = runCLI(t, envVars, "check", "-c", cfg, "--region", "us-east")
		if code != exitOK || strings.Contains(out, "down") || !strings.Contains(out, "us-east") {
			t.Errorf("--region us-east: code %d, out %s", code, out)
		}
		if code, _, errOut := runCLI(t, envVars, "check", "-c", cfg, "--region", "mars"); code != exitUsage || !strings.Contains(errOut, `region "mars" is not declared`) {
			t.Errorf("--region mars: code %d, %s", code, errOut)
		}
		if code, _, errOut := runCLI(t, envVars, "check", "-c", cfg, "--only", "nope"); code != exitUsage || !strings.Contains(errOut, "no check has that id") {
			t.Errorf("--only nope: code %d, %s", code, errOut)
		}
	})
	t.Run("prometheus", func(t *testing.T) {
		_, out, _ := runCLI(t, envVars, "check", "-c", cfg, "--format", "prometheus")
		for _, want := range []string{`probe_success{check="home",region="local"} 1`, `probe_http_status_code{check="down",region="local"} 503`} {
			if !strings.Contains(out, want) {
				t.Errorf("metrics lack %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, secret) {
			t.Fatal("secret leaked into metrics")
		}
	})
	t.Run("bad config is exit 2", func(t *testing.T) {
		code, _, errOut := runCLI(t, nil, "check", "-c", cfg)
		if code != exitUsage || !strings.Contains(errOut, "environment variable TOKEN is not set") {
			t.Errorf("code %d, %s", code, errOut)
		}
	})
}

// TestLogFlags: every command takes --log.level and --log.format, as
// Prometheus' tools do; json gives one JSON object per line, and a level
// hides what is below it.
func TestLogFlags(t *testing.T) {
	var out bytes.Buffer
	cmd := newCommand("x", "", env{stderr: &out})
	if code, done := cmd.parse([]string{"-c", "f.yaml", "--log.format", "json", "--log.level", "warn"}); done {
		t.Fatalf("parse: code %d", code)
	}
	log := cmd.logger()
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != "v" {
		t.Fatalf("log output %q (%v)", out.String(), err)
	}
	if code, _, errOut := runCLI(t, nil, "validate", "--log.level", "verbose", "-c", "f.yaml"); code != exitUsage || !strings.Contains(errOut, "unrecognized log level verbose") {
		t.Errorf("a bad level: code %d, %q", code, errOut)
	}
}

// TestSchemaCommand checks that "outpost schema" prints the checked-in
// schema, a JSON Schema document, and has help and usage errors like
// every other command.
func TestSchemaCommand(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "schema")
	if code != exitOK || errOut != "" {
		t.Fatalf("schema: code %d, stderr %q", code, errOut)
	}
	want, err := os.ReadFile("../../checks/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("outpost schema differs from checks/schema.json")
	}
	var doc struct {
		Schema     string         `json:"$schema"`
		ID         string         `json:"$id"`
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if doc.Schema != "http://json-schema.org/draft-07/schema#" || doc.ID != checks.SchemaURL || doc.Properties["checks"] == nil {
		t.Errorf("not the configuration's schema: $schema %q, $id %q, properties %v", doc.Schema, doc.ID, len(doc.Properties))
	}
	for _, args := range [][]string{{"schema", "--help"}, {"help", "schema"}} {
		code, out, errOut := runCLI(t, nil, args...)
		if code != exitOK || !strings.Contains(out+errOut, "Usage: outpost schema") || !strings.Contains(out+errOut, "yaml-language-server: $schema=") {
			t.Errorf("%v: code %d, output %q", args, code, out+errOut)
		}
	}
	if code, _, errOut := runCLI(t, nil, "schema", "extra"); code != exitUsage || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("schema extra: code %d, %q", code, errOut)
	}
	if code, out, _ := runCLI(t, nil, "help"); code != exitOK || !strings.Contains(out, "schema ") {
		t.Errorf("help does not list schema: %q", out)
	}
}
