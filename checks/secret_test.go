package checks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secretValue = "s3cr3t-Value-XYZ"

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
regions: [us-east]
agents:
  - {region: us-east, key: "${TOKEN}"}
notifiers:
  - name: oncall
    pagerduty: {routing_key: "${TOKEN}"}
checks:
  - id: a
    notify: [oncall]
    http:
      url: https://example.com/
      bearer_token: "${TOKEN}"
`, map[string]string{"TOKEN": secretValue})
	pd := cfg.Notifiers[0].PagerDuty
	s := pd.RoutingKey
	if s.Value() != secretValue || s.IsZero() {
		t.Fatalf("RoutingKey.Value() = %q", s.Value())
	}
	if cfg.Checks[0].HTTP.BearerToken.Value() != secretValue || cfg.Agents[0].Key.Value() != secretValue {
		t.Fatalf("bearer token or agent key not loaded")
	}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%10.3v"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, s),
			fmt.Sprintf(verb, &s),
			fmt.Sprintf(verb, *pd),
			fmt.Sprintf(verb, cfg.Agents),
			fmt.Sprintf(verb, *cfg.Checks[0].HTTP))
	}
	for _, verb := range []string{"%v", "%s", "%#v", "%+v"} {
		if got := fmt.Sprintf(verb, s); got != "<secret>" {
			t.Errorf("Sprintf(%q, secret) = %q, want <secret>", verb, got)
		}
	}
	for _, v := range []any{s, &s, pd, cfg.Agents, cfg.Checks[0].HTTP} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		outputs = append(outputs, string(b))
	}
	var back string
	if b, _ := json.Marshal(s); json.Unmarshal(b, &back) != nil || back != "<secret>" {
		t.Errorf("json.Marshal(secret) = %s", b)
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("loaded", "key", s, "ptr", &s, "notifier", *pd, "agents", cfg.Agents, slog.Any("http", cfg.Checks[0].HTTP))
		log.Info("group", slog.Group("g", slog.Any("key", s)))
	}
	outputs = append(outputs, buf.String())
	if !strings.Contains(buf.String(), "key=<secret>") || !strings.Contains(buf.String(), `"key":"<secret>"`) {
		t.Errorf("slog output does not show <secret>:\n%s", buf.String())
	}
	for _, out := range outputs {
		if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) {
			t.Errorf("output shows the secret: %s", out)
		}
	}
	if got := fmt.Sprint(Secret{}); got != "" {
		t.Errorf("empty secret prints %q, want empty", got)
	}
	if NewSecret("x").Value() != "x" {
		t.Errorf("NewSecret")
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${TOKEN}"}}
checks:
  - id: a
    notify: [oncall]
    http:
      url: "https://example.com/?k=${SHORT}"
      headers: {Authorization: "Bearer ${API}"}
`, map[string]string{"TOKEN": secretValue, "SHORT": "abc", "API": secretValue + "-longer"})
	redact := cfg.Redactor()
	tests := map[string]string{
		"status 401 from https://example.com/?k=abc, token " + secretValue: "status 401 from https://example.com/?k=abc, token <redacted>",
		"header Bearer " + secretValue + "-longer":                         "header Bearer <redacted>",
		secretValue + secretValue:                                          "<redacted><redacted>",
		"nothing to hide":                                                  "nothing to hide",
	}
	for in, want := range tests {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := NewRedactor(nil)("abc"); got != "abc" {
		t.Errorf("NewRedactor(nil) changed its input: %q", got)
	}
	if got := NewRedactor([]string{"ab", "abcd", "abcdef"})("ab abcd abcdef"); got != "ab <redacted> <redacted>" {
		t.Errorf("NewRedactor = %q", got)
	}
}

