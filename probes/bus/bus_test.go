package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
)

func TestSubjects(t *testing.T) {
	for _, tc := range []struct {
		subject string
		shard   int
		region  string
		ok      bool
	}{
		{bus.ResultsSubject(17, "eu-west"), 17, "eu-west", true},
		{bus.LiveSubject("us-east"), -1, "us-east", true},
		{"outpost.results.x.eu", 0, "", false},
		{"outpost.results.17", 0, "", false},
		{"outpost.results.17.eu.x", 0, "", false},
		{"outpost.results.4096.eu", 0, "", false},
		{"outpost.live.a.b", -1, "a.b", false},
		{"outpost.confirm.eu", 0, "", false},
	} {
		shard, region, ok := bus.ParseSubject(tc.subject)
		if ok != tc.ok || (ok && (shard != tc.shard || region != tc.region)) {
			t.Errorf("ParseSubject(%q) = %d, %q, %v; want %d, %q, %v", tc.subject, shard, region, ok, tc.shard, tc.region, tc.ok)
		}
	}
	if got := bus.MsgID("eu", "a1", 42); got != "eu.a1.42" {
		t.Errorf("MsgID = %q", got)
	}
}

func busConfig(url string) *checks.NATSBus {
	return &checks.NATSBus{URL: url, Stream: checks.DefaultBusStream, Shards: 8, Replicas: 1,
		Retention: time.Hour, MaxBytes: 64 << 20, Duplicates: time.Minute}
}

func TestEnsureStreamAndDuplicateWindow(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{Token: "tok-0123456789"})
	n := busConfig(srv.URL)
	n.Token = checks.NewSecret("tok-0123456789")
	nc, err := bus.Connect(n, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := bus.EnsureStream(ctx, js, n)
	if err != nil {
		t.Fatal(err)
	}
	// Twice: an evaluator restarting finds its stream.
	if _, err := bus.EnsureStream(ctx, js, n); err != nil {
		t.Fatalf("second EnsureStream: %v", err)
	}
	msg := nats.NewMsg(bus.ResultsSubject(3, "eu"))
	msg.Data = []byte("{}")
	msg.Header.Set(jetstream.MsgIDHeader, bus.MsgID("eu", "a1", 1))
	for range 2 {
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages after a re-send within the duplicate window, want 1", info.State.Msgs)
	}
}

func TestConnectErrorsCarryNoSecret(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{Token: "right-token-123"})
	n := busConfig(srv.URL)
	n.Token = checks.NewSecret("wrong-token-456")
	_, err := bus.Connect(n, "test", nil)
	if err == nil {
		t.Fatal("a wrong token connected")
	}
	if strings.Contains(err.Error(), "wrong-token-456") || strings.Contains(err.Error(), "right-token-123") {
		t.Errorf("error carries a token: %v", err)
	}
	var logs bytes.Buffer
	n.URL = "nats://user:pw-secret@127.0.0.1:1"
	nc, err := bus.Connect(n, "test", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("an unreachable bus: %v, want a connection that keeps trying", err)
	}
	nc.Close()
	if strings.Contains(logs.String(), "pw-secret") || !strings.Contains(logs.String(), "unreachable") {
		t.Errorf("logs of an unreachable bus with credentials in its URL:\n%s", logs.String())
	}
}

// TestConnectWaitsForTheBus: a process started while NATS is down runs,
// and its connection comes up when NATS does: no exit, so no crash loop
// through a NATS outage.
func TestConnectWaitsForTheBus(t *testing.T) {
	first := bustest.Start(t, bustest.Options{})
	port, dir := first.Port, first.StoreDir
	first.Stop()
	n := busConfig(first.URL)
	nc, err := bus.Connect(n, "test", nil)
	if err != nil {
		t.Fatalf("Connect with the bus down: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected to a server that is down")
	}
	bustest.Start(t, bustest.Options{Port: port, StoreDir: dir})
	deadline := time.Now().Add(30 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("not connected within 30s of the server starting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
