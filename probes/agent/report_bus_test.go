package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

const busShards = 8

// testBus is a NATS server with the results stream, as an evaluator makes
// it, and a connection of the test's own to read it.
type testBus struct {
	t *testing.T
	// fromStore verifies signatures at the message's stored time, as an
	// evaluator does; a test whose fake clock runs far from the real one
	// checks them at the time they were made instead.
	fromStore bool
	srv       *bustest.Server
	cfg       *checks.NATSBus
	js        jetstream.JetStream // the test's
}

func newTestBus(t *testing.T, o bustest.Options) *testBus {
	t.Helper()
	b := &testBus{t: t, fromStore: true, srv: bustest.Start(t, o), cfg: &checks.NATSBus{Stream: "OUTPOST", Shards: busShards, Replicas: 1,
		Retention: time.Hour, MaxBytes: 256 << 20, Duplicates: 10 * time.Minute, Token: checks.NewSecret(o.Token)}}
	b.cfg.URL = b.srv.URL
	if len(o.Users) > 0 { // the first is the test's, as an evaluator
		b.cfg.User, b.cfg.Password = o.Users[0].Username, checks.NewSecret(o.Users[0].Password)
	}
	b.js = b.connect("test-reader")
	if _, err := bus.EnsureStream(context.Background(), b.js, b.cfg); err != nil {
		t.Fatal(err)
	}
	return b
}

// connect makes a connection closed when the test ends.
func (b *testBus) connect(name string) jetstream.JetStream {
	b.t.Helper()
	nc, err := bus.Connect(b.cfg, name, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.t.Fatal(err)
	}
	return js
}

// restart stops the server and starts it again on its port and store.
func (b *testBus) restart(o bustest.Options) {
	b.srv.Stop()
	o.Port, o.StoreDir = b.srv.Port, b.srv.StoreDir
	b.srv = bustest.Start(b.t, o)
}

// stored returns how many messages the stream holds.
func (b *testBus) stored() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), bus.RequestTimeout)
	defer cancel()
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		return 0 // not reachable yet
	}
	return s.CachedInfo().State.Msgs
}

// busMsg is one stored message, verified.
type busMsg struct {
	subject string
	batch   wire.Batch
	stored  time.Time
}

// read waits until the stream holds n messages and returns them in stream
// order, failing the test on any message whose headers, Nats-Msg-Id or
// signature (checked at its stored time, as evaluators do) are wrong.
func (b *testBus) read(n int) []busMsg {
	b.t.Helper()
	clocktest.WaitFor(b.t, repWait, fmt.Sprintf("%d messages in the stream", n), func() bool { return b.stored() >= uint64(n) })
	ctx, cancel := context.WithTimeout(context.Background(), repWait)
	defer cancel()
	cons, err := b.js.OrderedConsumer(ctx, b.cfg.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []busMsg
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(repWait))
		if err != nil {
			b.t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, b.verify(m))
		}
		if err := batch.Error(); err != nil {
			b.t.Fatal(err)
		}
	}
	if got := b.stored(); got != uint64(n) {
		b.t.Fatalf("the stream holds %d messages, want %d", got, n)
	}
	return out
}

