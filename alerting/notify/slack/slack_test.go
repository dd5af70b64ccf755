package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
)

const slackPath = "/services/T0000/B0000/XXXXslacksecretXXXX"

func newTestSlack(t testing.TB, url string) *Notifier {
	t.Helper()
	s, err := New(&checks.SlackNotifier{WebhookURL: checks.NewSecret(url)}, notify.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.CloseIdleConnections)
	return s
}

func TestSlackNotifier(t *testing.T) {
	srv := notifytest.NewStatusServer(t, http.StatusOK, "ok")
	s := newTestSlack(t, srv.URL+slackPath)
	down := notifytest.PageDown("outpost:check:web-home")
	down.Summary = "web-home <DOWN> & out"
	down.Runbook = "https://runbooks.example.com/web-home"
	if retry, err := s.Notify(context.Background(), down); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 || reqs[0].Path != slackPath || reqs[0].Header.Get("Content-Type") != "application/json" {
		t.Fatalf("requests %+v", reqs)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string     `json:"type"`
			Text     *slackText `json:"text"`
			Elements []slackText
		} `json:"blocks"`
	}
	if err := json.Unmarshal(reqs[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "web-home &lt;DOWN&gt; &amp; out") || !strings.Contains(msg.Text, "CRITICAL") {
		t.Errorf("text %q", msg.Text)
	}
	all := string(reqs[0].Body)
	for _, want := range []string{"us-east", "status 503, want 200", "203.0.113.10:443", "eu-west", "connection refused", "status page", down.Link,
		"runbook", down.Runbook, down.Target, "from evaluator-eu", "probed 3s ago"} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q: %s", want, all)
		}
	}
}

// TestSlackRetryClassification: the classification every HTTP receiver
// must pass.
func TestSlackRetryClassification(t *testing.T) {
	notifytest.RetryTests(t, "/services/", func(t *testing.T, url string) notify.Notifier { return newTestSlack(t, url+slackPath) })
}

// TestSlackSeverityIsTheEventsOne: the headline names the severity every
// other channel shows (notify.SeverityOf): a meta page is ERROR, as on
// PagerDuty, whatever the producer wrote; a resolve says RESOLVED.
func TestSlackSeverityIsTheEventsOne(t *testing.T) {
	reminder := notifytest.PageDown("k")
	reminder.Details = map[string]string{notify.DetailReminder: "true"}
	meta := notifytest.PageDown("outpost:region:us-east")
	meta.Route, meta.Severity = notify.RouteMeta, notify.SeverityCritical
	for _, tc := range []struct {
		n    notify.Notification
		want string
	}{
		{notifytest.PageDown("k"), ":red_circle: [CRITICAL]"},
		{reminder, ":red_circle: [REMINDER: CRITICAL]"},
		{meta, ":large_orange_circle: [ERROR]"},
		{notifytest.ResolveOf(meta), ":large_green_circle: [RESOLVED]"},
	} {
		if got := slackMessage(tc.n).Text; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %s: %q, want it to start with %q", tc.n.Route, tc.n.Action, got, tc.want)
		}
	}
}
