package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/alertmanager"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/pagerduty"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/notify/slack"
	"github.com/outposthq/outpost/alerting/notify/teams"
	"github.com/outposthq/outpost/alerting/notify/webhook"
	"github.com/outposthq/outpost/checks"
)

const leakYAML = `version: 1
notifiers:
  - {name: oncall, routes: [critical, meta], pagerduty: {routing_key: "${PD_KEY}", url: "${PD_URL}"}}
  - {name: chat, slack: {webhook_url: "${SLACK_URL}"}}
  - {name: chat-dead, slack: {webhook_url: "${SLACK_DEAD_URL}"}}
  - {name: hook, webhook: {url: "${HOOK_URL}", secret: "${HOOK_SECRET}"}}
  - {name: log, console: {}}
  - {name: msteams, teams: {webhook_url: "${TEAMS_URL}"}}
  - {name: am, alertmanager: {urls: ["${AM_URL}"], bearer_token: "${AM_TOKEN}", resend: 1h}}
checks:
  - id: web-home
    http: {url: "http://127.0.0.1:1/"}
`

const (
	leakHookSecret = "whsec-LEAKCANARY-hook-0123456789"
	leakSlackPath  = "/services/T0LEAK/B0LEAK/LEAKCANARYslackpath"
	leakDeadPath   = "/services/T0DEAD/B0DEAD/LEAKCANARYdeadpath"
	leakAMToken    = "am-LEAKCANARY-token-0123456789"
	leakTeamsPath  = "/workflows/LEAKCANARYflow/triggers/manual/paths/invoke?api-version=2016-06-01&sig=LEAKCANARYteamssig"
)

