package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

var busRegions = []string{"us-east", "eu-west", "ap-south"}

// busClock starts ten minutes after the real time, as if every message
// were consumed from a backlog: the evaluator checks results' times on its
// clock, and signatures (made on the real clock) against the time the
// server stored the message, not its own.
func busClock() *clocktest.Fake {
	return clocktest.New(time.Now().UTC().Truncate(time.Second).Add(2 * wire.MaxClockSkew))
}

// waitLive advances the clock a tick at a time until every evaluator has
// every region LIVE.
func waitLive(t *testing.T, clk *clocktest.Fake, evs ...*busEvaluator) {
	t.Helper()
	clocktest.WaitFor(t, 30*time.Second, "every region LIVE on every evaluator", func() bool {
		for _, be := range evs {
			for _, r := range busRegions {
				if stateOf(be.ev, r) != decide.RegionLive {
					clk.Advance(tickInterval)
					return false
				}
			}
		}
		return true
	})
}

// triggersBySource returns the trigger events for check by the evaluator
// that sent them.
func triggersBySource(pd *notifytest.FakePagerDuty, check, action string) []string {
	var out []string
	for _, e := range pd.Events() {
		if e.EventAction == action && e.Payload != nil && e.Payload.Component == check {
			out = append(out, e.Payload.Source)
		} else if e.EventAction == action && e.Payload == nil && action == "resolve" {
			out = append(out, "?") // a resolve has no payload to say whose
		}
	}
	slices.Sort(out)
	return out
}

// TestBusShardGroupsPageOncePerCheck: three regions publish to a real
// NATS server; two shard groups, each an HA pair of evaluators (64
// shards). A check of each group failing in a quorum of regions makes one
// PagerDuty incident per check, triggered by that group's two owners and
// no one else; the other group never holds the check.
func TestBusShardGroupsPageOncePerCheck(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	idA, idB := checkInShards(t, "web-a", 0, 31), checkInShards(t, "web-b", 32, 63)
	cfg := busConfig(t, srv.URL, pd.URL(), `    - {name: a1, shards: "0-31"}
    - {name: a2, shards: "0-31"}
    - {name: b1, shards: "32-63"}
    - {name: b2, shards: "32-63"}
`, idA, idB)
	clk := busClock()
	group := map[string][]*busEvaluator{}
	var all []*busEvaluator
	for _, name := range []string{"a1", "a2", "b1", "b2"} {
		be := startBusEvaluator(t, cfg, clk, srv.URL, name)
		group[name[:1]] = append(group[name[:1]], be)
		all = append(all, be)
	}
	nc, js := dialBus(t, srv.URL, "test-agents")
	for _, be := range all {
		clocktest.WaitFor(t, 30*time.Second, be.name+"'s consumer", func() bool { return len(consumerFilters(t, js, be.name)) == 33 })
	}
	confirms, err := nc.SubscribeSync(bus.ConfirmPrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	agents := map[string]*busAgent{}
	for _, r := range busRegions {
		agents[r] = newBusAgent(t, js, clk, cfg, r)
	}
	// Each evaluator consumes its group's results and every liveness
	// message: two messages per region and round.
	want := 0
	round := func(failing map[string][]string) {
		t.Helper()
		for _, r := range busRegions {
			a := agents[r]
			a.result(idA, !slices.Contains(failing[idA], r))
			a.result(idB, !slices.Contains(failing[idB], r))
			a.live()
		}
		want += 2 * len(busRegions)
		for _, be := range all {
			be.waitHandled(t, want)
		}
		clk.Advance(time.Second)
	}
	round(nil)
	waitLive(t, clk, all...)
	round(nil)
	if n := pd.RequestCount(); n != 0 {
		t.Fatalf("%d PagerDuty requests while everything passed", n)
	}
	down := map[string][]string{idA: {"us-east", "eu-west"}, idB: {"eu-west", "ap-south"}}
	round(down)
	round(down)
	clocktest.WaitFor(t, 30*time.Second, "a trigger from each owner of each check", func() bool { return len(pd.Events()) >= 4 })
	round(down)
	round(down)

	if got := triggersBySource(pd, idA, "trigger"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("%s triggered by %v, want a1 and a2", idA, got)
	}
	if got := triggersBySource(pd, idB, "trigger"); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Errorf("%s triggered by %v, want b1 and b2", idB, got)
	}
	keys := map[string]string{}
	for _, e := range pd.Events() {
		if e.Payload == nil {
			t.Fatalf("unexpected event %+v", e)
		}
		if k, ok := keys[e.Payload.Component]; ok && k != e.DedupKey {
			t.Errorf("%s paged under two dedup keys: %s and %s", e.Payload.Component, k, e.DedupKey)
		}
		keys[e.Payload.Component] = e.DedupKey
	}
	if len(pd.Events()) != 4 || len(keys) != 2 || keys[idA] == keys[idB] {
		t.Errorf("events %+v, want one incident per check, two triggers each", pd.Events())
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Fatalf("invalid events sent: %v", bad)
	}
	for _, be := range group["a"] {
		if !be.holds(idA) || be.holds(idB) {
			t.Errorf("%s holds %s: %v, %s: %v; want only %s", be.name, idA, be.holds(idA), idB, be.holds(idB), idA)
		}
	}
	for _, be := range group["b"] {
		if !be.holds(idB) || be.holds(idA) {
			t.Errorf("%s holds %s: %v, %s: %v; want only %s", be.name, idA, be.holds(idA), idB, be.holds(idB), idB)
		}
	}
	for _, be := range all {
		if n := be.messages(busApplied); n != want {
			t.Errorf("%s applied %d messages, want %d", be.name, n, want)
		}
	}
	// The region that did not fail idA is asked to confirm it, over core
	// NATS.
	asked := false
	for !asked {
		msg, err := confirms.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no confirmation request of %s for ap-south: %v", idA, err)
		}
		var req wire.ConfirmRequest
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			t.Fatalf("confirmation request %q: %v", msg.Data, err)
		}
		asked = msg.Subject == bus.ConfirmSubject("ap-south") && slices.Contains(req.Checks, idA)
	}
}

