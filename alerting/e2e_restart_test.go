package alerting

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// restartable is an evaluator on a fixed address and data dir that a test
// can kill and start again, as a supervisor would.
type restartable struct {
	t     *testing.T
	cfg   *checks.Config
	clk   *clocktest.Fake
	notes *notifytest.Recorder
	dir   string
	addr  string
	ev    *Evaluator
	stop  func()
}

func (r *restartable) start() {
	r.t.Helper()
	ev, err := New(r.cfg, Options{Clock: r.clk, Notifier: r.notes, DataDir: r.dir, Name: "eval-a"})
	if err != nil {
		r.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Skipf("cannot listen on %s again: %v", r.addr, err)
	}
	r.addr = ln.Addr().String()
	srv := httptest.NewUnstartedServer(ev.Handler())
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(ctx) }()
	r.ev = ev
	r.stop = func() {
		cancel()
		<-done
		srv.CloseClientConnections()
		srv.Close()
		ev.Close()
	}
}

// TestEndToEndRestartIsInvisible is issue 13's visible restart: the
// evaluator is killed mid-incident (ap-south fails the check: a DEGRADED
// warning is open) and kept down for 35 s while every agent runs; when it
// comes back, ap-south's agent is slow to reconnect. On-call must see
// nothing: no resolve and no second trigger of the warning, no "agent
// silent", no UNKNOWN page.
func TestEndToEndRestartIsInvisible(t *testing.T) {
	// The target answers on 127.0.0.1; ap-south's path to it (127.0.0.3,
	// same port) reaches a server that fails.
	ok := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ok.Listener = ln
	ok.Start()
	t.Cleanup(ok.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	bad := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	badLn, err := net.Listen("tcp", "127.0.0.3:"+port)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3:%s: %v", port, err)
	}
	bad.Listener = badLn
	bad.Start()
	t.Cleanup(bad.Close)

	checksYAML := fmt.Sprintf(`checks:
  - id: web-home
    interval: 2s
    timeout: 500ms
    failure: {consecutive: 2}
    http: {url: "http://www.example.test:%s/"}
`, port)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev := &restartable{t: t, cfg: regionConfig(t, "us-east", checksYAML), clk: clk, notes: &notifytest.Recorder{}, dir: t.TempDir(), addr: "127.0.0.1:0"}
	ev.start()
	t.Cleanup(func() { ev.stop() })

	// ap-south reaches the evaluator through a proxy, to be slow to
	// reconnect after the restart.
	apPath := proxyTo(t, "ap-south-eval", "127.0.0.1:0", ev.addr)
	paths := map[string]string{"us-east": "127.0.0.1", "eu-west": "127.0.0.1", "ap-south": "127.0.0.3"}
	for region, ip := range paths {
		url := "http://" + ev.addr
		if region == "ap-south" {
			url = "http://" + apPath.Listen
		}
		startAgentWith(t, regionConfig(t, region, checksYAML), clk, region, []string{url}, t.TempDir(),
			probes.Options{Resolver: regionResolver(netip.MustParseAddr(ip))})
	}
	warnings := func() []notify.Notification {
		var out []notify.Notification
		for _, n := range ev.notes.Delivered() {
			if n.Kind == notify.CheckKind("degraded") {
				out = append(out, n)
			}
		}
		return out
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "the DEGRADED warning for ap-south", func() bool { return len(warnings()) == 1 })
	before := len(ev.notes.Delivered())

	// Killed, and down for 35 s; ap-south's path is cut meanwhile.
	apPath.Stop()
	ev.stop()
	downAt := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "35 s down", func() bool { return clk.Now().Sub(downAt) >= 35*time.Second })
	ev.start()
	restartedAt := clk.Now()
	// ap-south's agent gets through 3 s after the restart, within the
	// start grace (stale_after 3s + heartbeat 1s + batch delay 200ms).
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "3 s after the restart", func() bool { return clk.Now().Sub(restartedAt) >= 3*time.Second })
	if err := apPath.Start(); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clk, 500*time.Millisecond, 2*time.Minute, "a minute and a half after the restart", func() bool {
		return clk.Now().Sub(restartedAt) >= 90*time.Second
	})
	for _, n := range ev.notes.Delivered()[before:] {
		t.Errorf("notification after the restart: %s %s %q", n.Kind, n.Action, n.Summary)
	}
	if w, _ := ev.ev.Window("web-home", "ap-south"); w.Last == nil || w.Last.OK {
		t.Errorf("ap-south is not reporting its failures after the restart: %+v", w.Last)
	}
	if c := ev.ev.Snapshot().Checks[0]; c.State != "DEGRADED" || !strings.Contains(c.Summary, "ap-south") {
		t.Errorf("after the restart the check is %s: %s", c.State, c.Summary)
	}
}