// leakConfig loads leakYAML with the test secrets and the URLs in env.
func leakConfig(t testing.TB, urls map[string]string) *checks.Config {
	t.Helper()
	env := map[string]string{"PD_KEY": notifytest.RoutingKey, "HOOK_SECRET": leakHookSecret, "AM_TOKEN": leakAMToken, "SLACK_DEAD_URL": "http://" + notifytest.ClosedAddr(t) + leakDeadPath}
	for k, v := range urls {
		env[k] = v
	}
	cfg, err := checks.LoadBytes("leak.yaml", []byte(leakYAML), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// hostileServer echoes everything it can of the request (path, headers,
// body) in its error answers, as a misbehaving proxy might, for its first
// failures answers, then accepts with accept.
type hostileServer struct {
	*httptest.Server
	mu       sync.Mutex
	failures []int
	accept   int
	bodies   []string
}

func newHostileServer(t testing.TB, accept int, failures ...int) *hostileServer {
	h := &hostileServer{failures: failures, accept: accept}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(body))
		status := h.accept
		if len(h.failures) > 0 {
			status, h.failures = h.failures[0], h.failures[1:]
		}
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status/100 == 2 {
			w.WriteHeader(status)
			io.WriteString(w, `{"status":"success","message":"ok"}`)
			return
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(status)
		echo := fmt.Sprintf("path %s headers %v body %s secret %s", r.URL.String(), r.Header, body, leakHookSecret)
		json.NewEncoder(w).Encode(map[string]any{"status": "echo", "message": echo, "errors": []string{echo}})
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hostileServer) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

// TestNoSecretLeaks: no routing key, Slack webhook URL, webhook secret,
// Teams URL or Alertmanager bearer token appears in a log line, an error,
// the metrics, the outbox or any payload, except the routing key in
// PagerDuty's routing_key field.
func TestNoSecretLeaks(t *testing.T) {
	pdSrv := newHostileServer(t, http.StatusAccepted, 500, 429)
	slackSrv := newHostileServer(t, http.StatusOK, 500, 429)
	hookSrv := newHostileServer(t, http.StatusOK, 500)
	teamsSrv := newHostileServer(t, http.StatusAccepted, 500, 429)
	amSrv := newHostileServer(t, http.StatusOK, 500, 429)
	slackURL, teamsURL := slackSrv.URL+leakSlackPath, teamsSrv.URL+leakTeamsPath
	cfg := leakConfig(t, map[string]string{"PD_URL": pdSrv.URL, "SLACK_URL": slackURL, "HOOK_URL": hookSrv.URL + "/hook", "TEAMS_URL": teamsURL, "AM_URL": amSrv.URL})
	deadURL := cfg.Notifiers[2].Slack.WebhookURL.Value()
	secrets := []string{notifytest.RoutingKey, slackURL, leakSlackPath, "LEAKCANARY", deadURL, leakDeadPath, leakHookSecret, teamsURL, "LEAKCANARYteamssig", leakAMToken}

	var logs notifytest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	notifiers, err := receivers.Build(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := newPipe(t, dir, notifiers, func(o *Options) {
		o.Logger = logger
		o.Routes = receivers.Routes(cfg)
		o.Redact = cfg.Redactor()
	})
	h.run()
	down := notifytest.PageDown("outpost:check:web-home")
	// Each notifier's trigger is delivered (or, for chat-dead, failed a
	// few times) before the resolve: a resolve would drop a trigger never
	// delivered.
	deliveredAll := func(n float64) func() bool {
		return func() bool {
			return h.count("oncall", resultDelivered) == n && h.count("chat", resultDelivered) == n &&
				h.count("hook", resultDelivered) == n && h.count("log", resultDelivered) == n && h.count("msteams", resultDelivered) == n &&
				h.count("am", resultDelivered) == n &&
				h.count("chat-dead", resultRetried) >= 3
		}
	}
	drive := func(delivered func() bool) {
		for i := 0; !delivered(); i++ {
			if i == 200 {
				t.Fatalf("not delivered; logs:\n%s", logs.String())
			}
			created := h.clock.TimersCreated()
			h.clock.Advance(DefaultBackoffMax)
			waitFor(t, "another attempt", func() bool { return h.clock.TimersCreated() > created || delivered() })
		}
	}
	h.enqueue(down)
	drive(deliveredAll(1))
	h.enqueue(notifytest.ResolveOf(down))
	drive(deliveredAll(2))
	h.stop()

	// Direct attempts against hostile answers, for their errors.
	var errs []string
	hostile := []*hostileServer{newHostileServer(t, 400, 400), newHostileServer(t, 500, 500)}
	for _, srv := range hostile {
		for name, n := range notifiersFor(t, cfg, srv.URL) {
			if _, err := n.Notify(context.Background(), down); err != nil {
				errs = append(errs, name+": "+err.Error())
			} else {
				t.Errorf("%s: no error from a hostile server", name)
			}
		}
	}
	if _, err := notifiers["chat-dead"].Notify(context.Background(), down); err == nil {
		t.Error("chat-dead: no error")
	} else {
		errs = append(errs, err.Error())
	}
	if len(errs) < 9 {
		t.Errorf("only %d errors collected", len(errs))
	}

	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := os.ReadFile(filepath.Join(dir, OutboxFileName))
	if err != nil {
		t.Fatal(err)
	}
	var pdBodies []string
	for _, b := range pdSrv.received() {
		// The one place the routing key belongs.
		if n := strings.Count(b, `"routing_key":"`+notifytest.RoutingKey+`"`); n != 1 {
			t.Errorf("PagerDuty body without its routing_key: %s", b)
		}
		pdBodies = append(pdBodies, strings.Replace(b, `"routing_key":"`+notifytest.RoutingKey+`"`, "", 1))
	}
	places := map[string]string{
		"logs":                logs.String(),
		"errors":              strings.Join(errs, "\n"),
		"metrics":             fmt.Sprint(mfs),
		"outbox":              string(outbox),
		"pagerduty bodies":    strings.Join(pdBodies, "\n"),
		"slack bodies":        strings.Join(slackSrv.received(), "\n"),
		"webhook bodies":      strings.Join(hookSrv.received(), "\n"),
		"teams bodies":        strings.Join(teamsSrv.received(), "\n"),
		"alertmanager bodies": strings.Join(amSrv.received(), "\n"),
	}
	for where, text := range places {
		if text == "" && where != "errors" {
			t.Errorf("%s: nothing captured", where)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contain the secret %q:\n%s", where, s, text)
			}
		}
	}
	// The errors still say what happened.
	if all := places["errors"]; !strings.Contains(all, "status 400") || !strings.Contains(all, "status 500") || !strings.Contains(all, "<redacted>") {
		t.Errorf("errors:\n%s", all)
	}
	if strings.Count(places["logs"], "will retry") == 0 {
		t.Errorf("no retry logged:\n%s", places["logs"])
	}
}

// notifiersFor builds the HTTP notifiers of leakYAML against url.
func notifiersFor(t testing.TB, cfg *checks.Config, url string) map[string]notify.Notifier {
	t.Helper()
	opts := notify.Options{Redact: cfg.Redactor(), Timeout: 5 * time.Second}
	pd, err := pagerduty.New(&checks.PagerDutyNotifier{RoutingKey: checks.NewSecret(notifytest.RoutingKey), URL: url}, opts)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := slack.New(&checks.SlackNotifier{WebhookURL: checks.NewSecret(url + leakSlackPath)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := webhook.New(&checks.WebhookNotifier{URL: url + "/hook", Secret: checks.NewSecret(leakHookSecret)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := teams.New(&checks.TeamsNotifier{WebhookURL: checks.NewSecret(url + leakTeamsPath)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	am, err := alertmanager.New(&checks.AlertmanagerNotifier{URLs: []string{url}, BearerToken: checks.NewSecret(leakAMToken)}, opts, alertmanager.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		am.CloseIdleConnections()
		pd.CloseIdleConnections()
		sl.CloseIdleConnections()
		wh.CloseIdleConnections()
		tm.CloseIdleConnections()
	})
	return map[string]notify.Notifier{"pagerduty": pd, "slack": sl, "webhook": wh, "teams": tm, "alertmanager": am}
}
