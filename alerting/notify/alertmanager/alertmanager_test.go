package alertmanager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAM records the alert lists POSTed to it and answers status.
type fakeAM struct {
	*httptest.Server
	mu     sync.Mutex
	posts  [][]postableAlert
	heads  []http.Header
	status int
}

func newFakeAM(t *testing.T, status int) *fakeAM {
	f := &fakeAM{status: status}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method == http.MethodGet {
			io.WriteString(w, "[]")
			return
		}
		if r.URL.Path != "/api/v2/alerts" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		var got []postableAlert
		if err := json.Unmarshal(body, &got); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.posts = append(f.posts, got)
		f.heads = append(f.heads, r.Header.Clone())
		w.WriteHeader(f.status)
		// What a misbehaving proxy might do: echo the request.
		fmt.Fprintf(w, "headers %v", r.Header)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAM) recorded() ([][]postableAlert, []http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]postableAlert(nil), f.posts...), append([]http.Header(nil), f.heads...)
}

func TestAlertName(t *testing.T) {
	for kind, want := range map[string]string{
		"check_down": "OutpostCheckDown", "check_disagreement": "OutpostCheckDisagreement",
		"peer_down": "OutpostPeerDown", "monitoring": "OutpostMonitoring", "": "Outpost",
	} {
		if got := AlertName(kind); got != want {
			t.Errorf("AlertName(%q) = %q, want %q", kind, got, want)
		}
	}
}