// TestBusEvaluatorRestartResumes: one evaluator of a pair stops while the
// agents go on publishing and the check fails, then starts again on its
// data dir, twice. Its durable consumer resumes where it was: every
// message is applied exactly once across its lives, and the incident,
// triggered once by each of the pair, is not triggered again by the
// restarted one, and is resolved once by each.
func TestBusEvaluatorRestartResumes(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	id := checkInShards(t, "web", 0, 63)
	cfg := busConfig(t, srv.URL, pd.URL(), `    - {name: a1, shards: "0-63"}
    - {name: a2, shards: "0-63"}
`, id)
	clk := busClock()
	a1 := startBusEvaluator(t, cfg, clk, srv.URL, "a1")
	a2 := startBusEvaluator(t, cfg, clk, srv.URL, "a2")
	_, js := dialBus(t, srv.URL, "test-agents")
	for _, be := range []*busEvaluator{a1, a2} {
		clocktest.WaitFor(t, 30*time.Second, be.name+"'s consumer", func() bool { return len(consumerFilters(t, js, be.name)) == 2 })
	}
	agents := map[string]*busAgent{}
	for _, r := range busRegions {
		agents[r] = newBusAgent(t, js, clk, cfg, r)
	}
	published, applied1 := 0, 0
	// waitAll waits until both evaluators (a1 if it runs) consumed every
	// message published since a1 last started.
	since := 0
	round := func(failing ...string) {
		t.Helper()
		for _, r := range busRegions {
			agents[r].result(id, !slices.Contains(failing, r))
			agents[r].live()
		}
		published += 2 * len(busRegions)
		a2.waitHandled(t, published)
		if !a1.stopped {
			a1.waitHandled(t, published-since)
		}
		clk.Advance(time.Second)
	}
	restart := func() {
		t.Helper()
		applied1 += a1.messages(busApplied)
		a1.stop()
		round("us-east", "eu-west")
		round("us-east", "eu-west")
		since = published - 2*2*len(busRegions)
		a1.start()
		a1.waitHandled(t, published-since)
	}
	down := []string{"us-east", "eu-west"}
	round()
	waitLive(t, clk, a1, a2)
	round()
	round(down...)
	round(down...)
	clocktest.WaitFor(t, 30*time.Second, "a trigger from each of the pair", func() bool { return len(triggersBySource(pd, id, "trigger")) >= 2 })
	// a1 stops and starts again twice while the outage goes on and the
	// agents publish.
	restart()
	waitLive(t, clk, a1, a2)
	round(down...)
	restart()
	waitLive(t, clk, a1, a2)
	round(down...)
	round(down...)
	if got := triggersBySource(pd, id, "trigger"); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("triggers from %v, want one from a1 and one from a2", got)
	}
	applied := applied1 + a1.messages(busApplied)
	if applied != published || a2.messages(busApplied) != published {
		t.Errorf("a1 applied %d messages over three lives, a2 %d; %d were published", applied, a2.messages(busApplied), published)
	}
	round()
	round()
	round()
	clocktest.WaitFor(t, 30*time.Second, "a resolve from each of the pair", func() bool { return len(triggersBySource(pd, id, "resolve")) >= 2 })
	evs := pd.Events()
	for _, e := range evs {
		if e.DedupKey != evs[0].DedupKey {
			t.Errorf("events under two dedup keys: %+v", evs)
		}
	}
	if len(evs) != 4 {
		t.Errorf("%d events, want two triggers and two resolves: %+v", len(evs), evs)
	}
}

