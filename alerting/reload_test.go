package alerting

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// reloadChecks are the checks of the configuration every reload test
// starts from: web pages, api and beat are bystanders.
const reloadChecks = `checks:
  - id: web
    failure: {consecutive: 2}
    http: {url: "https://example.test/"}
  - id: api
    failure: {consecutive: 2}
    tcp: {address: "127.0.0.1:1"}
  - id: beat
    heartbeat: {every: 1h, grace: 5m, token: "${K_US}"}
`

// reloadFeed feeds web results from every region and ticks, as webFeed
// does, for an evaluator whose configuration the test changes.
func reloadFeed(t *testing.T, f *webFeed, ev *Evaluator, ok bool, ids ...string) {
	t.Helper()
	f.seq++
	for _, region := range f.cfg.Regions {
		var rs []wire.Result
		for _, id := range ids {
			r := wire.Result{V: 1, Check: id, Region: region, Time: f.clk.Now(), OK: ok}
			if !ok {
				r.Reason = "status 503, want 2xx"
			}
			rs = append(rs, r)
		}
		if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: f.seq, Created: f.clk.Now(), Results: rs}); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.Advance(30 * time.Second)
	ev.tick(context.Background(), f.clk.Now())
}

func reloadNotes(r *notifytest.Recorder, check string) []string {
	var out []string
	for _, n := range r.Delivered() {
		if n.Check == check {
			out = append(out, n.Action+" "+n.Summary)
		}
	}
	return out
}