func (b *testBus) verify(m jetstream.Msg) busMsg {
	b.t.Helper()
	meta, err := m.Metadata()
	if err != nil {
		b.t.Fatal(err)
	}
	h := m.Headers()
	at := meta.Timestamp
	if !b.fromStore {
		unix, _ := strconv.ParseInt(h.Get(wire.HeaderTimestamp), 10, 64)
		at = time.Unix(unix, 0)
	}
	if err := wire.Verify([][]byte{repKey}, h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderSignature), m.Data(), at); err != nil {
		b.t.Fatalf("message on %s: signature: %v", m.Subject(), err)
	}
	var batch wire.Batch
	if err := json.Unmarshal(m.Data(), &batch); err != nil {
		b.t.Fatal(err)
	}
	if h.Get(wire.HeaderRegion) != "us-east" || h.Get(wire.HeaderAgent) != "agent-1" || batch.Region != "us-east" || batch.Agent != "agent-1" {
		b.t.Fatalf("message on %s: headers %v, batch of %s/%s", m.Subject(), h, batch.Region, batch.Agent)
	}
	if id, want := h.Get(jetstream.MsgIDHeader), bus.MsgID("us-east", "agent-1", batch.Seq); id != want {
		b.t.Fatalf("Nats-Msg-Id %q, want %q", id, want)
	}
	want := bus.LiveSubject("us-east")
	for i, r := range batch.Results {
		s := bus.ResultsSubject(checks.Shard(r.Check, busShards), "us-east")
		if i == 0 {
			want = s
		} else if s != want {
			b.t.Fatalf("batch %d mixes shards: %s and %s", batch.Seq, want, s)
		}
	}
	if m.Subject() != want {
		b.t.Fatalf("batch %d with %d results on %s, want %s", batch.Seq, len(batch.Results), m.Subject(), want)
	}
	return busMsg{subject: m.Subject(), batch: batch, stored: meta.Timestamp}
}

// newBusHarness is a reporter on the fake clock publishing to b.
func newBusHarness(t *testing.T, clock *fakeClock, spoolDir string, rep checks.Reporting, b *testBus) *repHarness {
	t.Helper()
	js := b.connect("outpost-agent-us-east-agent-1")
	return newRepHarnessWith(t, clock, spoolDir, rep, func(o *ReporterOptions) {
		// A publish during an outage fails in a moment of real time.
		o.Bus = &BusOptions{JetStream: js, Stream: b.cfg.Stream, Shards: busShards, Timeout: 200 * time.Millisecond}
	})
}

// drained reports whether h's reporter sealed n results and published
// every batch it sealed.
func drained(h *repHarness, n int) bool {
	// Under seqMu a sealed batch is spooled in all its parts.
	h.r.seqMu.Lock()
	defer h.r.seqMu.Unlock()
	return value(h.r.metrics.results) == float64(n) && h.eval(0).spool.Len() == 0
}

// results returns every result of msgs, checking that batch sequence
// numbers strictly increase in stream order.
func results(t *testing.T, msgs []busMsg) []wire.Result {
	t.Helper()
	var out []wire.Result
	var last uint64
	for _, m := range msgs {
		if m.batch.Seq <= last {
			t.Fatalf("batch seq %d stored after %d", m.batch.Seq, last)
		}
		last = m.batch.Seq
		out = append(out, m.batch.Results...)
	}
	return out
}

// exactlyOnce checks that rs are check-from ... check-(to-1), each once.
func exactlyOnce(t *testing.T, rs []wire.Result, from, to int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rs {
		seen[r.Check]++
	}
	for i := from; i < to; i++ {
		if c := fmt.Sprintf("check-%03d", i); seen[c] != 1 {
			t.Fatalf("%s arrived %d times", c, seen[c])
		}
	}
	if len(rs) != to-from {
		t.Fatalf("%d results, want %d", len(rs), to-from)
	}
}