// soloEvaluator is one evaluator owning every shard, with agents.
func soloEvaluator(t *testing.T) (*busEvaluator, jetstream.JetStream, map[string]*busAgent, string) {
	t.Helper()
	srv := bustest.Start(t, bustest.Options{})
	id := checkInShards(t, "web", 0, 63)
	cfg := busConfig(t, srv.URL, "http://127.0.0.1:1", "", id)
	clk := busClock()
	be := startBusEvaluator(t, cfg, clk, srv.URL, "solo")
	_, js := dialBus(t, srv.URL, "test-agents")
	clocktest.WaitFor(t, 30*time.Second, "the consumer", func() bool { return len(consumerFilters(t, js, "solo")) == 2 })
	agents := map[string]*busAgent{}
	for _, r := range busRegions {
		agents[r] = newBusAgent(t, js, clk, cfg, r)
	}
	return be, js, agents, id
}

// consumerState returns the consumer's messages awaiting an ack and
// redelivered.
func consumerState(t *testing.T, js jetstream.JetStream, name string) (ackPending, redelivered int) {
	t.Helper()
	c, err := js.Consumer(context.Background(), checks.DefaultBusStream, bus.ConsumerName(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending, info.NumRedelivered
}

// TestBusForgedMessagesRefused: a message signed with a key the region
// does not have, and one whose region header is not its subject's, are
// refused, counted and never delivered again; the agent's next message
// applies.
func TestBusForgedMessagesRefused(t *testing.T) {
	be, js, agents, id := soloEvaluator(t)
	us := agents["us-east"]
	r := wire.Result{V: 1, Check: id, Type: "http", Time: be.clk.Now(), OK: false, Reason: "forged"}
	us.publishMsg(us.signed(bus.ResultsSubject(checks.Shard(id, 64), "us-east"), []byte("not-the-key-of-us-east-0000"), r))
	// Signed right, but published on eu-west's subject.
	us.publishMsg(us.signed(bus.ResultsSubject(checks.Shard(id, 64), "eu-west"), us.key, r))
	us.result(id, true)
	be.waitHandled(t, 3)
	if n := be.messages(busUnauthorized); n != 2 {
		t.Errorf("%d messages refused as unauthorized, want 2", n)
	}
	if n := be.messages(busApplied); n != 1 {
		t.Errorf("%d messages applied, want the genuine one", n)
	}
	if v, _ := gatheredFrom(t, be.reg, "outpost_ingest_batches_total", map[string]string{"region": "us-east", "result": "unauthorized"}); v != 2 {
		t.Errorf("outpost_ingest_batches_total{us-east, unauthorized} = %v, want 2", v)
	}
	w, _ := be.ev.Window(id, "us-east")
	if w.Last == nil || !w.Last.OK {
		t.Errorf("window's last result %+v, want the genuine passing one", w.Last)
	}
	clocktest.WaitFor(t, 10*time.Second, "every message settled", func() bool { p, _ := consumerState(t, js, "solo"); return p == 0 })
	if _, redelivered := consumerState(t, js, "solo"); redelivered != 0 {
		t.Errorf("%d messages delivered again, want none", redelivered)
	}
	// A later message is consumed, the refused ones not again.
	us.live()
	be.waitHandled(t, 4)
}

// TestBusReplayRefused: a message published again with its old sequence
// number after the duplicate window (so under another Nats-Msg-Id, which
// the server cannot drop) is refused as a replay; within the window, the
// server drops it.
func TestBusReplayRefused(t *testing.T) {
	be, _, agents, id := soloEvaluator(t)
	us := agents["us-east"]
	first := us.signed(bus.LiveSubject("us-east"), us.key)
	us.publishMsg(first)
	for range 20 {
		us.result(id, true)
	}
	be.waitHandled(t, 21)
	// Within the window, the same Nats-Msg-Id: dropped by the server.
	us.publishMsg(first)
	replay := nats.NewMsg(first.Subject)
	replay.Data = first.Data
	for k, v := range first.Header {
		replay.Header[k] = v
	}
	replay.Header.Set(jetstream.MsgIDHeader, first.Header.Get(jetstream.MsgIDHeader)+"-after-window")
	us.publishMsg(replay)
	us.live()
	be.waitHandled(t, 23)
	if n := be.messages(busReplay); n != 1 {
		t.Errorf("%d replays refused, want 1", n)
	}
	if n := be.messages(busApplied); n != 22 {
		t.Errorf("%d messages applied, want 22", n)
	}
}

// TestBusReloadMovesConsumer: an evaluator whose shards hold no check
// sees every region LIVE by their liveness messages; a reload that changes
// bus.evaluators moves its consumer to its new shards without a restart,
// and their results are then decided here.
func TestBusReloadMovesConsumer(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	moved := checkInShards(t, "web", 32, 47)
	before := `    - {name: e1, shards: "0-31"}
    - {name: e2, shards: "32-63"}
`
	after := `    - {name: e1, shards: "0-47"}
    - {name: e2, shards: "48-63"}
`
	cfg := busConfig(t, srv.URL, "http://127.0.0.1:1", before, moved)
	clk := busClock()
	be := startBusEvaluator(t, cfg, clk, srv.URL, "e1")
	_, js := dialBus(t, srv.URL, "test-agents")
	clocktest.WaitFor(t, 30*time.Second, "the consumer of shards 0-31", func() bool { return len(consumerFilters(t, js, "e1")) == 33 })
	if be.holds(moved) {
		t.Fatalf("e1 holds %s before the reload", moved)
	}
	// e1 has no check of its own yet: every region is LIVE on the
	// liveness messages alone.
	agents := map[string]*busAgent{}
	for _, r := range busRegions {
		agents[r] = newBusAgent(t, js, clk, cfg, r)
		agents[r].live()
	}
	be.waitHandled(t, len(busRegions))
	waitLive(t, clk, be)
	rep, err := be.ev.Reload(context.Background(), busConfig(t, srv.URL, "http://127.0.0.1:1", after, moved))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Added, []string{moved}) {
		t.Errorf("reload added %v, want %s", rep.Added, moved)
	}
	clocktest.WaitFor(t, 30*time.Second, "the consumer of shards 0-47", func() bool {
		return slices.Contains(consumerFilters(t, js, "e1"), bus.ShardFilter(checks.Shard(moved, 64)))
	})
	if f := consumerFilters(t, js, "e1"); len(f) != 49 || slices.Contains(f, bus.ShardFilter(48)) {
		t.Errorf("filters after the reload: %v", f)
	}
	agents["us-east"].result(moved, true)
	be.waitHandled(t, len(busRegions)+1)
	if w, _ := be.ev.Window(moved, "us-east"); w.Last == nil {
		t.Errorf("the result of %s, now e1's, was not applied", moved)
	}
}

// TestBusServerRestart: the NATS server stops and starts again on its
// store and port while the evaluator runs. The consumer carries on by
// itself: what is published after the restart is applied, once. A
// consumer deleted under it is made again.
func TestBusServerRestart(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	id := checkInShards(t, "web", 0, 63)
	cfg := busConfig(t, srv.URL, "http://127.0.0.1:1", "", id)
	clk := busClock()
	be := startBusEvaluator(t, cfg, clk, srv.URL, "solo")
	_, js := dialBus(t, srv.URL, "test-agents")
	clocktest.WaitFor(t, 30*time.Second, "the consumer", func() bool { return len(consumerFilters(t, js, "solo")) == 2 })
	a := newBusAgent(t, js, clk, cfg, "us-east")
	a.result(id, true)
	be.waitHandled(t, 1)

	srv.Stop()
	bustest.Start(t, bustest.Options{StoreDir: srv.StoreDir, Port: srv.Port})
	// The agent's connection reconnects too; publish once it has.
	clocktest.WaitFor(t, 30*time.Second, "the agent reconnected", func() bool { return js.Conn().IsConnected() })
	a.result(id, false)
	a.live()
	be.waitHandled(t, 3)
	if n := be.messages(busApplied); n != 3 {
		t.Errorf("%d messages applied, want 3", n)
	}
	if w, _ := be.ev.Window(id, "us-east"); w.Last == nil || w.Last.OK {
		t.Errorf("last result %+v, want the failure published after the restart", w.Last)
	}

	// An operator deletes the consumer: the evaluator makes it again,
	// from the messages of the last stale_after, which it has applied
	// already.
	if err := js.DeleteConsumer(context.Background(), checks.DefaultBusStream, bus.ConsumerName("solo")); err != nil {
		t.Fatal(err)
	}
	clocktest.WaitFor(t, 30*time.Second, "the consumer made again", func() bool { return len(consumerFilters(t, js, "solo")) == 2 })
	a.live()
	be.waitHandled(t, 3+3+1)
	if applied, dups := be.messages(busApplied), be.messages(busDuplicate); applied != 4 || dups != 3 {
		t.Errorf("after the consumer was made again: %d applied, %d duplicates; want 4 and 3", applied, dups)
	}
}

// TestBusPermissionsAsDocumented: with the NATS permissions docs/config.md
// and docs/scale.md give (an evaluator's user: $JS.API.>, $JS.ACK.>,
// outpost.confirm.*, the buckets' subjects and _INBOX.>; an agent's: its
// region's subjects), the evaluator
// consumes, acks and asks for confirmations, the agent publishes and hears
// them, and the agent cannot publish for another region.
func TestBusPermissionsAsDocumented(t *testing.T) {
	const evalPW, agentPW = "evaluator-password-0123", "agent-password-0123"
	srv := bustest.Start(t, bustest.Options{Users: []*server.User{
		{Username: "evaluator", Password: evalPW, Permissions: &server.Permissions{
			// docs/scale.md's row for evaluators.
			Publish: &server.SubjectPermission{Allow: []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>",
				"$KV.OUTPOST_checks.>", "$KV.OUTPOST_incidents.>", "outpost.confirm.*"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}},
		{Username: "agent-us-east", Password: agentPW, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"outpost.results.*.us-east", "outpost.live.us-east"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"outpost.confirm.us-east", "_INBOX.>"}},
		}},
	}})
	id := checkInShards(t, "web", 0, 63)
	cfg := busConfig(t, srv.URL, "http://127.0.0.1:1", "", id)
	n := *cfg.Bus.NATS
	n.User, n.Password = "evaluator", checks.NewSecret(evalPW)
	cfg.Bus.NATS = &n
	clk := busClock()
	be := startBusEvaluator(t, cfg, clk, srv.URL, "solo")
	_, inspect := dialBusAs(t, &n, "inspect")
	clocktest.WaitFor(t, 30*time.Second, "the consumer", func() bool { return len(consumerFilters(t, inspect, "solo")) == 2 })

	agentNC, agentJS := dialBusAs(t, &checks.NATSBus{URL: srv.URL, User: "agent-us-east", Password: checks.NewSecret(agentPW)}, "agent")
	confirms, err := agentNC.SubscribeSync(bus.ConfirmSubject("us-east"))
	if err != nil {
		t.Fatal(err)
	}
	a := newBusAgent(t, agentJS, clk, cfg, "us-east")
	a.live()
	be.waitHandled(t, 1)
	clocktest.WaitFor(t, 30*time.Second, "us-east LIVE", func() bool {
		if stateOf(be.ev, "us-east") == decide.RegionLive {
			return true
		}
		clk.Advance(tickInterval)
		return false
	})
	a.result(id, false)
	be.waitHandled(t, 2)
	if n := be.messages(busApplied); n != 2 {
		t.Fatalf("%d messages applied, want 2", n)
	}
	msg, err := confirms.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no confirmation request reached the agent: %v", err)
	}
	var req wire.ConfirmRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil || !slices.Equal(req.Checks, []string{id}) {
		t.Errorf("confirmation request %s (%v), want %s", msg.Data, err, id)
	}
	clocktest.WaitFor(t, 10*time.Second, "every message acked", func() bool { p, _ := consumerState(t, inspect, "solo"); return p == 0 })

	forged := a.signed(bus.ResultsSubject(checks.Shard(id, 64), "eu-west"), a.key)
	if err := agentNC.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	if err := agentNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := agentNC.LastError(); err == nil || !strings.Contains(err.Error(), "Permissions Violation") {
		t.Errorf("publishing on eu-west's subject as us-east's agent: %v, want a permissions violation", err)
	}
}
