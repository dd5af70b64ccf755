package checks

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestEmailTeamsAndRepeatDefaults: what Load fills in for email, teams
// and repeat when the file leaves them out.
func TestEmailTeamsAndRepeatDefaults(t *testing.T) {
	env := map[string]string{"SMTP_PASSWORD": "smtp-pass-0001", "TEAMS_URL": "https://prod.example.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=abc"}
	for _, tc := range []struct {
		name, defaults string
		want           map[string]time.Duration
	}{
		{"built-in", "", map[string]time.Duration{"submission": 0, "smtps": 90 * time.Minute, "relay": 0, "msteams": 0}},
		{"from defaults", "defaults: {repeat: 2h}\n", map[string]time.Duration{"submission": 2 * time.Hour, "smtps": 90 * time.Minute, "relay": 2 * time.Hour, "msteams": 2 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "version: 1\n" + tc.defaults + `notifiers:
  - name: submission
    email: {smarthost: "smtp.example.com:587", username: outpost, password: "${SMTP_PASSWORD}", from: outpost@example.com, to: [a@example.com, b@example.org]}
  - name: smtps
    repeat: 90m
    email: {smarthost: "smtp.example.com:465", username: outpost, password: "${SMTP_PASSWORD}", auth: login, from: outpost@example.com, to: [a@example.com]}
  - name: relay
    email: {smarthost: "localhost:25", tls: none, from: outpost@example.com, to: [a@example.com]}
  - name: msteams
    teams: {webhook_url: "${TEAMS_URL}"}
checks:
  - id: a
    http: {url: "https://example.com/"}
`
			cfg, err := LoadBytes("t.yaml", []byte(yaml), mapEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*Notifier{}
			for i := range cfg.Notifiers {
				byName[cfg.Notifiers[i].Name] = &cfg.Notifiers[i]
			}
			for name, want := range tc.want {
				if got := byName[name].Repeat; got != want {
					t.Errorf("%s: repeat %s, want %s", name, got, want)
				}
			}
			sub, smtps, relay := byName["submission"].Email, byName["smtps"].Email, byName["relay"].Email
			if sub.TLS != EmailSTARTTLS || sub.Auth != EmailAuthPlain || sub.Password.Value() != "smtp-pass-0001" || len(sub.To) != 2 {
				t.Errorf("submission %+v", sub)
			}
			if smtps.TLS != EmailImplicitTLS || smtps.Auth != EmailAuthLogin {
				t.Errorf("port 465: %+v, want implicit TLS", smtps)
			}
			if relay.TLS != EmailNoTLS || relay.Auth != "" {
				t.Errorf("relay %+v", relay)
			}
			if byName["msteams"].Teams.WebhookURL.Value() != env["TEAMS_URL"] {
				t.Error("teams webhook_url not resolved")
			}
		})
	}
}

// TestEmailCAFileReadAtLoad: ca_file is read relative to the config file,
// as the checks' ca_file is.
func TestEmailCAFileReadAtLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"conf/outpost.yaml": `version: 1
notifiers:
  - name: mail
    email: {smarthost: "smtp.internal:465", ca_file: certs/ca.pem, from: outpost@example.com, to: [a@example.com]}
checks:
  - id: a
    http: {url: "https://example.com/"}
`,
	})
	pem, err := os.ReadFile("../examples/internal-ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "conf/certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf/certs/ca.pem"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{filepath.Join(dir, "conf/outpost.yaml")}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Notifiers[0].Email; string(e.CAPEM) != string(pem) || e.TLS != EmailImplicitTLS {
		t.Errorf("email %+v: want the CA read and implicit TLS on 465", e)
	}
}
