package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/bus/bustest"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// idInShard returns the first of web-0, web-1, ... in shard of shards.
func idInShard(shard, shards int) string {
	for i := 0; ; i++ {
		if id := fmt.Sprintf("web-%d", i); checks.Shard(id, shards) == shard {
			return id
		}
	}
}

// shardedConfig is the three-region test configuration with a bus of two
// shards at url, eval-a owning shardA and eval-b the other, a check in
// each shard (ids[0] in shard 0) and extra YAML (notifiers).
func shardedConfig(t *testing.T, url string, shardA int, notify string, extra string) (*checks.Config, [2]string) {
	t.Helper()
	ids := [2]string{idInShard(0, 2), idInShard(1, 2)}
	var cs strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&cs, "  - id: %s\n    failure: {consecutive: 2}\n%s    http: {url: \"https://example.test/\"}\n", id, notify)
	}
	env := e2eEnv()
	cfg, err := checks.LoadBytes("sharded.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
bus:
  nats: {url: %q, shards: 2}
  evaluators:
    - {name: eval-a, shards: "%d"}
    - {name: eval-b, shards: "%d"}
%schecks:
%s`, url, shardA, 1-shardA, extra, cs.String())), env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ids
}

// sharedJS connects to srv as the evaluator's caller does; closed when
// the test ends, after the evaluators registered later.
func sharedJS(t *testing.T, cfg *checks.Config, name string) jetstream.JetStream {
	t.Helper()
	nc, err := bus.Connect(cfg.Bus.NATS, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newSharded starts evaluator name on cfg with the bus.
func newSharded(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, name string, n notify.Notifier) *Evaluator {
	t.Helper()
	return newShardedIn(t, cfg, clk, name, n, t.TempDir())
}

// newShardedIn is newSharded with its data dir.
func newShardedIn(t *testing.T, cfg *checks.Config, clk *clocktest.Fake, name string, n notify.Notifier, dir string) *Evaluator {
	t.Helper()
	js := sharedJS(t, cfg, name)
	ev, err := New(cfg, Options{Clock: clk, Name: name, Bus: js, Notifier: n, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

// shardFeed sends results of checks from every region to an evaluator.
type shardFeed struct {
	clk *clocktest.Fake
	cfg *checks.Config
	seq uint64
}

func (f *shardFeed) send(t *testing.T, ev *Evaluator, ok bool, ids ...string) {
	t.Helper()
	f.seq++
	for _, region := range f.cfg.Regions {
		var rs []wire.Result
		for _, id := range ids {
			r := wire.Result{V: 1, Check: id, Type: "http", Region: region, Time: f.clk.Now(), OK: ok}
			if !ok {
				r.Reason = "status 503, want 2xx"
			}
			rs = append(rs, r)
		}
		if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: f.seq, Created: f.clk.Now(), Results: rs}); err != nil {
			t.Fatal(err)
		}
	}
}

// statusJSON is ev's /status.json as a client reads it.
func statusJSON(t *testing.T, ev *Evaluator) status.Status {
	t.Helper()
	rec := httptest.NewRecorder()
	ev.StatusJSON().ServeHTTP(rec, httptest.NewRequest("GET", "/status.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/status.json: %d %s", rec.Code, rec.Body)
	}
	var s status.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func statusPage(t *testing.T, ev *Evaluator) string {
	t.Helper()
	rec := httptest.NewRecorder()
	ev.StatusPage().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/status: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func checkOf(s status.Status, id string) (status.CheckStatus, bool) {
	for _, c := range s.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return status.CheckStatus{}, false
}

// Two evaluators owning different shards each show both checks: their own
// from memory, the other's as its owner shared it, with the right owner
// and verdict; the HTML page shows the owner too.
func TestSharedStatusShowsEveryShard(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	cfg, ids := shardedConfig(t, srv.URL, 0, "", "")
	a := newSharded(t, cfg, clk, "eval-a", &notifytest.Recorder{})
	b := newSharded(t, cfg, clk, "eval-b", &notifytest.Recorder{})
	f := &shardFeed{clk: clk, cfg: cfg}
	ctx := context.Background()
	for range 2 {
		f.send(t, a, true, ids[0])
		f.send(t, b, false, ids[1])
		clk.Advance(time.Second)
		a.tick(ctx, clk.Now())
		b.tick(ctx, clk.Now())
	}
	want := map[string]struct {
		owner string
		state decide.CheckState
	}{ids[0]: {"eval-a", decide.StateOK}, ids[1]: {"eval-b", decide.StateDown}}
	for _, ev := range []*Evaluator{a, b} {
		var last status.Status
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := json.MarshalIndent(last, "", " ")
				t.Logf("last status: %s", b)
			}
		})
		waitFor(t, ev.owner+" showing both checks as their owners shared them", func() bool {
			s := statusJSON(t, ev)
			last = s
			if s.Shards == nil || !s.Shards.Others || len(s.Checks) != 2 {
				return false
			}
			for id, w := range want {
				c, ok := checkOf(s, id)
				if !ok || c.Owner != w.owner || c.State != w.state || c.Stale {
					return false
				}
			}
			return true
		})
		s := statusJSON(t, ev)
		if s.Shards.Evaluator != ev.owner {
			t.Errorf("%s: shards = %+v", ev.owner, s.Shards)
		}
		down, _ := checkOf(s, ids[1])
		if len(down.Incidents) != 1 || down.Incidents[0].DedupKey != decide.DedupKey(ids[1], down.Incidents[0].Kind) {
			t.Errorf("%s: %s incidents = %+v", ev.owner, ids[1], down.Incidents)
		}
		if len(down.Regions) != 3 || down.Regions[0].Last == nil || down.Regions[0].Last.OK {
			t.Errorf("%s: %s regions = %+v", ev.owner, ids[1], down.Regions)
		}
		page := statusPage(t, ev)
		for _, w := range []string{ids[0], ids[1], "eval-a", "eval-b", "1 check DOWN"} {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the status page lacks %q", ev.owner, w)
			}
		}
	}

	// eval-b stops sharing (its evaluator is gone): after stale_after x 3
	// eval-a shows its check as stale and UNKNOWN, not its last verdict.
	b.Close()
	clk.Advance(status.StaleShared*cfg.Reporting.StaleAfter + time.Second)
	a.tick(ctx, clk.Now())
	c, _ := checkOf(statusJSON(t, a), ids[1])
	if !c.Stale || c.State != decide.StateUnknown || len(c.Incidents) != 0 || c.Owner != "eval-b" {
		t.Errorf("a check whose owner went silent: %+v", c)
	}
	if c, _ := checkOf(statusJSON(t, a), ids[0]); c.Stale || c.Owner != "eval-a" {
		t.Errorf("own check: %+v", c)
	}
}

// shardPair is two evaluators, eval-a and eval-b, on two shards of a
// real NATS server, with one check each.
type shardPair struct {
	srv  *bustest.Server
	cfg  *checks.Config
	clk  *clocktest.Fake
	ids  [2]string
	a, b *Evaluator
	f    *shardFeed
}

// passingPair starts a shardPair.
func passingPair(t *testing.T) *shardPair {
	t.Helper()
	p := &shardPair{srv: bustest.Start(t, bustest.Options{}), clk: clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))}
	p.cfg, p.ids = shardedConfig(t, p.srv.URL, 0, "", "")
	p.a = newSharded(t, p.cfg, p.clk, "eval-a", &notifytest.Recorder{})
	p.b = newSharded(t, p.cfg, p.clk, "eval-b", &notifytest.Recorder{})
	p.f = &shardFeed{clk: p.clk, cfg: p.cfg}
	return p
}

// step feeds both checks passing from every region, moves the clock a
// second and ticks both evaluators.
func (p *shardPair) step(t *testing.T) {
	t.Helper()
	p.f.send(t, p.a, true, p.ids[0])
	p.f.send(t, p.b, true, p.ids[1])
	p.clk.Advance(time.Second)
	p.a.tick(context.Background(), p.clk.Now())
	p.b.tick(context.Background(), p.clk.Now())
}

// A check whose status does not change is not written again every
// heartbeat: its owner's key says the owner is alive, and the other
// evaluators keep showing the check, not stale, well past the staleness
// bound. Per check per heartbeat, 100,000 checks would be thousands of
// bucket writes a second saying nothing.
func TestSharedStatesWrittenOnChange(t *testing.T) {
	p := passingPair(t)
	cfg, ids, a, b, step := p.cfg, p.ids, p.a, p.b, func() { p.step(t) }
	for range 3 {
		step()
	}
	shown := func() bool {
		c, ok := checkOf(statusJSON(t, a), ids[1])
		return ok && c.Owner == "eval-b" && c.State == decide.StateOK && !c.Stale
	}
	waitFor(t, "eval-a showing eval-b's check", shown)
	idle := func() bool {
		b.shared.mu.Lock()
		defer b.shared.mu.Unlock()
		return len(b.shared.pending) == 0
	}
	waitFor(t, "eval-b's writes flushed", idle)
	before := testutil.ToFloat64(b.shared.m.writes.WithLabelValues("states"))
	steps := int(status.StaleShared*cfg.Reporting.StaleAfter/time.Second) + 3
	for range steps {
		step()
	}
	waitFor(t, "eval-b's writes flushed", idle)
	// One owner key per heartbeat; the unchanged check, never.
	if got := testutil.ToFloat64(b.shared.m.writes.WithLabelValues("states")) - before; got > float64(steps)+1 {
		t.Errorf("%d heartbeats with nothing changed wrote %.0f states, want at most one per heartbeat (the owner key)", steps, got)
	}
	waitFor(t, "eval-a still showing eval-b's unchanged check, not stale", shown)
}

// With NATS down, the status page and JSON still answer with the
// evaluator's own checks and say that the other shards are unavailable;
// once NATS is back, they show every check again.
func TestSharedStatusWithoutNATS(t *testing.T) {
	p := passingPair(t)
	srv, clk, ids, a, step := p.srv, p.clk, p.ids, p.a, func() { p.step(t) }
	step()
	waitFor(t, "eval-a showing eval-b's check", func() bool {
		_, ok := checkOf(statusJSON(t, a), ids[1])
		return ok
	})

	srv.Stop()
	step() // deciding and sharing go on without NATS
	waitFor(t, "eval-a noticing that NATS is gone", func() bool {
		s := statusJSON(t, a)
		return s.Shards != nil && !s.Shards.Others
	})
	s := statusJSON(t, a)
	if len(s.Checks) != 1 || s.Checks[0].ID != ids[0] || s.Checks[0].Owner != "eval-a" || s.Checks[0].State != decide.StateOK {
		t.Errorf("without NATS: checks = %+v", s.Checks)
	}
	if !strings.Contains(s.Shards.Note, "unavailable") {
		t.Errorf("note = %q", s.Shards.Note)
	}
	page := statusPage(t, a)
	for _, w := range []string{"other shards unavailable", "Only the checks of eval-a (shards 0) are shown", ids[0]} {
		if !strings.Contains(page, w) {
			t.Errorf("the status page without NATS lacks %q", w)
		}
	}
	if strings.Contains(page, ids[1]) {
		t.Errorf("the status page without NATS shows %s", ids[1])
	}

	bustest.Start(t, bustest.Options{StoreDir: srv.StoreDir, Port: srv.Port})
	waitFor(t, "eval-a showing eval-b's check again once NATS is back", func() bool {
		step()
		clk.Advance(busRetryEvery)
		s := statusJSON(t, a)
		c, ok := checkOf(s, ids[1])
		return s.Shards.Others && ok && c.Owner == "eval-b" && !c.Stale
	})
}

// teeNotifier records what an evaluator hands its pipeline, then passes
// it on.
type teeNotifier struct {
	next notify.Notifier
	mu   sync.Mutex
	got  []notify.Notification
}

func (n *teeNotifier) Notify(ctx context.Context, x notify.Notification) (bool, error) {
	n.mu.Lock()
	n.got = append(n.got, x)
	n.mu.Unlock()
	return n.next.Notify(ctx, x)
}

func (n *teeNotifier) actions(check string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.got {
		if x.Check == check {
			out = append(out, x.Action+" "+x.Key)
		}
	}
	return out
}

// The shard map changed by a reload while an incident is open: eval-a
// owns the check and has paged PagerDuty (a fake that validates Events
// v2); both evaluators reload with a map that gives the check to eval-b.
// eval-b takes the incident over: it does not trigger it again while the
// check stays down, and when the check recovers the resolve arrives once,
// from eval-b, with the same dedup key.
func TestSharedIncidentMovesWithItsCheck(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notifiers := fmt.Sprintf("notifiers:\n  - {name: oncall, pagerduty: {routing_key: \"${PD_KEY}\", url: %q}, routes: [critical]}\n", pd.URL())
	cfg1, ids := shardedConfig(t, srv.URL, 0, "    notify: [oncall]\n", notifiers)
	cfg2, _ := shardedConfig(t, srv.URL, 1, "    notify: [oncall]\n", notifiers)
	x := ids[0] // eval-a's under cfg1, eval-b's under cfg2

	var tees [2]*teeNotifier
	var evs [2]*Evaluator
	dirs := [2]string{t.TempDir(), t.TempDir()}
	for i, name := range []string{"eval-a", "eval-b"} {
		pipe := startPipeline(t, cfg1, clk)
		tees[i] = &teeNotifier{next: pipe}
		evs[i] = newShardedIn(t, cfg1, clk, name, tees[i], dirs[i])
	}
	dirB := dirs[1]
	a, b := evs[0], evs[1]
	f := &shardFeed{clk: clk, cfg: cfg1}
	ctx := context.Background()
	step := func(ev *Evaluator, ok bool) {
		f.send(t, ev, ok, x)
		clk.Advance(time.Second)
		a.tick(ctx, clk.Now())
		b.tick(ctx, clk.Now())
	}
	step(a, false)
	step(a, false)
	waitFor(t, "eval-a's trigger at PagerDuty", func() bool { return len(pd.Events()) == 1 })
	key := pd.Events()[0].DedupKey
	if ev := pd.Events()[0]; ev.EventAction != "trigger" || key != decide.DedupKey(x, decide.IncidentDown) {
		t.Fatalf("first event: %+v", ev)
	}
	// eval-a's decision state is in the incidents bucket.
	kv, err := sharedJS(t, cfg1, "test").KeyValue(ctx, bus.IncidentsBucket(cfg1.Bus.NATS))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "eval-a's open incident in the incidents bucket", func() bool {
		ent, err := kv.Get(ctx, x)
		return err == nil && strings.Contains(string(ent.Value()), `"owner":"eval-a"`)
	})

	// The evaluator that gains the shard reloads first (docs/scale.md).
	repB, err := b.Reload(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	repA, err := a.Reload(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(repB.Added, x) || !equalStrings(repA.HandedOver, x) || repA.Resolved != 0 {
		t.Fatalf("reports: eval-b %+v, eval-a %+v", repB, repA)
	}
	cd := b.plan.Load().deciders[x]
	cd.mu.Lock()
	in, _ := cd.state.Incident(decide.IncidentDown)
	cd.mu.Unlock()
	if !in.Open || !in.Paged {
		t.Fatalf("eval-b took over %+v, want the open, paged incident", in)
	}

	// Still down, now decided by eval-b: no second trigger, not even
	// after eval-b restarts (its data dir remembers what it took over).
	for range 3 {
		step(b, false)
	}
	b.Close()
	b = newShardedIn(t, cfg2, clk, "eval-b", tees[1], dirB)
	for range 2 {
		step(b, false)
	}
	if got := tees[1].actions(x); len(got) != 0 {
		t.Fatalf("eval-b sent %v while the taken-over incident stayed open", got)
	}
	// Recovered: one resolve, from eval-b, under the same key.
	for i := 0; len(tees[1].actions(x)) == 0; i++ {
		if i == 10 {
			t.Fatal("eval-b never resolved the incident it took over")
		}
		step(b, true)
	}
	waitFor(t, "the resolve at PagerDuty", func() bool { return len(pd.Events()) >= 2 })
	for range 3 {
		step(b, true)
	}
	evsAt := pd.Events()
	if len(evsAt) != 2 || evsAt[1].EventAction != "resolve" || evsAt[1].DedupKey != key {
		t.Fatalf("PagerDuty events: %+v, want the trigger and one resolve of %s", evsAt, key)
	}
	if got := tees[1].actions(x); !equalStrings(got, "resolve "+key) {
		t.Errorf("eval-b sent %v", got)
	}
	if got := tees[0].actions(x); !equalStrings(got, "trigger "+key) {
		t.Errorf("eval-a sent %v, want its trigger only", got)
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Errorf("invalid events: %v", bad)
	}
	// The bucket follows: the check is at rest, its record gone.
	waitFor(t, "the incidents bucket without the resolved check", func() bool {
		_, err := kv.Get(ctx, x)
		return err != nil
	})
}

// startPipeline runs the real delivery pipeline (outbox, dedup, retries)
// of cfg's notifiers, as startPagingEvaluator does, until the test ends.
func startPipeline(t *testing.T, cfg *checks.Config, clk *clocktest.Fake) notify.Notifier {
	t.Helper()
	ns, err := receivers.Build(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	groups, defaultGroup := outbox.Policies(cfg)
	pipe, err := outbox.Open(outbox.Options{Notifiers: ns, Routes: receivers.Routes(cfg), CheckNotifiers: receivers.CheckNotifiers(cfg),
		Groups: groups, DefaultGroup: defaultGroup, Facts: outbox.CheckFacts(cfg), Budgets: outbox.Budgets(cfg),
		Dir: t.TempDir(), Clock: clk, Redact: cfg.Redactor()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); pipe.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; pipe.Close() })
	return pipe
}

// The evaluator's NATS permissions documented in docs/scale.md are enough
// for the shared buckets: creating them, writing and following.
func TestSharedBucketsWithEvaluatorPermissions(t *testing.T) {
	const password = "evaluator-password-0042"
	srv := bustest.Start(t, bustest.Options{Users: []*server.User{{
		Username: "evaluator", Password: password,
		Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{"$JS.API.>", "$JS.ACK.>", "$JS.FC.>",
				"$KV.OUTPOST_checks.>", "$KV.OUTPOST_incidents.>", "outpost.confirm.*"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		},
	}}})
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	cfg, ids := shardedConfig(t, srv.URL, 0, "", "")
	n := *cfg.Bus.NATS
	n.User, n.Password = "evaluator", checks.NewSecret(password)
	cfg.Bus.NATS = &n
	a := newSharded(t, cfg, clk, "eval-a", &notifytest.Recorder{})
	b := newSharded(t, cfg, clk, "eval-b", &notifytest.Recorder{})
	f := &shardFeed{clk: clk, cfg: cfg}
	f.send(t, a, true, ids[0])
	f.send(t, b, true, ids[1])
	clk.Advance(time.Second)
	a.tick(context.Background(), clk.Now())
	b.tick(context.Background(), clk.Now())
	waitFor(t, "eval-a showing eval-b's check", func() bool {
		c, ok := checkOf(statusJSON(t, a), ids[1])
		return ok && c.Owner == "eval-b" && c.State == decide.StateOK
	})
}

// An evaluator that starts owning a shard with an open incident (a new
// pair added beside the old owners, or a data dir lost) takes the
// incident from the incidents bucket: it does not trigger it again, and
// resolves it, once, when the check recovers.
func TestSharedIncidentSeedsAStartingEvaluator(t *testing.T) {
	srv := bustest.Start(t, bustest.Options{})
	pd := notifytest.NewFakePagerDuty(t)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	extra := "    - {name: eval-c, shards: \"0\"}\n" +
		fmt.Sprintf("notifiers:\n  - {name: oncall, pagerduty: {routing_key: \"${PD_KEY}\", url: %q}, routes: [critical]}\n", pd.URL())
	cfg, ids := shardedConfig(t, srv.URL, 0, "    notify: [oncall]\n", extra)
	x := ids[0]
	a := newSharded(t, cfg, clk, "eval-a", &teeNotifier{next: startPipeline(t, cfg, clk)})
	f := &shardFeed{clk: clk, cfg: cfg}
	ctx := context.Background()
	for range 2 {
		f.send(t, a, false, x)
		clk.Advance(time.Second)
		a.tick(ctx, clk.Now())
	}
	waitFor(t, "eval-a's trigger at PagerDuty", func() bool { return len(pd.Events()) == 1 })
	key := pd.Events()[0].DedupKey
	kv, err := sharedJS(t, cfg, "test").KeyValue(ctx, bus.IncidentsBucket(cfg.Bus.NATS))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "eval-a's open incident in the incidents bucket", func() bool {
		_, err := kv.Get(ctx, x)
		return err == nil
	})

	tee := &teeNotifier{next: startPipeline(t, cfg, clk)}
	c := newSharded(t, cfg, clk, "eval-c", tee)
	step := func(ok bool) {
		f.send(t, c, ok, x)
		clk.Advance(time.Second)
		c.tick(ctx, clk.Now())
	}
	for range 3 {
		step(false)
	}
	if got := tee.actions(x); len(got) != 0 {
		t.Fatalf("eval-c sent %v for the incident eval-a had open", got)
	}
	for i := 0; len(tee.actions(x)) == 0; i++ {
		if i == 10 {
			t.Fatal("eval-c never resolved the incident it took")
		}
		step(true)
	}
	waitFor(t, "the resolve at PagerDuty", func() bool { return len(pd.Events()) >= 2 })
	if evs := pd.Events(); len(evs) != 2 || evs[1].EventAction != "resolve" || evs[1].DedupKey != key {
		t.Fatalf("PagerDuty events: %+v", evs)
	}
	if got := tee.actions(x); !equalStrings(got, "resolve "+key) {
		t.Errorf("eval-c sent %v", got)
	}
}

// The queue of bucket writes keeps one write per key, the latest, and past
// busQueueMax drops the oldest keys' writes, counted.
func TestSharedQueueIsBounded(t *testing.T) {
	b := &busState{pending: map[opKey]busOp{}, wake: make(chan struct{}, 1),
		m: busMetrics{dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "d"})}}
	for i := range 3 {
		b.enqueue(bucketStatesKV, "same", []byte{byte(i)})
	}
	if refs := b.take(); len(refs) != 1 {
		t.Fatalf("three writes of one key queue %d", len(refs))
	} else if v, ok := b.value(refs[0]); !ok || v[0] != 2 {
		t.Fatalf("queued %v, want the latest", v)
	}
	for i := range busQueueMax + 10 {
		b.enqueue(bucketIncidentsKV, fmt.Sprint("k", i), []byte{1})
	}
	if got := testutil.ToFloat64(b.m.dropped); got != 10 {
		t.Errorf("dropped %v, want 10", got)
	}
	refs := b.take()
	if len(refs) != busQueueMax || refs[0].k.key != "k10" || refs[len(refs)-1].k.key != fmt.Sprint("k", busQueueMax+9) {
		t.Errorf("queue holds %d writes, from %v to %v; want the newest %d", len(refs), refs[0].k, refs[len(refs)-1].k, busQueueMax)
	}
	if len(b.order) > 2*len(b.pending)+1024 {
		t.Errorf("order grew to %d for %d writes", len(b.order), len(b.pending))
	}
}
