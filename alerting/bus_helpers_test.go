package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// busKeys are the agents' keys in the bus tests, by region.
var busKeys = map[string][]byte{
	"us-east":  []byte("bus-test-key-us-east-0123456789"),
	"eu-west":  []byte("bus-test-key-eu-west-0123456789"),
	"ap-south": []byte("bus-test-key-ap-south-012345678"),
}

// busConfig is a three-region configuration on the bus at url with the
// given evaluators block (YAML lines under "evaluators:", or "" for none),
// paging through PagerDuty at pdURL, with one HTTP check per id.
func busConfig(t testing.TB, url, pdURL, evaluators string, ids ...string) *checks.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 1h}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: %q}, routes: [critical, meta]}
bus:
  nats: {url: %q, shards: 64, max_bytes: 256MiB}
`, pdURL, url)
	if evaluators != "" {
		b.WriteString("  evaluators:\n" + evaluators)
	}
	b.WriteString("checks:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - {id: %s, interval: 5s, timeout: 1s, notify: [oncall], failure: {consecutive: 2}, http: {url: \"http://127.0.0.1:1/\"}}\n", id)
	}
	env := map[string]string{"K_US": string(busKeys["us-east"]), "K_EU": string(busKeys["eu-west"]), "K_AP": string(busKeys["ap-south"]), "PD_KEY": e2eRoutingKey}
	cfg, err := checks.LoadBytes("bus.yaml", []byte(b.String()), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkInShards returns a check id whose shard (of 64) is within [lo, hi].
func checkInShards(t testing.TB, prefix string, lo, hi int) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if s := checks.Shard(id, 64); s >= lo && s <= hi {
			return id
		}
	}
	t.Fatalf("no check id of prefix %s in shards %d-%d", prefix, lo, hi)
	return ""
}

// dialBus connects to the test server; closed when the test ends.
func dialBus(t testing.TB, url, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return dialBusAs(t, &checks.NATSBus{URL: url}, name)
}

// dialBusAs connects with n's credentials.
func dialBusAs(t testing.TB, n *checks.NATSBus, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := bus.Connect(n, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// busAgent publishes signed batches as an agent does (see the bus
// contract): each message takes the next sequence number, is signed at
// publish time and carries Nats-Msg-Id.
type busAgent struct {
	t      testing.TB
	js     jetstream.JetStream
	clk    *clocktest.Fake
	region string
	name   string
	key    []byte
	digest string
	seq    uint64
	// sent are the messages published, by subject.
	sent map[string]int
}

func newBusAgent(t testing.TB, js jetstream.JetStream, clk *clocktest.Fake, cfg *checks.Config, region string) *busAgent {
	// Sequence numbers start from the agent's clock, as the agent's do.
	return &busAgent{t: t, js: js, clk: clk, region: region, name: "agent-" + region, key: busKeys[region],
		digest: cfg.Digest, seq: uint64(clk.Now().UnixNano()), sent: map[string]int{}}
}

// signed returns the next message on subject, its batch holding results.
func (a *busAgent) signed(subject string, key []byte, results ...wire.Result) *nats.Msg {
	a.seq++
	for i := range results {
		results[i].Region, results[i].Agent = a.region, a.name
	}
	b := wire.Batch{V: 1, Agent: a.name, Region: a.region, Seq: a.seq, ConfigDigest: a.digest, Created: a.clk.Now(), Results: results}
	body, err := json.Marshal(b)
	if err != nil {
		a.t.Fatal(err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	// Signed on the real clock: the evaluator checks the timestamp
	// against the time the server stored the message.
	ts, sig := wire.Sign(key, time.Now(), body)
	msg.Header.Set(wire.HeaderRegion, a.region)
	msg.Header.Set(wire.HeaderAgent, a.name)
	msg.Header.Set(wire.HeaderTimestamp, ts)
	msg.Header.Set(wire.HeaderSignature, sig)
	msg.Header.Set(jetstream.MsgIDHeader, bus.MsgID(a.region, a.name, a.seq))
	return msg
}

func (a *busAgent) publishMsg(msg *nats.Msg) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.js.PublishMsg(ctx, msg); err != nil {
		a.t.Fatalf("publish %s: %v", msg.Subject, err)
	}
	a.sent[msg.Subject]++
}

// result publishes one result of check on its shard's subject.
func (a *busAgent) result(check string, ok bool) {
	r := wire.Result{V: 1, Check: check, Type: "http", Time: a.clk.Now(), OK: ok, Duration: 0.05}
	if !ok {
		r.Reason = "status 503, want 200"
	}
	a.publishMsg(a.signed(bus.ResultsSubject(checks.Shard(check, 64), a.region), a.key, r))
}

// live publishes a liveness message: a signed batch with no results.
func (a *busAgent) live() { a.publishMsg(a.signed(bus.LiveSubject(a.region), a.key)) }

// busEvaluator is an evaluator on the bus, paging through its own outbox,
// that a test can stop and start again on its data dir.
type busEvaluator struct {
	t       *testing.T
	name    string
	url     string
	cfg     *checks.Config
	clk     *clocktest.Fake
	dir     string
	pipe    notify.Notifier
	ev      *Evaluator
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// startBusEvaluator starts evaluator name with its own connection, data
// dir and outbox to cfg's notifiers.
func startBusEvaluator(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, url, name string) *busEvaluator {
	t.Helper()
	pipe := startPipeline(t, cfg, clk)
	be := &busEvaluator{t: t, name: name, url: url, cfg: cfg, clk: clk, dir: t.TempDir(), pipe: pipe}
	be.start()
	t.Cleanup(be.stop)
	return be
}

// start runs the evaluator (again) on its data dir and consumer.
func (be *busEvaluator) start() {
	be.t.Helper()
	_, js := dialBusAs(be.t, be.cfg.Bus.NATS, "outpost-evaluator-"+be.name)
	be.reg = prometheus.NewRegistry()
	ev, err := New(be.cfg, Options{Clock: be.clk, Notifier: be.pipe, DataDir: be.dir, Name: be.name, Bus: js, Registerer: be.reg})
	if err != nil {
		be.t.Fatal(err)
	}
	be.ev = ev
	ctx, cancel := context.WithCancel(context.Background())
	be.cancel, be.done, be.stopped = cancel, make(chan struct{}), false
	go func() { defer close(be.done); ev.Run(ctx) }()
	// One evaluator at a time: nats-server 2.15.3 races (as the race
	// detector sees it) between a stream's update and a consumer's
	// creation by another client.
	clocktest.WaitFor(be.t, 30*time.Second, be.name+"'s consumer", func() bool {
		_, err := js.Consumer(context.Background(), be.cfg.Bus.NATS.Stream, bus.ConsumerName(be.name))
		return err == nil
	})
}

// stop stops the evaluator and closes it, as the binary does.
func (be *busEvaluator) stop() {
	if be.stopped {
		return
	}
	be.stopped = true
	be.cancel()
	<-be.done
	be.ev.Close()
}

// messages is the count of consumed messages with outcome.
func (be *busEvaluator) messages(outcome string) int {
	return int(testutil.ToFloat64(be.ev.bus.messages[outcome]))
}

// handled is the count of every message consumed, whatever its outcome.
func (be *busEvaluator) handled() int {
	n := 0
	for _, o := range busOutcomes {
		n += be.messages(o)
	}
	return n
}

// waitHandled waits until the evaluator has consumed n messages in all.
func (be *busEvaluator) waitHandled(t testing.TB, n int) {
	t.Helper()
	clocktest.WaitFor(t, 30*time.Second, fmt.Sprintf("%s consuming %d messages", be.name, n), func() bool { return be.handled() >= n })
	if got := be.handled(); got != n {
		t.Fatalf("%s consumed %d messages, want %d", be.name, got, n)
	}
}

// holds reports whether the evaluator keeps check's windows at all.
func (be *busEvaluator) holds(check string) bool {
	_, ok := be.ev.Window(check, "us-east")
	return ok
}

// consumerFilters returns the filter subjects of the evaluator's durable
// consumer as the server has them.
func consumerFilters(t testing.TB, js jetstream.JetStream, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, checks.DefaultBusStream, bus.ConsumerName(name))
	if err != nil {
		return nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil
	}
	return info.Config.FilterSubjects
}
