package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEndToEndOneCopyPerChannel is issue 13's duplicates: two evaluators,
// each with its outbox, and a Slack and a webhook receiver. Every
// notification arrives once on each channel, from eval-a, the first in
// peer order; when eval-a is killed, eval-b sends as soon as it sees eval-a
// down.
func TestEndToEndOneCopyPerChannel(t *testing.T) {
	slack := notifytest.NewStatusServer(t, http.StatusOK, "ok")
	hook := notifytest.NewStatusServer(t, http.StatusOK, "ok")
	target, down := downTarget(t)
	lns := map[string]net.Listener{}
	for _, name := range []string{"eval-a", "eval-b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[name] = ln
	}
	env := e2eEnv("SLACK", slack.URL+"/hook")
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
peers:
  - {name: eval-a, url: "http://%s"}
  - {name: eval-b, url: "http://%s"}
notifiers:
  - {name: chat, slack: {webhook_url: "${SLACK}"}, routes: [critical, warning, meta]}
  - {name: hook, webhook: {url: "%s/events"}, routes: [critical, warning, meta]}
checks:
  - id: web-home
    interval: 2s
    timeout: 1s
    http: {url: "%s/"}
`, lns["eval-a"].Addr(), lns["eval-b"].Addr(), hook.URL, target.URL)), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evs := map[string]*Evaluator{}
	stops := map[string]func(){}
	for _, name := range []string{"eval-a", "eval-b"} {
		var ev *Evaluator
		ns, err := receivers.Build(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"chat", "hook"} {
			ns[n] = &notify.OneCopy{Notifier: ns[n], Name: n, Clock: clk, SentByPeer: func(at time.Time) (notify.PeerVerdict, string) { return ev.SentByPeer(at) }}
		}
		pipe, err := outbox.Open(outbox.Options{Notifiers: ns, Routes: receivers.Routes(cfg), Dir: t.TempDir(), Clock: clk, Redact: cfg.Redactor()})
		if err != nil {
			t.Fatal(err)
		}
		ev, err = New(cfg, Options{Clock: clk, Notifier: pipe, DataDir: t.TempDir(), Name: name})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.Handle("/", ev.Handler())
		srv := httptest.NewUnstartedServer(mux)
		srv.Listener = lns[name]
		srv.Start()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { ev.Run(ctx); done <- struct{}{} }()
		go func() { pipe.Run(ctx); done <- struct{}{} }()
		stopped := false
		stops[name] = func() {
			if stopped {
				return
			}
			stopped = true
			srv.CloseClientConnections()
			srv.Close()
			cancel()
			<-done
			<-done
			pipe.Close()
			ev.Close()
		}
		t.Cleanup(stops[name])
		evs[name] = ev
	}
	urls := []string{"http://" + lns["eval-a"].Addr().String(), "http://" + lns["eval-b"].Addr().String()}
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, urls, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "both evaluators hearing every region", func() bool {
		for _, ev := range evs {
			for _, r := range cfg.Regions {
				if stateOf(ev, r) != decide.RegionLive {
					return false
				}
			}
		}
		return true
	})
	// What reached a channel, by action: Slack's text and the webhook's
	// JSON both carry the summary.
	count := func(s *notifytest.StatusServer, action string) int {
		n := 0
		for _, r := range s.Requests() {
			var body map[string]any
			if json.Unmarshal(r.Body, &body) != nil {
				continue
			}
			text := fmt.Sprint(body)
			if strings.Contains(text, "web-home") && strings.Contains(strings.ToLower(text), action) {
				n++
			}
		}
		return n
	}

	down.Store(true)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "the DOWN page on both channels", func() bool {
		return count(slack, "down") > 0 && count(hook, "down") > 0
	})
	down.Store(false)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "the recovery on both channels", func() bool {
		return count(slack, "resolve") > 0 && count(hook, "resolve") > 0
	})
	// Let any straggler copy arrive.
	settle := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "half a minute", func() bool { return clk.Now().Sub(settle) >= 30*time.Second })
	// Each notification once: the webhook's events by key and action, and
	// as many Slack messages as webhook events.
	seen := map[string]int{}
	for _, r := range hook.Requests() {
		var ev struct{ Key, Action string }
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		seen[ev.Key+" "+ev.Action]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("webhook got %s %d times, want once", k, n)
		}
	}
	if len(seen) < 2 || len(slack.Requests()) != len(hook.Requests()) {
		t.Errorf("webhook got %d events (%d distinct), Slack %d messages; want each notification once on each:\n%s", len(hook.Requests()), len(seen), len(slack.Requests()), bodies(hook))
	}
	before := len(hook.Requests())

	// eval-a dies; the next outage reaches the channels from eval-b.
	stops["eval-a"]()
	killed := clk.Now()
	down.Store(true)
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "the second page, from eval-b", func() bool {
		return len(slack.Requests()) > before && len(hook.Requests()) > before
	})
	// eval-b checks eval-a every heartbeat (1s); one failed check is
	// enough, so the hold is short.
	if took := clk.Now().Sub(killed); took > 20*time.Second {
		t.Errorf("eval-b sent %s after eval-a died, want within a few heartbeats of the outage", took)
	}
}

func bodies(s *notifytest.StatusServer) string {
	var out []string
	for _, r := range s.Requests() {
		out = append(out, string(r.Body))
	}
	return strings.Join(out, "\n")
}