// TestRetryClassification: the classification every HTTP receiver must
// pass.
func TestRetryClassification(t *testing.T) {
	notifytest.RetryTests(t, "s3cr3t-path", func(t *testing.T, url string) notify.Notifier {
		n, err := New(&checks.AlertmanagerNotifier{URLs: []string{url + "/s3cr3t-path"}}, notify.Options{Timeout: 5 * time.Second}, Env{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.CloseIdleConnections)
		return n
	})
}

// TestSendsToAll: every Alertmanager gets every alert; one that accepts
// is enough for a delivery, as with Prometheus; when all refuse, the
// errors are joined and retried if one of them may pass.
func TestSendsToAll(t *testing.T) {
	ok, bad, down := newFakeAM(t, http.StatusOK), newFakeAM(t, http.StatusBadRequest), newFakeAM(t, http.StatusServiceUnavailable)
	build := func(urls ...string) *Notifier {
		n, err := New(&checks.AlertmanagerNotifier{URLs: urls, Resend: time.Hour}, notify.Options{Timeout: 5 * time.Second}, Env{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.CloseIdleConnections)
		return n
	}
	if retry, err := build(bad.URL, ok.URL, down.URL).Notify(context.Background(), notifytest.PageDown("k")); err != nil || retry {
		t.Errorf("one accepting: Notify = (%v, %v)", retry, err)
	}
	for _, f := range []*fakeAM{ok, bad, down} {
		if posts, _ := f.recorded(); len(posts) != 1 || len(posts[0]) != 1 {
			t.Errorf("%s got %d posts", f.URL, len(posts))
		}
	}
	retry, err := build(bad.URL, down.URL).Notify(context.Background(), notifytest.PageDown("k"))
	var de *notify.DeliveryError
	if err == nil || !retry || !errors.As(err, &de) || !strings.Contains(err.Error(), "status 400") || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("none accepting: Notify = (%v, %v)", retry, err)
	}
	if retry, err := build(bad.URL).Notify(context.Background(), notifytest.PageDown("k")); err == nil || retry {
		t.Errorf("refused: Notify = (%v, %v), want no retry", retry, err)
	}
}

// TestResend drives the re-send loop on a fake clock: every resend the
// firing alerts go again with endsAt = now + 4 × resend; the resolve ends
// the alert (endsAt = now) and the loop with it.
func TestResend(t *testing.T) {
	am := newFakeAM(t, http.StatusOK)
	clk := clocktest.New(notifytest.T0.Add(time.Minute))
	const resend = 30 * time.Second
	n, err := New(&checks.AlertmanagerNotifier{URLs: []string{am.URL}, Resend: resend}, notify.Options{Clock: clk, Timeout: 5 * time.Second}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.CloseIdleConnections)
	down := notifytest.PageDown("k1")
	group := notify.Notification{Kind: notify.KindGroup, Action: notify.ActionTrigger, Key: "g", Route: notify.RouteWarning, Summary: "2 checks", Time: notifytest.T0,
		Members: []notify.Member{
			{Key: "m1", Check: "a", Kind: "check_degraded", State: notify.MemberFiring, Summary: "a degraded"},
			{Key: "m2", Check: "b", Kind: "check_degraded", State: notify.MemberResolved, Summary: "b ok"},
		}}
	for _, x := range []notify.Notification{down, group} {
		if _, err := n.Notify(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	if n.Firing() != 2 {
		t.Fatalf("firing %d, want k1 and m1", n.Firing())
	}
	posts, _ := am.recorded()
	if len(posts) != 2 || len(posts[1]) != 2 || !posts[1][1].EndsAt.Equal(clk.Now()) || posts[1][1].Labels["check"] != "b" {
		t.Fatalf("posts %+v", posts)
	}
	for i := 1; i <= 3; i++ {
		clk.WaitTimersCreated(t, i, 10*time.Second)
		clk.Advance(resend)
		clocktest.WaitFor(t, 10*time.Second, "a re-send", func() bool { p, _ := am.recorded(); return len(p) == 2+i })
		posts, _ = am.recorded()
		last := posts[len(posts)-1]
		if len(last) != 2 || last[0].Labels["dedup_key"] != "k1" || last[1].Labels["dedup_key"] != "m1" {
			t.Fatalf("re-send %d: %+v", i, last)
		}
		for _, a := range last {
			if want := clk.Now().Add(4 * resend); !a.EndsAt.Equal(want) {
				t.Errorf("re-send %d: endsAt %s, want %s", i, a.EndsAt, want)
			}
			if !a.StartsAt.Equal(notifytest.T0) {
				t.Errorf("re-send %d: startsAt %s, want the trigger's", i, a.StartsAt)
			}
		}
	}
	resolve := notifytest.ResolveOf(down)
	resolve.Time = clk.Now()
	if _, err := n.Notify(context.Background(), resolve); err != nil {
		t.Fatal(err)
	}
	group.Members[0].State = notify.MemberResolved
	if _, err := n.Notify(context.Background(), group); err != nil {
		t.Fatal(err)
	}
	posts, _ = am.recorded()
	if r := posts[len(posts)-2]; len(r) != 1 || !r[0].EndsAt.Equal(clk.Now()) || r[0].Labels["regions"] != "eu-west,us-east" {
		t.Errorf("resolve %+v: want the firing labels, ended now", r)
	}
	if n.Firing() != 0 {
		t.Errorf("firing %d after the resolves", n.Firing())
	}
	// The loop ends at its next tick with nothing to send.
	sent := len(posts)
	clk.Advance(resend)
	clocktest.WaitFor(t, 10*time.Second, "the loop to end", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return !n.running
	})
	if p, _ := am.recorded(); len(p) != sent {
		t.Errorf("%d posts after the resolve", len(p)-sent)
	}
}

// TestNotice: a one-shot notice shows until 4 × resend and is not re-sent.
func TestNotice(t *testing.T) {
	am := newFakeAM(t, http.StatusOK)
	clk := clocktest.New(notifytest.T0)
	n, err := New(&checks.AlertmanagerNotifier{URLs: []string{am.URL}, Resend: time.Minute}, notify.Options{Clock: clk}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.CloseIdleConnections)
	notice := notify.Notification{Kind: notify.KindStateSetAside, Key: "aside", Route: notify.RouteMeta, Summary: "state set aside", Time: notifytest.T0}
	if _, err := n.Notify(context.Background(), notice); err != nil {
		t.Fatal(err)
	}
	posts, _ := am.recorded()
	if len(posts) != 1 || posts[0][0].Labels["alertname"] != "OutpostStateSetAside" || !posts[0][0].EndsAt.Equal(notifytest.T0.Add(4*time.Minute)) || n.Firing() != 0 {
		t.Errorf("posts %+v, firing %d", posts, n.Firing())
	}
}

// TestNoSecretLeaks: neither the bearer token, nor the basic auth
// password (plain or in its base64 form), nor a password in a URL appears
// in an error (the shared notifytest assertion) or a log line, even from
// an Alertmanager (or proxy) that echoes the request in its answer.
func TestNoSecretLeaks(t *testing.T) {
	const token, pass, urlPass = "LEAKCANARY-token-0123456789", "LEAKCANARY-pass-0123456789", "LEAKCANARY-urlpass-0123"
	echo := newFakeAM(t, http.StatusInternalServerError)
	withPass := strings.Replace(echo.URL, "http://", "http://am:"+urlPass+"@", 1)
	var logs notifytest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var errs []string
	clk := clocktest.New(notifytest.T0)
	for _, cfg := range []checks.AlertmanagerNotifier{
		{URLs: []string{echo.URL}, BearerToken: checks.NewSecret(token)},
		{URLs: []string{echo.URL}, BasicAuth: &checks.BasicAuth{Username: "outpost", Password: checks.NewSecret(pass)}},
		{URLs: []string{withPass, "http://" + notifytest.ClosedAddr(t) + "/" + urlPass}},
	} {
		n, err := New(&cfg, notify.Options{Timeout: 5 * time.Second, Clock: clk}, Env{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		_, err = notifytest.AssertNotifyLeaksNoSecret(t, n, notifytest.PageDown("k"), token, pass, urlPass, "LEAKCANARY", base64.StdEncoding.EncodeToString([]byte("outpost:"+pass)))
		if err == nil {
			t.Fatal("no error from a failing Alertmanager")
		}
		errs = append(errs, err.Error())
		n.CloseIdleConnections()
	}
	// A re-send that fails is logged, without the secret either.
	flaky := newFakeAM(t, http.StatusOK)
	n, err := New(&checks.AlertmanagerNotifier{URLs: []string{flaky.URL}, BearerToken: checks.NewSecret(token), Resend: time.Minute}, notify.Options{Timeout: 5 * time.Second, Clock: clk}, Env{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), notifytest.PageDown("k")); err != nil {
		t.Fatal(err)
	}
	flaky.mu.Lock()
	flaky.status = http.StatusBadGateway
	flaky.mu.Unlock()
	clk.WaitTimersCreated(t, 1, 10*time.Second)
	clk.Advance(time.Minute)
	clocktest.WaitFor(t, 10*time.Second, "the failed re-send to be logged", func() bool { return strings.Contains(logs.String(), "status 502") })
	n.CloseIdleConnections()

	_, heads := echo.recorded()
	if got := heads[0].Get("Authorization"); got != "Bearer "+token {
		t.Errorf("bearer: Authorization %q", got)
	}
	if got := heads[1].Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("outpost:"+pass)) {
		t.Errorf("basic: Authorization %q", got)
	}
	notifytest.AssertNoSecret(t, "the logs", logs.String(), token, pass, urlPass, "LEAKCANARY")
	all := strings.Join(errs, "\n") + logs.String()
	for _, s := range []string{token, pass, urlPass, "LEAKCANARY", base64.StdEncoding.EncodeToString([]byte("outpost:" + pass))} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q in:\n%s", s, all)
		}
	}
	if !strings.Contains(all, "status 500") || !strings.Contains(all, "<redacted>") {
		t.Errorf("the errors no longer say what happened:\n%s", all)
	}
}

// TestReminderAfterRestart: a notifier that never saw an incident (a
// restarted process) takes the outbox's reminder as the trigger it is,
// keeps the alert and re-sends it with the incident's labels.
func TestReminderAfterRestart(t *testing.T) {
	am := newFakeAM(t, http.StatusOK)
	clk := clocktest.New(notifytest.T0.Add(time.Hour))
	n, err := New(&checks.AlertmanagerNotifier{URLs: []string{am.URL}, Resend: time.Minute}, notify.Options{Clock: clk}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.CloseIdleConnections)
	reminder := notifytest.PageDown("k")
	reminder.Details = map[string]string{"reminder": "true", "first_sent": notifytest.T0.Format(time.RFC3339)}
	if _, err := n.Notify(context.Background(), reminder); err != nil {
		t.Fatal(err)
	}
	if n.Firing() != 1 {
		t.Fatalf("firing %d", n.Firing())
	}
	clk.WaitTimersCreated(t, 1, 10*time.Second)
	clk.Advance(time.Minute)
	clocktest.WaitFor(t, 10*time.Second, "a re-send", func() bool { p, _ := am.recorded(); return len(p) == 2 })
	posts, _ := am.recorded()
	first, again := posts[0][0], posts[1][0]
	if !sameLabels(first.Labels, again.Labels) || first.Labels["regions"] != "eu-west,us-east" || !again.StartsAt.Equal(notifytest.T0) {
		t.Errorf("reminder %+v, re-send %+v", first, again)
	}
}
