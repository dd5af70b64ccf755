package alerting

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// webFeed feeds one result per region of check web to an evaluator, then
// ticks it 30s later.
type webFeed struct {
	cfg *checks.Config
	clk *clocktest.Fake
	seq uint64
}

func newWebFeed(t *testing.T) *webFeed {
	cfg := regionConfig(t, "us-east", `checks:
  - id: web
    failure: {consecutive: 2}
    http: {url: "https://example.test/"}
`)
	return &webFeed{cfg: cfg, clk: clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))}
}

func (f *webFeed) feed(t *testing.T, ev *Evaluator, ok bool) {
	t.Helper()
	f.seq++
	for _, region := range f.cfg.Regions {
		r := wire.Result{V: 1, Check: "web", Type: "http", Region: region, Time: f.clk.Now(), OK: ok}
		if !ok {
			r.Reason = "status 503, want 2xx"
		}
		if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: f.seq, Created: f.clk.Now(), Results: []wire.Result{r}}); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.Advance(30 * time.Second)
	ev.tick(context.Background(), f.clk.Now())
}

// An incidents.json from before the state store is imported once: the
// incident it holds stays open, unpaged again, and the file is renamed.
func TestIncidentsJSONIsMigrated(t *testing.T) {
	f := newWebFeed(t)
	notes := &notifytest.Recorder{}
	old, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes})
	if err != nil {
		t.Fatal(err)
	}
	f.feed(t, old, false)
	f.feed(t, old, false)
	if got := summariesOf(notes); len(got) != 1 {
		t.Fatalf("before: %v", got)
	}
	cd := old.plan.Load().deciders["web"]
	file := incidentFile{Version: 1, Checks: map[string]savedDecider{
		"web":     {State: cd.state, Failing: maps.Clone(cd.failing)},
		"removed": {State: cd.state},
	}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, incidentsFile), mustJSON(t, file), 0o600); err != nil {
		t.Fatal(err)
	}

	for i := range 2 { // the import, then a start from the store alone
		ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if !ev.plan.Load().deciders["web"].state.AnyOpen() {
			t.Fatalf("start %d: the incident is not open", i)
		}
		if _, err := os.Stat(filepath.Join(dir, incidentsFile)); !os.IsNotExist(err) {
			t.Fatalf("start %d: incidents.json still there: %v", i, err)
		}
		if _, err := os.Stat(filepath.Join(dir, incidentsFile+migratedSuffix)); err != nil {
			t.Fatal(err)
		}
		var ids []string
		ev.state.ForEach(bucketIncidents, func(id string, _ []byte) error { ids = append(ids, id); return nil })
		if len(ids) != 1 || ids[0] != "web" {
			t.Fatalf("start %d: records %v, want web's only", i, ids)
		}
		f.feed(t, ev, false)
		if got := summariesOf(notes); len(got) != 1 {
			t.Fatalf("start %d: %v, want the incident still open and unpaged again", i, got)
		}
		if err := ev.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// An incidents.json that cannot be parsed is set aside, loudly; the
// evaluator starts.
func TestCorruptIncidentsJSONIsSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, incidentsFile)
	os.WriteFile(path, []byte(`{"version":1,"checks":{"web":`), 0o600)
	f := newFixture(t, withDataDir(dir))
	setAsideOf(t, path)
	if log := f.logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, path) {
		t.Fatalf("log:\n%s", log)
	}
}

// A state file that cannot be read is set aside, loudly; the evaluator
// starts fresh and saves again.
func TestCorruptStateFileIsSetAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, stateFile)
	os.WriteFile(path, []byte(strings.Repeat("torn page ", 1000)), 0o600)
	f := newFixture(t, withDataDir(dir))
	setAsideOf(t, path)
	log := f.logs.String()
	for _, want := range []string{"level=ERROR", path, "open incidents"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	f.ev.saveIncident("web", savedDecider{Failing: map[string]bool{"us-east": true}})
	if err := f.ev.state.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A heartbeat check whose job stopped stays DOWN across a restart: the
// last ping is kept, so the restarted evaluator neither resolves the
// incident (judging from its own start) nor pages it again every + grace
// later.
func TestRestartKeepsHeartbeatPings(t *testing.T) {
	cfg, err := checks.LoadBytes("hb.yaml", []byte(`checks:
  - id: nightly-backup
    heartbeat: {every: 1h, grace: 10m, token: "${PING}"}
`), func(k string) (string, bool) { return pingToken, k == "PING" })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	dir := t.TempDir()
	start := func() (*Evaluator, string, func()) {
		ev, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ev.Handler())
		return ev, srv.URL, func() {
			srv.Close()
			if err := ev.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	tick := func(ev *Evaluator, d time.Duration) {
		clk.Advance(d)
		ev.tick(context.Background(), clk.Now())
	}

	first, url, stop := start()
	if code := ping(t, http.MethodPost, url+"/ping/"+pingToken); code != 200 {
		t.Fatalf("ping = %d", code)
	}
	tick(first, 75*time.Minute) // due at 13:00, grace until 13:10
	if p := heartbeatPages(notes); len(p) != 1 || !strings.HasPrefix(p[0], "trigger") {
		t.Fatalf("before the restart: %v", p)
	}
	stop()

	second, url, stop := start()
	defer stop()
	if got := second.beats.states["nightly-backup"]; !got.LastSuccess.Equal(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)) || got.Message == "" {
		t.Fatalf("restored ping = %+v", got)
	}
	for range 90 { // past the restart's own every + grace
		tick(second, time.Minute)
	}
	if p := heartbeatPages(notes); len(p) != 1 {
		t.Fatalf("after the restart: %v, want the incident still open, unpaged again", p)
	}
	if code := ping(t, http.MethodGet, url+"/ping/"+pingToken); code != 200 {
		t.Fatalf("ping = %d", code)
	}
	if p := heartbeatPages(notes); len(p) != 2 || !strings.HasPrefix(p[1], "resolve") {
		t.Fatalf("after the job pinged again: %v", p)
	}
}

// A ping is answered only once it is on disk, and the record holds no
// token.
func TestPingIsDurableWhenAnswered(t *testing.T) {
	ev, _, _, url := heartbeatEvaluatorIn(t, t.TempDir())
	if code := ping(t, http.MethodPost, url+"/ping/"+pingToken); code != 200 {
		t.Fatalf("ping = %d", code)
	}
	var got map[string]json.RawMessage
	ev.state.ForEach(bucketPings, func(id string, v []byte) error {
		if strings.Contains(string(v), pingToken) || strings.Contains(id, pingToken) {
			t.Errorf("the token is in the store: %s = %s", id, v)
		}
		got = map[string]json.RawMessage{id: v}
		return nil
	})
	if len(got) != 1 || !strings.Contains(string(got["nightly-backup"]), "dumped 42 GB") {
		t.Fatalf("records = %s", got)
	}
}

func heartbeatEvaluatorIn(t *testing.T, dir string) (*Evaluator, *notifytest.Recorder, *clocktest.Fake, string) {
	t.Helper()
	cfg, err := checks.LoadBytes("hb.yaml", []byte(`checks:
  - id: nightly-backup
    heartbeat: {every: 1h, grace: 10m, token: "${PING}"}
`), func(k string) (string, bool) { return pingToken, k == "PING" })
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	ev, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	srv := httptest.NewServer(ev.Handler())
	t.Cleanup(srv.Close)
	return ev, notes, clk, srv.URL
}