// TestSecretsNotInErrors loads configs whose environment values fail
// validation in every way that echoes a value, and checks that no error
// shows the value while every error is still reported.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"TOKEN":     secretValue,
		"TOKEN_URL": "ftp://" + secretValue + "/x",
		"PORT_URL":  "https://example.com:" + secretValue + "/",
		"SPACE_URL": "https://" + secretValue + " x/",
		"BAD_RE":    secretValue + "(",
		"BAD_DUR":   secretValue,
		"ADDR":      secretValue,
		"REGION":    secretValue + "!",
		"QUOTED":    `s3cr3t"Value\XYZ`,
		"METHOD":    "get-" + secretValue,
	}
	yaml := `
regions: [us-east]
notifiers:
  - name: oncall
    pagerduty: {routing_key: "${TOKEN}", url: "${TOKEN_URL}"}
  - name: hook
    webhook: {url: "${PORT_URL}"}
  - name: chat
    slack: {webhook_url: "${TOKEN_URL}"}
checks:
  - id: a
    interval: "${BAD_DUR}"
    regions: ["${REGION}"]
    notify: ["${TOKEN}"]
    http:
      url: "${TOKEN_URL}"
      method: "${METHOD}"
      resolver: "${ADDR}:x"
      ip_protocol: "${TOKEN}"
      expect:
        body_regex: "${BAD_RE}"
        headers: {X-A: "${BAD_RE}"}
        status: "${TOKEN}"
  - id: b
    quorum: "${TOKEN}"
    tcp: {address: "${ADDR}"}
  - id: c
    http: {url: "${PORT_URL}"}
  - id: d
    http: {url: "${SPACE_URL}"}
  - id: e
    tls: {address: "${QUOTED}"}
  - id: f
    http:
      url: https://example.com/
      body_file: "${TOKEN}"
`
	_, err := loadString(t, yaml, env)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, v := range env {
		if strings.Contains(msg, v) || strings.Contains(msg, secretValue) || strings.Contains(msg, fmt.Sprintf("%q", v)) {
			t.Errorf("error shows an environment value %q:\n%s", v, msg)
		}
	}
	if strings.Contains(msg, `s3cr3t\"Value\\XYZ`) {
		t.Errorf("error shows a quoted environment value:\n%s", msg)
	}
	want := `test.yaml:5:47: notifier "oncall": pagerduty.url must be an http or https URL
test.yaml:7:20: notifier "hook": webhook.url is not a valid URL
test.yaml:9:26: notifier "chat": slack.webhook_url must be an http or https URL
test.yaml:12:15: check "a": interval: the value of ${BAD_DUR} is not a duration: use a number and a unit, such as 30s, 2m or 1h30m
test.yaml:13:15: check "a": unknown region "<redacted>"; declared regions: us-east
test.yaml:14:14: check "a": unknown notifier "<redacted>"; defined: chat, hook, oncall
test.yaml:16:12: check "a": url must be an http or https URL
test.yaml:17:15: check "a": method "<redacted>": use an upper-case HTTP method such as GET or POST
test.yaml:18:17: check "a": resolver "<redacted>:x": want host or host:port of a DNS server
test.yaml:19:20: check "a": ip_protocol "<redacted>": use ipv4, ipv6, prefer-ipv4 or prefer-ipv6
test.yaml:21:21: check "a": http.expect.body_regex: the value of ${BAD_RE} is not a valid regular expression: invalid syntax
test.yaml:22:24: check "a": http.expect.headers.X-A: the value of ${BAD_RE} is not a valid regular expression: invalid syntax
test.yaml:23:17: check "a": http.expect.status: the value of ${TOKEN} is not a status code, class (2xx) or range (200-299)
test.yaml:25:13: check "b": quorum: the value of ${TOKEN} is not a quorum: use an integer, majority, all, or a fraction such as 2/3
test.yaml:26:20: check "b": tcp.address "<redacted>": want host:port with a port from 1 to 65535
test.yaml:28:17: check "c": url is not a valid URL
test.yaml:30:17: check "d": url is not a valid URL
test.yaml:32:20: check "e": tls.address "<redacted>": want host:port with a port from 1 to 65535
test.yaml:36:18: check "f": body_file "<redacted>": no such file or directory`
	if msg != want {
		t.Errorf("errors:\ngot:\n%s\nwant:\n%s", msg, want)
	}
}
