package alerting

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

const pingToken = "nightly-backup-token-0123456789"

func heartbeatEvaluator(t *testing.T, spec string) (*Evaluator, *notifytest.Recorder, *clocktest.Fake, string) {
	t.Helper()
	env := map[string]string{"PING": pingToken}
	cfg, err := checks.LoadBytes("hb.yaml", []byte(`checks:
  - id: nightly-backup
    heartbeat: `+spec+`
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	ev, err := New(cfg, Options{Clock: clk, Notifier: notes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ev.Handler())
	t.Cleanup(srv.Close)
	return ev, notes, clk, srv.URL
}

func ping(t *testing.T, method, url string) int {
	t.Helper()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader("dumped 42 GB in 1h02m")
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, url, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func heartbeatPages(n *notifytest.Recorder) []string {
	var out []string
	for _, x := range n.Delivered() {
		if x.Kind == "check_down" {
			out = append(out, x.Details["action"]+": "+x.Summary)
		}
	}
	return out
}

// TestHeartbeatLifecycle: on time, late (page), back (resolve), a fail
// ping (page), a start without success past max_runtime (page).
func TestHeartbeatLifecycle(t *testing.T) {
	ev, notes, clk, url := heartbeatEvaluator(t, `{every: 1h, grace: 10m, max_runtime: 30m, token: "${PING}"}`)
	tick := func(d time.Duration) {
		clk.Advance(d)
		ev.tick(context.Background(), clk.Now())
	}
	if code := ping(t, http.MethodGet, url+"/ping/"+pingToken); code != 200 {
		t.Fatalf("ping = %d", code)
	}
	tick(65 * time.Minute) // due at 13:00, grace until 13:10
	if p := heartbeatPages(notes); len(p) != 0 {
		t.Fatalf("paged before the grace ran out: %v", p)
	}
	tick(6 * time.Minute) // 13:11: late
	p := heartbeatPages(notes)
	if len(p) != 1 || !strings.HasPrefix(p[0], "trigger: nightly-backup DOWN: last ping at 2026-11-21 12:00:00; the next was due by 2026-11-21 13:00:00 (grace 10m0s)") {
		t.Fatalf("late: %v", p)
	}
	ping(t, http.MethodHead, url+"/ping/"+pingToken) // back
	if p := heartbeatPages(notes); len(p) != 2 || !strings.HasPrefix(p[1], "resolve:") {
		t.Fatalf("after a ping: %v", p)
	}

	tick(5 * time.Minute)
	ping(t, http.MethodPost, url+"/ping/"+pingToken+"/fail")
	p = heartbeatPages(notes)
	if len(p) != 3 || !strings.Contains(p[2], "the job reported a failure: dumped 42 GB in 1h02m") {
		t.Fatalf("fail ping: %v", p)
	}
	ping(t, http.MethodGet, url+"/ping/"+pingToken) // the retry succeeded
	tick(time.Minute)

	ping(t, http.MethodGet, url+"/ping/"+pingToken+"/start")
	tick(31 * time.Minute)
	p = heartbeatPages(notes)
	if !strings.Contains(p[len(p)-1], "running for 31m0s since its start ping, max_runtime 30m0s") {
		t.Fatalf("runtime exceeded: %v", p)
	}
	ping(t, http.MethodPost, url+"/ping/"+pingToken)
	st := ev.Snapshot()
	if !strings.Contains(st.Checks[0].Summary, "ran 31m0s") {
		t.Errorf("status summary = %q, want the runtime", st.Checks[0].Summary)
	}
}

func TestHeartbeatCronInTimeZone(t *testing.T) {
	// Due at 03:00 Berlin (02:00 UTC), 30m grace.
	ev, notes, clk, url := heartbeatEvaluator(t, `{cron: "0 3 * * *", tz: Europe/Berlin, grace: 30m, token: "${PING}"}`)
	ping(t, http.MethodGet, url+"/ping/"+pingToken) // 12:00 UTC
	clk.Advance(14*time.Hour + 29*time.Minute)      // 02:29 UTC next day
	ev.tick(context.Background(), clk.Now())
	if p := heartbeatPages(notes); len(p) != 0 {
		t.Fatalf("paged inside the grace: %v", p)
	}
	clk.Advance(2 * time.Minute) // 02:31 UTC = 03:31 Berlin
	ev.tick(context.Background(), clk.Now())
	if p := heartbeatPages(notes); len(p) != 1 || !strings.Contains(p[0], "the next was due by 2026-11-22 02:00:00") {
		t.Fatalf("late: %v", p)
	}
}

func TestPingRejectsWrongTokensQuietly(t *testing.T) {
	_, _, _, url := heartbeatEvaluator(t, `{every: 1h, token: "${PING}"}`)
	for _, path := range []string{"/ping/wrong", "/ping/" + pingToken[:len(pingToken)-1], "/ping/" + pingToken + "/explode"} {
		if code := ping(t, http.MethodGet, url+path); code != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", path, code)
		}
	}
	if code := ping(t, http.MethodDelete, url+"/ping/"+pingToken); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", code)
	}
}