// TestBusPublishesByShardWithLiveness: a sealed batch lands as one signed
// message per shard on its shard's subject, in shard order, and liveness
// goes to the liveness subject every heartbeat, results or not.
func TestBusPublishesByShardWithLiveness(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, bustest.Options{})
	// Near the real clock: JetStream stamps the messages with it.
	start := time.Now().Truncate(time.Second)
	clock := newFakeClock(start)
	rep := repReporting(20)
	rep.Heartbeat = 10 * time.Second
	h := newBusHarness(t, clock, t.TempDir(), rep, b)
	h.start()
	clock.waitCreated(t, 1)

	h.submit(0, 20) // one full batch, sealed at once
	h.queued()
	shards := map[int]bool{}
	for i := range 20 {
		shards[checks.Shard(fmt.Sprintf("check-%03d", i), busShards)] = true
	}
	msgs := b.read(len(shards))
	exactlyOnce(t, results(t, msgs), 0, 20)
	for i, m := range msgs {
		if i > 0 && m.subject <= msgs[i-1].subject {
			// ResultsSubject of shards below 10 sorts as the shard does.
			t.Fatalf("shards published out of order: %s after %s", m.subject, msgs[i-1].subject)
		}
	}

	// Liveness every heartbeat, whatever else is sealed in between.
	clocktest.WaitIdle(t, repWait)
	clock.Advance(10 * time.Second) // t=10s
	live := b.read(len(shards) + 1)[len(shards)]
	if live.subject != bus.LiveSubject("us-east") || len(live.batch.Results) != 0 || !live.batch.Created.Equal(start.Add(10*time.Second)) {
		t.Fatalf("liveness: %s with %d results, created %v", live.subject, len(live.batch.Results), live.batch.Created)
	}
	clocktest.WaitIdle(t, repWait)
	clock.Advance(5 * time.Second) // t=15s
	h.submit(20, 21)
	h.queued()
	clocktest.WaitIdle(t, repWait)
	clock.Advance(time.Second) // t=16s: the result's delay
	b.read(len(shards) + 2)
	clocktest.WaitIdle(t, repWait)
	clock.Advance(4 * time.Second) // t=20s: a heartbeat after the last liveness, not after the result
	all := b.read(len(shards) + 3)
	if l := all[len(all)-1]; l.subject != bus.LiveSubject("us-east") || !l.batch.Created.Equal(start.Add(20*time.Second)) {
		t.Fatalf("second liveness: %s created %v, want %s at +20s", l.subject, l.batch.Created, bus.LiveSubject("us-east"))
	}
	exactlyOnce(t, results(t, all), 0, 21)
	// The agent takes the PubAck after the stream stored the message.
	clocktest.WaitFor(t, repWait, "every PubAck taken", func() bool { return drained(h, 21) })
	if got := value(h.eval(0).sent); got != 4 {
		t.Errorf("%v sealed batches sent, want 4 (two of results, two of liveness)", got)
	}
	if !h.r.LastReached().Equal(clock.Now()) {
		t.Errorf("LastReached %v, want the last PubAck at %v", h.r.LastReached(), clock.Now())
	}
}

// TestBusOutageDeliversOnceInOrder: with NATS stopped the agent goes on
// sealing; once the server is back on its port and store, every result
// is stored exactly once, in sequence order, and LastReached moves only
// with the acknowledgements.
func TestBusOutageDeliversOnceInOrder(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, bustest.Options{})
	b.fromStore = false
	clock := newFakeClock(repEpoch)
	h := newBusHarness(t, clock, t.TempDir(), repReporting(10), b)
	h.start()
	h.submit(0, 10)
	clocktest.WaitFor(t, repWait, "the first batches published", func() bool { return drained(h, 10) })
	before := len(b.read(int(b.stored())))

	b.srv.Stop()
	reached := h.r.LastReached()
	// The agent goes on producing while NATS is away: batches spool and
	// are retried with backoff on the fake clock.
	for round := range 5 {
		h.submit(10+10*round, 20+10*round)
		h.queued()
	}
	h.pump(func() bool { return value(h.eval(0).failures) >= 2 })
	if h.eval(0).spool.Len() == 0 {
		t.Fatal("nothing spooled during the outage")
	}
	if !h.r.LastReached().Equal(reached) {
		t.Fatalf("LastReached moved to %v without a PubAck", h.r.LastReached())
	}

	b.restart(bustest.Options{})
	h.pump(func() bool { return drained(h, 60) })
	n := int(b.stored())
	if n <= before {
		t.Fatalf("%d messages stored after the outage, %d before", n, before)
	}
	exactlyOnce(t, results(t, b.read(n)), 0, 60)
	if h.r.LastReached().Equal(reached) {
		t.Error("LastReached did not move with the PubAcks after the outage")
	}
}

