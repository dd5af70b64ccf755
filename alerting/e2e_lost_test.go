package alerting

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestAgentPagesWhenNoEvaluatorAnswers: an agent cut off from every
// evaluator pages directly, once, after lost_after; and resolves when one
// answers again.
func TestAgentPagesWhenNoEvaluatorAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // no evaluator there yet
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	rep, err := agent.NewReporter(agent.ReporterOptions{Evaluators: []string{"http://" + addr}, Key: []byte("k"), Region: "eu-west", Agent: "a1",
		Reporting: checks.Reporting{Heartbeat: time.Second, BatchDelay: 200 * time.Millisecond, BatchSize: 10, SpoolSize: 1 << 20},
		SpoolDir:  t.TempDir(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	notes := &notifytest.Recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { rep.Run(ctx); done <- struct{}{} }()
	go func() {
		agent.WatchEvaluators(ctx, rep, notify.AgentPager{Notifier: notes, Region: "eu-west", Agent: "a1"}, clk, time.Minute, 5*time.Second)
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	lostNotes := func() []notify.Notification {
		var out []notify.Notification
		for _, n := range notes.Delivered() {
			if n.Key == notify.EvaluatorsLostKey("eu-west", "a1") {
				out = append(out, n)
			}
		}
		return out
	}
	advanceUntil(t, clk, time.Second, 5*time.Minute, "the direct page", func() bool { return len(lostNotes()) >= 1 })
	p := lostNotes()[0]
	if p.Action != notify.ActionTrigger || p.Route != checks.RouteMeta || !strings.HasPrefix(p.Summary, "evaluators unreachable from eu-west (agent a1) since 12:00:00") {
		t.Fatalf("page = %+v", p)
	}
	// The documented bound: lost_after, plus the 10s send timeout when a
	// retry was under way at the moment (retries come every heartbeat at
	// most, so one often is), plus one check interval (5s).
	if since := p.Time.Sub(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)); since < time.Minute || since > time.Minute+10*time.Second+5*time.Second {
		t.Errorf("paged %s after the start, want lost_after (1m) plus at most the send timeout and a check interval", since)
	}
	mark := clk.Now()
	advanceUntil(t, clk, time.Second, 5*time.Minute, "three more minutes", func() bool { return clk.Now().Sub(mark) >= 3*time.Minute })
	if n := len(lostNotes()); n != 1 {
		t.Fatalf("%d pages while cut off, want 1", n)
	}

	// An evaluator appears at the address.
	back, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	srv.Listener = back
	srv.Start()
	t.Cleanup(srv.Close)
	advanceUntil(t, clk, time.Second, 10*time.Minute, "the resolve", func() bool { return len(lostNotes()) >= 2 })
	if r := lostNotes()[1]; r.Action != notify.ActionResolve {
		t.Fatalf("second = %+v, want the resolve", r)
	}
}

// TestAgentPagesAreKeyedPerAgent: two agents reach no evaluator and page,
// each under its own key; when one gets through again its page resolves
// and the other's stays open.
func TestAgentPagesAreKeyedPerAgent(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	addrs := map[string]string{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, region := range []string{"eu-west", "ap-south"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[region] = ln.Addr().String()
		ln.Close() // no evaluator there yet
		rep, err := agent.NewReporter(agent.ReporterOptions{Evaluators: []string{"http://" + addrs[region]}, Key: []byte("k"), Region: region, Agent: "a1",
			Reporting: checks.Reporting{Heartbeat: time.Second, BatchDelay: 200 * time.Millisecond, BatchSize: 10, SpoolSize: 1 << 20},
			SpoolDir:  t.TempDir(), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); rep.Run(ctx) }()
		go func() {
			defer wg.Done()
			agent.WatchEvaluators(ctx, rep, notify.AgentPager{Notifier: notes, Region: region, Agent: "a1"}, clk, time.Minute, 5*time.Second)
		}()
	}
	pages := func(region, action string) int {
		n := 0
		for _, p := range notes.Delivered() {
			if p.Key == notify.EvaluatorsLostKey(region, "a1") && p.Action == action {
				n++
			}
		}
		return n
	}
	advanceUntil(t, clk, time.Second, 5*time.Minute, "both agents' pages", func() bool {
		return pages("eu-west", notify.ActionTrigger) == 1 && pages("ap-south", notify.ActionTrigger) == 1
	})

	// An evaluator appears for eu-west only.
	back, err := net.Listen("tcp", addrs["eu-west"])
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addrs["eu-west"], err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	srv.Listener = back
	srv.Start()
	t.Cleanup(srv.Close)
	advanceUntil(t, clk, time.Second, 5*time.Minute, "eu-west's resolve", func() bool { return pages("eu-west", notify.ActionResolve) == 1 })
	mark := clk.Now()
	advanceUntil(t, clk, time.Second, 5*time.Minute, "two more minutes", func() bool { return clk.Now().Sub(mark) >= 2*time.Minute })
	if n := pages("ap-south", notify.ActionResolve); n != 0 {
		t.Fatalf("ap-south's page resolved %d times while it is still cut off", n)
	}
}
