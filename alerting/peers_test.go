package alerting

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestEvaluatorPagesWhenAPeerDies: evaluators A and B watch each other.
// A's process dies (its listener closes): B pages "evaluator A
// unreachable" once, with the peer's dedup key, and resolves when A is
// back.
func TestEvaluatorPagesWhenAPeerDies(t *testing.T) {
	healthy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	a := httptest.NewServer(healthy)
	addrA := a.Listener.Addr().String()
	t.Cleanup(a.Close)
	cfg, err := checks.LoadBytes("p.yaml", []byte(`reporting: {heartbeat: 1s, stale_after: 5s}
peers:
  - {name: eval-a, url: "`+a.URL+`"}
  - {name: eval-b, url: "http://127.0.0.1:1"}
checks:
  - {id: web, http: {url: "https://example.test/"}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	b, err := New(cfg, Options{Clock: clk, Notifier: notes, Name: "eval-b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.peers) != 1 || b.peers[0].peer.Name != "eval-a" {
		t.Fatalf("eval-b watches %+v, want only eval-a", b.peers)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	peerNotes := func() []notify.Notification {
		var out []notify.Notification
		for _, n := range notes.Delivered() {
			if n.Kind == "peer_down" {
				out = append(out, n)
			}
		}
		return out
	}
	advanceUntil(t, clk, 500*time.Millisecond, 20*time.Second, "twenty healthy seconds", func() bool { return clk.Now().Sub(b.started) >= 20*time.Second })
	if n := peerNotes(); len(n) != 0 {
		t.Fatalf("paged about a healthy peer: %+v", n)
	}

	a.Close() // eval-a dies
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "the peer page", func() bool { return len(peerNotes()) >= 1 })
	p := peerNotes()[0]
	if p.Key != peerKey("eval-a") || p.Action != notify.ActionTrigger || p.Route != checks.RouteMeta || !strings.HasPrefix(p.Summary, "evaluator eval-a unreachable since ") || !strings.Contains(p.Summary, "seen from eval-b") {
		t.Fatalf("page = %+v", p)
	}
	advanceUntil(t, clk, time.Second, time.Minute, "thirty more seconds", func() bool { return clk.Now().Sub(p.Time) >= 30*time.Second })
	if n := len(peerNotes()); n != 1 {
		t.Fatalf("%d peer pages for one outage, want 1", n)
	}

	back := httptest.NewUnstartedServer(healthy) // eval-a restarts on its address
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addrA)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addrA, err)
	}
	back.Listener = ln
	back.Start()
	t.Cleanup(back.Close)
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "the resolve", func() bool { return len(peerNotes()) >= 2 })
	if r := peerNotes()[1]; r.Action != notify.ActionResolve || r.Key != p.Key {
		t.Fatalf("resolve = %+v", r)
	}
}

// TestPingsAreForwardedToPeers: a job pings one evaluator; the other
// knows too, so either may be down when the job runs.
func TestPingsAreForwardedToPeers(t *testing.T) {
	const token = "forwarded-ping-token-0123456789"
	var evB *Evaluator
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evB.Handler().ServeHTTP(w, r) }))
	t.Cleanup(srvB.Close)
	load := func() *checks.Config {
		cfg, err := checks.LoadBytes("p.yaml", []byte(`peers:
  - {name: eval-a, url: "http://127.0.0.1:1"}
  - {name: eval-b, url: "`+srvB.URL+`"}
checks:
  - {id: backup, heartbeat: {every: 1h, grace: 5m, token: "${T}"}}
`), func(k string) (string, bool) { return token, k == "T" })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	evA, err := New(load(), Options{Clock: clk, Notifier: &notifytest.Recorder{}, Name: "eval-a"})
	if err != nil {
		t.Fatal(err)
	}
	evB, err = New(load(), Options{Clock: clk, Notifier: &notifytest.Recorder{}, Name: "eval-b"})
	if err != nil {
		t.Fatal(err)
	}
	srvA := httptest.NewServer(evA.Handler())
	t.Cleanup(srvA.Close)

	clk.Advance(30 * time.Minute)
	resp, err := http.Post(srvA.URL+"/ping/"+token, "text/plain", strings.NewReader("backup ok"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "the forwarded ping at eval-b", func() bool {
		evB.beats.mu.Lock()
		defer evB.beats.mu.Unlock()
		return !evB.beats.states["backup"].LastSuccess.IsZero()
	})
	evB.beats.mu.Lock()
	msg := evB.beats.states["backup"].Message
	evB.beats.mu.Unlock()
	if msg != "backup ok" {
		t.Errorf("forwarded message = %q", msg)
	}
	evA.peerWG.Wait()
	evB.peerWG.Wait()
}

// TestPeerUnhealthyIsNotUnreachable: a peer that answers /healthz with a
// 503 saying what is wrong with it (its data dir) is paged as unhealthy,
// with its reason, not as unreachable.
func TestPeerUnhealthyIsNotUnreachable(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unhealthy: cannot write its data dir /var/lib/outpost: no space left on device (since 11:59:00)", http.StatusServiceUnavailable)
	}))
	t.Cleanup(a.Close)
	cfg, err := checks.LoadBytes("p.yaml", []byte(`reporting: {heartbeat: 1s, stale_after: 5s}
peers:
  - {name: eval-a, url: "`+a.URL+`"}
  - {name: eval-b, url: "http://127.0.0.1:1"}
checks:
  - {id: web, http: {url: "https://example.test/"}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	b, err := New(cfg, Options{Clock: clk, Notifier: notes, Name: "eval-b"})
	if err != nil {
		t.Fatal(err)
	}
	serveHandler(t, b)
	advanceUntil(t, clk, 500*time.Millisecond, time.Minute, "the peer page", func() bool { return len(notesOf(notes, notify.KindPeerDown)) >= 1 })
	p := notesOf(notes, notify.KindPeerDown)[0]
	want := "evaluator eval-a unhealthy since 12:00:00 (seen from eval-b): /healthz answered 503: unhealthy: cannot write its data dir /var/lib/outpost: no space left on device"
	if !strings.HasPrefix(p.Summary, want) {
		t.Fatalf("page %q, want it to start %q", p.Summary, want)
	}
}
