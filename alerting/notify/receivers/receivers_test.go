package receivers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/alertmanager"
	"github.com/outposthq/outpost/alerting/notify/console"
	"github.com/outposthq/outpost/alerting/notify/email"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/pagerduty"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/notify/slack"
	"github.com/outposthq/outpost/alerting/notify/teams"
	"github.com/outposthq/outpost/alerting/notify/webhook"
	"github.com/outposthq/outpost/checks"
)

const everyTypeYAML = `version: 1
notifiers:
  - {name: oncall, routes: [critical, meta], pagerduty: {routing_key: "${PD_KEY}", url: "http://127.0.0.1:1"}}
  - {name: chat, slack: {webhook_url: "${SLACK_URL}"}}
  - {name: hook, webhook: {url: "http://127.0.0.1:1/hook", secret: "${HOOK_SECRET}"}}
  - {name: log, console: {}}
  - {name: mail, repeat: 1h, email: {smarthost: "127.0.0.1:25", tls: none, from: outpost@example.com, to: [a@example.com, b@example.com]}}
  - {name: msteams, teams: {webhook_url: "${TEAMS_URL}"}}
checks:
  - id: web-home
    http: {url: "http://127.0.0.1:1/"}
`

func everyType(t testing.TB) *checks.Config {
	t.Helper()
	env := map[string]string{"PD_KEY": "R0UT1NGKEY0123456789abcdefABCDEF", "SLACK_URL": "http://127.0.0.1:1/services/T0/B0/XXXXsecretXXXX", "HOOK_SECRET": "whsec-0123456789", "TEAMS_URL": "http://127.0.0.1:1/workflows/x?sig=XXXXsecretXXXX"}
	cfg, err := checks.LoadBytes("t.yaml", []byte(everyTypeYAML), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBuild(t *testing.T) {
	t.Run("none configured", func(t *testing.T) {
		cfg, err := checks.LoadBytes("t.yaml", []byte("version: 1\nchecks:\n  - id: web\n    http: {url: \"http://127.0.0.1:1/\"}\n"), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		ns, err := receivers.Build(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ns[receivers.DefaultName].(*console.Notifier); !ok || len(ns) != 1 {
			t.Errorf("notifiers %v", ns)
		}
		if r := receivers.Routes(cfg)[receivers.DefaultName]; len(r) != 3 {
			t.Errorf("routes %v", r)
		}
	})
	t.Run("every type", func(t *testing.T) {
		cfg := everyType(t)
		ns, err := receivers.Build(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, n := range ns {
				if c, ok := n.(interface{ CloseIdleConnections() }); ok {
					c.CloseIdleConnections()
				}
			}
		})
		if _, ok := ns["oncall"].(*pagerduty.Notifier); !ok {
			t.Errorf("oncall is %T", ns["oncall"])
		}
		if _, ok := ns["chat"].(*slack.Notifier); !ok {
			t.Errorf("chat is %T", ns["chat"])
		}
		if _, ok := ns["hook"].(*webhook.Notifier); !ok {
			t.Errorf("hook is %T", ns["hook"])
		}
		if _, ok := ns["mail"].(*email.Notifier); !ok {
			t.Errorf("mail is %T", ns["mail"])
		}
		if _, ok := ns["msteams"].(*teams.Notifier); !ok {
			t.Errorf("msteams is %T", ns["msteams"])
		}
		if _, ok := ns["log"].(*console.Notifier); !ok {
			t.Errorf("log is %T", ns["log"])
		}
		if r := receivers.Repeats(cfg); len(r) != 1 || r["mail"] != time.Hour {
			t.Errorf("repeats %v, want mail's 1h alone", r)
		}
		if r := receivers.Routes(cfg)["oncall"]; strings.Join(r, ",") != "critical,meta" {
			t.Errorf("oncall routes %v", r)
		}
	})
}

// TestBuildAlertmanager: an alertmanager notifier is built with the labels
// of the checks, which its alerts carry.
func TestBuildAlertmanager(t *testing.T) {
	srv := notifytest.NewStatusServer(t, 200, "")
	yml := "version: 1\nnotifiers:\n  - {name: am, alertmanager: {urls: [\"" + srv.URL + "\"], resend: 1h}}\nchecks:\n  - id: web-home\n    labels: {service: web}\n    http: {url: \"http://127.0.0.1:1/\"}\n"
	cfg, err := checks.LoadBytes("t.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ns, err := receivers.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	am, ok := ns["am"].(*alertmanager.Notifier)
	if !ok {
		t.Fatalf("am is %T", ns["am"])
	}
	t.Cleanup(am.CloseIdleConnections)
	if _, err := am.Notify(context.Background(), notifytest.PageDown("k")); err != nil {
		t.Fatal(err)
	}
	if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].Path != "/api/v2/alerts" || !strings.Contains(string(reqs[0].Body), `"service":"web"`) {
		t.Errorf("requests %+v", reqs)
	}
}
