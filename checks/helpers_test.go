package checks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mapEnv is a LookupEnv backed by m, so that tests never touch the process
// environment and can run in parallel.
func mapEnv(m map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// fixtureEnv is the environment every fixture under testdata/ is loaded with.
var fixtureEnv = map[string]string{
	"PAGERDUTY_ROUTING_KEY": "pd-routing-key-0001",
	"SLACK_WEBHOOK":         "https://hooks.slack.example/services/T0/B0/abcdef",
	"OUTPOST_KEY_US_EAST":   "agent-key-us-east-0001",
	"OUTPOST_KEY_EU_WEST":   "agent-key-eu-west-0001",
	"API_TOKEN":             "api-token-0001",
	"EMPTY":                 "",
}

// writeFiles creates files (name to content) under a new temporary
// directory and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadString loads one in-memory config named "test.yaml".
func loadString(t *testing.T, yaml string, env map[string]string) (*Config, error) {
	t.Helper()
	return LoadBytes("test.yaml", []byte(yaml), mapEnv(env))
}

// mustLoad loads yaml and fails the test on any error.
func mustLoad(t *testing.T, yaml string, env map[string]string) *Config {
	t.Helper()
	cfg, err := loadString(t, yaml, env)
	if err != nil {
		t.Fatalf("LoadBytes: unexpected error:\n%v", err)
	}
	return cfg
}

// wantErrors loads yaml and checks that the error text is exactly want
// (lines joined by "\n").
func wantErrors(t *testing.T, yaml string, env map[string]string, want ...string) {
	t.Helper()
	_, err := loadString(t, yaml, env)
	if err == nil {
		t.Fatalf("LoadBytes: no error, want:\n%s", strings.Join(want, "\n"))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("LoadBytes error:\ngot:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