// A reload that adds a check, changes one and leaves one alone keeps what
// the evaluator knew: web's open incident stays open and is not paged
// again, its window keeps its results, the heartbeat keeps its last ping
// under a new token, and the added check is judged from then on.
func TestReloadKeepsWhatUnchangedChecksKnow(t *testing.T) {
	f := &webFeed{cfg: regionConfig(t, "us-east", reloadChecks), clk: newWebFeed(t).clk}
	notes := &notifytest.Recorder{}
	ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	srv := httptest.NewServer(ev.Handler())
	defer srv.Close()
	pingWith := func(token string) int { return ping(t, http.MethodGet, srv.URL+"/ping/"+token) }
	if code := pingWith(e2eKeys["us-east"]); code != http.StatusOK {
		t.Fatalf("ping: %d", code)
	}
	reloadFeed(t, f, ev, false, "web", "api")
	reloadFeed(t, f, ev, false, "web", "api")
	if got := reloadNotes(notes, "web"); len(got) != 1 || !strings.HasPrefix(got[0], "trigger") {
		t.Fatalf("before the reload: %v, want web's trigger", got)
	}
	before, _ := ev.Window("web", "eu-west")

	changed := strings.NewReplacer(`address: "127.0.0.1:1"`, `address: "127.0.0.1:2"`, `token: "${K_US}"`, `token: "${K_EU}"`).Replace(reloadChecks)
	next := regionConfig(t, "us-east", changed+
		`  - id: added
    failure: {consecutive: 2}
    http: {url: "https://added.test/"}
`)
	rep, err := ev.Reload(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(rep.Added, "added") || !equalStrings(rep.Changed, "api", "beat") || len(rep.Removed) != 0 {
		t.Errorf("report %+v, want added [added], changed [api beat], removed []", rep)
	}
	after, _ := ev.Window("web", "eu-west")
	if len(after.Samples) != len(before.Samples) || len(after.Samples) == 0 {
		t.Errorf("web's window holds %d samples after the reload, %d before", len(after.Samples), len(before.Samples))
	}
	if w, _ := ev.Window("api", "us-east"); len(w.Samples) != 2 {
		t.Errorf("api's window (same failure rule) holds %d samples, want 2", len(w.Samples))
	}
	if !ev.plan.Load().deciders["web"].state.Down.Open {
		t.Fatal("web's incident is no longer open after the reload")
	}
	if code := pingWith(e2eKeys["us-east"]); code != http.StatusNotFound {
		t.Errorf("the old token answers %d after the reload, want 404", code)
	}
	ev.beats.mu.Lock()
	kept := !ev.beats.states["beat"].LastSuccess.IsZero()
	ev.beats.mu.Unlock()
	if !kept {
		t.Error("the heartbeat lost its last ping in the reload")
	}
	if code := pingWith(e2eKeys["eu-west"]); code != http.StatusOK {
		t.Errorf("the new token answers %d, want 200", code)
	}

	// The next results: web is still down (no new page), added goes down
	// and pages once its for: and failure rule allow.
	reloadFeed(t, f, ev, false, "web", "added")
	reloadFeed(t, f, ev, false, "web", "added")
	if got := reloadNotes(notes, "web"); len(got) != 1 {
		t.Errorf("web after the reload: %v, want its one trigger from before", got)
	}
	if got := reloadNotes(notes, "added"); len(got) != 1 || !strings.HasPrefix(got[0], "trigger") {
		t.Errorf("added: %v, want one trigger", got)
	}
	if ev.config() != next {
		t.Error("the new configuration is not in force")
	}
}

// A check the reload removes has its open incident resolved, says why,
// and leaves no record for the next start; a restart on the new
// configuration pages nothing.
func TestReloadResolvesRemovedChecks(t *testing.T) {
	f := &webFeed{cfg: regionConfig(t, "us-east", reloadChecks), clk: newWebFeed(t).clk}
	notes := &notifytest.Recorder{}
	dir := t.TempDir()
	ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	reloadFeed(t, f, ev, false, "web")
	reloadFeed(t, f, ev, false, "web")
	next := regionConfig(t, "us-east", strings.Replace(reloadChecks, `  - id: web
    failure: {consecutive: 2}
    http: {url: "https://example.test/"}
`, "", 1))
	rep, err := ev.Reload(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(rep.Removed, "web") || rep.Resolved != 1 {
		t.Errorf("report %+v, want web removed and 1 incident resolved", rep)
	}
	got := reloadNotes(notes, "web")
	if len(got) != 2 || !strings.HasPrefix(got[1], "resolve ") || !strings.Contains(got[1], "removed from the configuration") {
		t.Fatalf("web: %v, want its trigger, then a resolve saying it was removed", got)
	}
	if _, ok := ev.Window("web", "us-east"); ok {
		t.Error("web still has a window")
	}
	// Results for web from an agent not yet reloaded are skipped, not
	// refused, and page nothing.
	reloadFeed(t, f, ev, false, "web", "api")
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(next, Options{Clock: f.clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close()
	var ids []string
	restarted.state.ForEach(bucketIncidents, func(id string, _ []byte) error { ids = append(ids, id); return nil })
	for _, id := range ids {
		if id == "web" {
			t.Errorf("web's record is still in the state store after its removal")
		}
	}
	if got := reloadNotes(notes, "web"); len(got) != 2 {
		t.Errorf("web after the restart: %v", got)
	}
}

// What the evaluator cannot change while it runs is refused whole, with
// the old configuration still in force.
func TestReloadRefusesWhatNeedsARestart(t *testing.T) {
	f := newWebFeed(t)
	ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: &notifytest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	for name, edit := range map[string]func(*checks.Config){
		"regions":   func(c *checks.Config) { c.Regions = c.Regions[:2] },
		"reporting": func(c *checks.Config) { c.Reporting.StaleAfter *= 2 },
		"peers":     func(c *checks.Config) { c.Peers = append(c.Peers, checks.Peer{Name: "b", URL: "http://127.0.0.1:1"}) },
	} {
		next := regionConfig(t, "us-east", reloadChecks)
		edit(next)
		_, err := ev.Reload(context.Background(), next)
		if !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want ErrNeedsRestart naming it", name, err)
		}
		if ev.config() != f.cfg {
			t.Fatalf("%s: the refused configuration is in force", name)
		}
	}
	if _, ok := ev.Window("web", "us-east"); !ok {
		t.Error("web lost its window in a refused reload")
	}
}

// A rotated agent key is in force right after the reload: the new one
// signs, the removed one no longer does.
func TestReloadRotatesAgentKeys(t *testing.T) {
	f := newFixture(t)
	if code, body := f.sendBatch(f.batch("us-east", 1, result("web", "us-east", true))); code != http.StatusOK {
		t.Fatalf("before: %d %q", code, body)
	}
	next := loadTestConfig(t)
	next.Agents = next.Agents[1:] // keyUS goes, keyUS2 stays
	if _, err := f.ev.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	b := f.batch("us-east", 2, result("web", "us-east", true))
	b.ConfigDigest = next.Digest
	if code, _ := f.send("us-east", keyUS, mustJSON(t, b)); code != http.StatusUnauthorized {
		t.Errorf("the removed key: %d, want 401", code)
	}
	if code, body := f.send("us-east", keyUS2, mustJSON(t, b)); code != http.StatusOK {
		t.Errorf("the kept key: %d %q, want 200", code, body)
	}
}

// Reloads while batches arrive and decisions run lose nothing of the
// checks they keep and race with nothing (run with -race).
func TestReloadDuringIngest(t *testing.T) {
	f := newFixture(t)
	other := loadTestConfig(t)
	other.Checks = other.Checks[:1] // api comes and goes
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cfg := f.cfg
			if i%2 == 0 {
				cfg = other
			}
			if _, err := f.ev.Reload(context.Background(), cfg); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	const batches = 200
	for seq := uint64(1); seq <= batches; seq++ {
		b := f.batch("us-east", seq, result("web", "us-east", seq%3 != 0), result("api", "us-east", true))
		b.Created = f.clock.Now()
		if err := f.ev.Apply(b); err != nil {
			t.Fatalf("batch %d: %v", seq, err)
		}
		f.ev.tick(context.Background(), f.clock.Now())
		_ = f.snapshotJSON()
	}
	close(stop)
	wg.Wait()
	if got := f.batches("us-east", "ok"); got != batches {
		t.Errorf("ok batches %g, want %d", got, batches)
	}
	if w, _ := f.ev.Window("web", "us-east"); w.Last == nil || len(w.Samples) == 0 {
		t.Errorf("web's window is empty after reloads: %+v", w)
	}
	if _, ok := f.ev.plan.Load().deciders["web"]; !ok {
		t.Error("web has no decider")
	}
}

// Retire resolves exactly the incidents notifiers were told of, on their
// routes, and leaves the state at rest.
func TestRetire(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := decide.IncidentState{Check: "web"}
	s.Down = decide.Incident{Open: true, Paged: true, Route: checks.RouteCritical, OpenedAt: now.Add(-time.Hour)}
	s.Degraded = decide.Incident{Open: true, OpenedAt: now} // under maintenance: never paged
	s.Shape = decide.Incident{Open: true, Paged: true, Route: checks.RouteWarning, OpenedAt: now.Add(-time.Minute)}
	next, events := decide.Retire("web", s, now)
	if next.AnyOpen() || next.Check != "web" {
		t.Errorf("state after Retire: %+v", next)
	}
	if len(events) != 2 {
		t.Fatalf("events %+v, want two resolves", events)
	}
	for i, want := range []struct {
		kind  decide.IncidentKind
		route string
	}{{decide.IncidentDown, checks.RouteCritical}, {decide.IncidentShape, checks.RouteWarning}} {
		ev := events[i]
		if ev.Action != decide.EventResolve || ev.Kind != want.kind || ev.Route != want.route || ev.DedupKey != decide.DedupKey("web", want.kind) {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	if !strings.Contains(events[0].Summary, "web down resolved after 1h0m0s: the check was removed") {
		t.Errorf("summary %q", events[0].Summary)
	}
}

func equalStrings(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
