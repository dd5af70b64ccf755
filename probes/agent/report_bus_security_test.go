package agent

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// lockedBuffer is a log sink goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBusTokenNeverInLogsOrMetrics: neither a refused token at start nor a
// server that comes back with another token puts a token in the logs or
// the metrics.
func TestBusTokenNeverInLogsOrMetrics(t *testing.T) {
	t.Parallel()
	const token, other = "agent-token-5f1d9c2e", "changed-token-77a3b0e4"
	b := newTestBus(t, bustest.Options{Token: token})
	b.fromStore = false
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// A wrong token at start: the error says why without the token.
	wrong := *b.cfg
	wrong.Token = checks.NewSecret(other)
	if _, err := bus.Connect(&wrong, "outpost-agent-us-east-agent-1", log); err == nil {
		t.Fatal("connected with the wrong token")
	} else if strings.Contains(err.Error(), other) {
		t.Fatalf("connect error shows the token: %v", err)
	} else {
		log.Error("outpost agent stopped", "err", err) // as cmd/outpost logs it
	}

	// Connected, then the server comes back with another token: the agent
	// keeps failing to reconnect and to publish, and logs it.
	nc, err := bus.Connect(b.cfg, "outpost-agent-us-east-agent-1", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(repEpoch)
	h := newRepHarnessWith(t, clock, t.TempDir(), repReporting(5), func(o *ReporterOptions) {
		o.Bus = &BusOptions{JetStream: js, Stream: b.cfg.Stream, Shards: busShards, Timeout: 200 * time.Millisecond}
		o.Logger = log
	})
	h.start()
	h.submit(0, 5)
	clocktest.WaitFor(t, repWait, "the first batches published", func() bool { return drained(h, 5) })
	b.restart(bustest.Options{Token: other})
	h.submit(5, 10)
	h.pump(func() bool {
		// The first was the refused connect above; then the reconnects'.
		return value(h.eval(0).failures) >= 2 && strings.Count(strings.ToLower(logs.String()), "authorization") >= 2
	})
	h.stop()

	var metrics bytes.Buffer
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&metrics, mf)
	}
	for what, text := range map[string]string{"logs": logs.String(), "metrics": metrics.String()} {
		for _, secret := range []string{token, other} {
			if strings.Contains(text, secret) {
				t.Errorf("%s show the token %q:\n%s", what, secret, text)
			}
		}
	}
	if !strings.Contains(metrics.String(), `outpost_reporter_send_failures_total{evaluator="nats"}`) {
		t.Errorf("no failure counted under evaluator=\"nats\":\n%s", metrics.String())
	}
}

// TestBusAgentPermissions: the NATS permissions docs/deploy.md gives an
// agent are enough to publish and take confirmations, and keep it out of
// another region's subjects.
func TestBusAgentPermissions(t *testing.T) {
	t.Parallel()
	agentPerms := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"outpost.results.*.us-east", "outpost.live.us-east"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"outpost.confirm.us-east", "_INBOX.>"}},
	}
	b := newTestBus(t, bustest.Options{Users: []*server.User{
		{Username: "evaluator", Password: "evaluator-password"},
		{Username: "agent-us-east", Password: "agent-password", Permissions: agentPerms},
	}})
	b.fromStore = false
	as := *b.cfg
	as.User, as.Password = "agent-us-east", checks.NewSecret("agent-password")
	nc, err := bus.Connect(&as, "outpost-agent-us-east-agent-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(repEpoch)
	h := newRepHarnessWith(t, clock, t.TempDir(), repReporting(10), func(o *ReporterOptions) {
		o.Bus = &BusOptions{JetStream: js, Stream: b.cfg.Stream, Shards: busShards, Timeout: 200 * time.Millisecond}
	})
	h.start()
	h.submit(0, 10)
	clocktest.WaitFor(t, repWait, "the batches published", func() bool { return drained(h, 10) })
	exactlyOnce(t, results(t, b.read(int(b.stored()))), 0, 10)

	// Confirmations reach it.
	got := make(chan wire.ConfirmRequest, 1)
	c := &BusConfirmer{Conn: nc, Region: "us-east", RunNow: func(r wire.ConfirmRequest) {
		select {
		case got <- r:
		default:
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	evalConn := b.js.Conn()
	clocktest.WaitFor(t, repWait, "a confirmation request reaches the agent", func() bool {
		evalConn.Publish(bus.ConfirmSubject("us-east"), []byte(`{"checks":["check-000"]}`))
		evalConn.Flush()
		return len(got) > 0
	})

	// Another region's subjects are refused.
	before := b.stored()
	p := busPart{Seq: 1, Subject: bus.ResultsSubject(0, "eu-west"), Batch: []byte(`{"v":1,"results":[]}`)}
	if err := h.r.publish(context.Background(), js, 500*time.Millisecond, p, nil); err == nil {
		t.Fatal("published on eu-west's subject")
	}
	if b.stored() != before {
		t.Fatal("the stream took a message on another region's subject")
	}
}