// TestBusRestartPublishesSpooledOnce: batches spooled and unpublished when
// the agent stopped are published by the next run, once, even the part
// the first run had published without seeing its acknowledgement.
func TestBusRestartPublishesSpooledOnce(t *testing.T) {
	t.Parallel()
	b := newTestBus(t, bustest.Options{})
	b.fromStore = false
	clock := newFakeClock(repEpoch)
	dir := t.TempDir()
	h := newBusHarness(t, clock, dir, repReporting(10), b)
	h.start()
	h.submit(0, 10)
	clocktest.WaitFor(t, repWait, "the first batches published", func() bool { return drained(h, 10) })
	published := int(b.stored())

	b.srv.Stop()
	h.submit(10, 30)
	h.queued()
	h.pump(func() bool { return value(h.eval(0).failures) >= 1 })
	spooled := h.eval(0).spool.Len()
	h.stop()
	if spooled == 0 {
		t.Fatal("nothing spooled")
	}

	// Another process: its own connection, the same spool.
	b.restart(bustest.Options{})
	h2 := newBusHarness(t, clock, dir, repReporting(10), b)
	if got := h2.eval(0).spool.Len(); got != spooled {
		t.Fatalf("restarted reporter found %d spooled batches, want %d", got, spooled)
	}
	// The first process had published the oldest batch's first part when
	// it stopped, without its acknowledgement: that part is sent again,
	// and dropped by the stream's duplicate window.
	seq, data, _ := h2.eval(0).spool.Oldest()
	var parts []busPart
	if err := json.Unmarshal(data, &parts); err != nil || len(parts) < 2 || parts[len(parts)-1].Seq != seq {
		t.Fatalf("spooled batch %d: %d parts, %v", seq, len(parts), err)
	}
	if err := h2.r.publish(context.Background(), b.js, repWait, parts[0], nil); err != nil {
		t.Fatal(err)
	}
	h2.start()
	h2.submit(30, 35)
	h2.pump(func() bool { return drained(h2, 5) })
	all := b.read(int(b.stored()))
	if len(all) < published+spooled+1 {
		t.Fatalf("%d messages, want at least %d", len(all), published+spooled+1)
	}
	exactlyOnce(t, results(t, all), 0, 35)
}

// TestBusOptionsChecked: a bus excludes evaluator URLs and needs a
// connection and a shard count.
func TestBusOptionsChecked(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]ReporterOptions{
		"evaluators too": {Evaluators: []string{"http://127.0.0.1:1"}, Bus: &BusOptions{Shards: 1}},
		"no jetstream":   {Bus: &BusOptions{Shards: 1}},
		"no shards":      {Bus: &BusOptions{}},
	} {
		t.Run(name, func(t *testing.T) {
			o.Key, o.Region, o.Agent, o.SpoolDir = repKey, "us-east", "a", t.TempDir()
			if _, err := NewReporter(o); err == nil {
				t.Fatal("NewReporter accepted it")
			}
		})
	}
}

// TestSplitByShard: parts in ascending shard order, one shard each,
// results in their order, none lost.
func TestSplitByShard(t *testing.T) {
	t.Parallel()
	var rs []wire.Result
	for i := range 50 {
		rs = append(rs, wire.Result{Check: "c" + strconv.Itoa(i%7), Seq: uint64(i)})
	}
	parts := splitByShard(rs, 4)
	total, lastShard := 0, -1
	for _, p := range parts {
		s := checks.Shard(p[0].Check, 4)
		if s <= lastShard {
			t.Fatalf("shard %d after %d", s, lastShard)
		}
		lastShard = s
		for i, r := range p {
			if checks.Shard(r.Check, 4) != s || (i > 0 && r.Seq <= p[i-1].Seq) {
				t.Fatalf("part of shard %d holds %s (seq %d) at %d", s, r.Check, r.Seq, i)
			}
		}
		total += len(p)
	}
	if total != len(rs) {
		t.Fatalf("%d results in the parts, want %d", total, len(rs))
	}
}
