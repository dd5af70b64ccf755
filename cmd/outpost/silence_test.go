package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/checks"
)

// outpost silence add, list and expire against a real evaluator's API.
func TestSilenceCommand(t *testing.T) {
	const token = "silence-command-token-000000001"
	cfg, err := checks.LoadBytes("s.yaml", []byte(`api: {token: "${T}"}
checks:
  - {id: web, http: {url: "https://example.test/"}}
`), func(k string) (string, bool) { return token, k == "T" })
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alerting.New(cfg, alerting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	srv := httptest.NewServer(evaluatorMux(newRegistry(), ev, nil))
	defer srv.Close()
	env := map[string]string{"OUTPOST_API_TOKEN": token}

	code, out, errOut := runCLI(t, env, "silence", "add", "--url", srv.URL, "--for", "2h", "--comment", "db failover", "--author", "ana", "check=web", "region=~eu-.*")
	id := strings.TrimSpace(out)
	if code != exitOK || len(id) != 32 {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, env, "silence", "list", "--url", srv.URL)
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, `check="web", region=~"eu-.*"`) || !strings.Contains(out, "active") {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, env, "silence", "expire", "--url", srv.URL, id); code != exitOK || !strings.Contains(out, "expired "+id) {
		t.Fatalf("expire: %d %q %q", code, out, errOut)
	}
	if _, out, _ = runCLI(t, env, "silence", "list", "--url", srv.URL); !strings.Contains(out, "expired") {
		t.Errorf("list after expire: %q", out)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no token", nil, []string{"add", "--url", srv.URL, "--for", "1h", "--comment", "x", "check=web"}, "$OUTPOST_API_TOKEN is not set"},
		{"wrong token", map[string]string{"OUTPOST_API_TOKEN": "wrong-token-000000000000"}, []string{"list", "--url", srv.URL}, "401 Unauthorized"},
		{"bad matcher", env, []string{"add", "--url", srv.URL, "--for", "1h", "--comment", "x", "web"}, `matcher "web": want NAME=VALUE`},
		{"no end", env, []string{"add", "--url", srv.URL, "--comment", "x", "check=web"}, "--for or --until is required"},
		{"no comment", env, []string{"add", "--url", srv.URL, "--for", "1h", "check=web"}, "comment is required"},
		{"bad id", env, []string{"expire", "--url", srv.URL, "../../x"}, "give one silence ID"},
		{"no url", env, []string{"list"}, "--url is required"},
		{"unknown", env, []string{"mute", "--url", srv.URL}, `unknown subcommand "mute"`},
	} {
		code, _, errOut := runCLI(t, tc.env, append([]string{"silence"}, tc.args...)...)
		if code == exitOK || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: %d %q, want %q", tc.name, code, errOut, tc.want)
		}
		if strings.Contains(errOut, token) {
			t.Errorf("%s: the token is printed", tc.name)
		}
	}
}
