package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
	"github.com/prometheus/client_golang/prometheus"
)

const apiToken = "api-token-for-the-silence-tests-01"

// silenceConfig is two checks, web and api, with the API on; peers, when
// given, are listed.
func silenceConfig(t *testing.T, peers string) *checks.Config {
	t.Helper()
	cfg, err := checks.LoadBytes("s.yaml", []byte(`regions: [us-east, eu-west]
api: {token: "${API}"}
`+peers+`checks:
  - {id: web, failure: {consecutive: 1}, labels: {service: shop}, http: {url: "https://example.test/"}}
  - {id: api, failure: {consecutive: 1}, http: {url: "https://api.example.test/"}}
`), func(k string) (string, bool) { return apiToken, k == "API" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// call makes an API request with token (none when empty).
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// failBoth sends a failing result of every check from both regions.
func failBoth(t *testing.T, ev *Evaluator, clk *clocktest.Fake, seq uint64) {
	t.Helper()
	now := clk.Now()
	for _, region := range []string{"us-east", "eu-west"} {
		var rs []wire.Result
		for _, id := range []string{"web", "api"} {
			rs = append(rs, wire.Result{V: 1, Check: id, Region: region, Time: now, OK: false, Reason: "status 503"})
		}
		if err := ev.Apply(wire.Batch{V: 1, Agent: "a", Region: region, Seq: seq, Created: now, Results: rs}); err != nil {
			t.Fatal(err)
		}
	}
	ev.tick(context.Background(), now)
}

// The lifecycle: a silence on service=shop holds back web's page while
// api pages; web shows as silenced on the status page and in the metric;
// the silence survives a restart; once expired, web pages.
func TestSilenceLifecycle(t *testing.T) {
	clk := clocktest.New(time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC))
	notes := &notifytest.Recorder{}
	dir := t.TempDir()
	cfg := silenceConfig(t, "")
	reg := prometheus.NewRegistry()
	ev, err := New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ev.Handler())
	defer srv.Close()

	body := `{"matchers":[{"name":"service","value":"shop"}],"endsAt":"2030-01-02T14:00:00Z","createdBy":"ana","comment":"db failover INC-1"}`
	code, answer := call(t, http.MethodPost, srv.URL+"/api/v1/silences", apiToken, body)
	if code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, answer)
	}
	var created struct{ SilenceID string }
	if err := json.Unmarshal([]byte(answer), &created); err != nil || len(created.SilenceID) != 32 {
		t.Fatalf("answer %q", answer)
	}
	clk.Advance(time.Minute)
	failBoth(t, ev, clk, 1)
	if got := pagesOf(notes, "web"); len(got) != 0 {
		t.Errorf("web paged under its silence: %v", got)
	}
	if got := pagesOf(notes, "api"); len(got) != 1 {
		t.Errorf("api: %v, want its page", got)
	}
	if m := ev.PublicStatus().Checks[0].Maintenance; len(m) != 1 || !strings.HasPrefix(m[0], "silenced until 2030-01-02 14:00 UTC") {
		t.Errorf("web's status: %v", m)
	}
	if v, ok := gatheredFrom(t, reg, "outpost_silence_active", map[string]string{"id": created.SilenceID, "created_by": "ana"}); !ok || v != 1 {
		t.Errorf("outpost_silence_active = %v (%v)", v, ok)
	}
	code, answer = call(t, http.MethodGet, srv.URL+"/api/v1/silences", apiToken, "")
	if code != http.StatusOK || !strings.Contains(answer, `"state":"active"`) || !strings.Contains(answer, "INC-1") {
		t.Errorf("GET: %d %s", code, answer)
	}

	// A restart keeps it.
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	ev, err = New(cfg, Options{Clock: clk, Notifier: notes, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	srv.Config.Handler = ev.Handler()
	clk.Advance(time.Minute)
	failBoth(t, ev, clk, 2)
	if got := pagesOf(notes, "web"); len(got) != 0 {
		t.Errorf("web paged after a restart under its silence: %v", got)
	}

	code, answer = call(t, http.MethodDelete, srv.URL+"/api/v1/silence/"+created.SilenceID, apiToken, "")
	if code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, answer)
	}
	if got := pagesOf(notes, "web"); len(got) != 1 || !strings.HasPrefix(got[0], "trigger") {
		t.Errorf("web after the silence expired: %v, want its page at once", got)
	}
	code, _ = call(t, http.MethodDelete, srv.URL+"/api/v1/silence/"+strings.Repeat("0", 32), apiToken, "")
	if code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown silence: %d", code)
	}
}

// Without the token nothing is read, changed or even parsed; a bad
// silence is a 400 naming every problem; an evaluator without api.token
// has no API.
func TestSilenceAPIRefusals(t *testing.T) {
	clk := clocktest.New(time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC))
	ev, err := New(silenceConfig(t, ""), Options{Clock: clk, Notifier: &notifytest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	srv := httptest.NewServer(ev.Handler())
	defer srv.Close()
	good := `{"matchers":[{"name":"check","value":"web"}],"endsAt":"2030-01-02T14:00:00Z","createdBy":"ana","comment":"x"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"no token", "POST", "/api/v1/silences", "", good, 401, "unauthorized"},
		{"wrong token", "GET", "/api/v1/silences", "nope", "", 401, "unauthorized"},
		{"wrong token, delete", "DELETE", "/api/v1/silence/" + strings.Repeat("a", 32), apiToken + "x", "", 401, "unauthorized"},
		{"garbage", "POST", "/api/v1/silences", apiToken, "}{", 400, "malformed silence"},
		{"unknown field", "POST", "/api/v1/silences", apiToken, strings.Replace(good, `"comment"`, `"coment"`, 1), 400, "unknown field"},
		{"invalid", "POST", "/api/v1/silences", apiToken, `{"matchers":[],"endsAt":"2020-01-01T00:00:00Z"}`, 400, "at least one is required"},
		{"too large", "POST", "/api/v1/silences", apiToken, `{"comment":"` + strings.Repeat("x", maxSilenceBody) + `"}`, 413, "at most"},
		{"replace an unknown one", "POST", "/api/v1/silences", apiToken, strings.Replace(good, `{`, `{"id":"`+strings.Repeat("b", 32)+`",`, 1), 404, "no silence"},
	} {
		code, answer := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
		if code != tc.code || !strings.Contains(answer, tc.want) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, code, answer, tc.code, tc.want)
		}
		if strings.Contains(answer, apiToken) {
			t.Errorf("%s: the answer holds the token", tc.name)
		}
	}
	ev.silences.mu.Lock()
	n := len(ev.silences.all)
	ev.silences.mu.Unlock()
	if n != 0 {
		t.Errorf("%d silences after refused requests", n)
	}

	off, err := New(regionConfig(t, "us-east", "checks:\n  - {id: web, http: {url: \"https://example.test/\"}}\n"), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	offSrv := httptest.NewServer(off.Handler())
	defer offSrv.Close()
	if code, _ := call(t, "GET", offSrv.URL+"/api/v1/silences", apiToken, ""); code != http.StatusNotFound {
		t.Errorf("without api.token: %d, want 404", code)
	}
}

// A silence made on one evaluator holds back the pages of its peer too,
// and so does its expiry.
func TestSilencesAreForwardedToPeers(t *testing.T) {
	clk := clocktest.New(time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC))
	var evB *Evaluator
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evB.Handler().ServeHTTP(w, r) }))
	defer srvB.Close()
	peers := "peers:\n  - {name: eval-a, url: \"http://127.0.0.1:1\"}\n  - {name: eval-b, url: \"" + srvB.URL + "\"}\n"
	evA, err := New(silenceConfig(t, peers), Options{Clock: clk, Notifier: &notifytest.Recorder{}, Name: "eval-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer evA.Close()
	notesB := &notifytest.Recorder{}
	evB, err = New(silenceConfig(t, peers), Options{Clock: clk, Notifier: notesB, Name: "eval-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer evB.Close()
	srvA := httptest.NewServer(evA.Handler())
	defer srvA.Close()
	code, answer := call(t, "POST", srvA.URL+"/api/v1/silences", apiToken,
		`{"matchers":[{"name":"check","value":"web"}],"endsAt":"2030-01-02T14:00:00Z","createdBy":"ana","comment":"x"}`)
	if code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, answer)
	}
	var created struct{ SilenceID string }
	json.Unmarshal([]byte(answer), &created)
	waitFor(t, "the silence at eval-b", func() bool {
		evB.silences.mu.Lock()
		defer evB.silences.mu.Unlock()
		return evB.silences.all[created.SilenceID] != nil
	})
	failBoth(t, evB, clk, 1)
	if got := pagesOf(notesB, "web"); len(got) != 0 {
		t.Errorf("eval-b paged web under the forwarded silence: %v", got)
	}
	if code, _ := call(t, "DELETE", srvA.URL+"/api/v1/silence/"+created.SilenceID, apiToken, ""); code != http.StatusOK {
		t.Fatal("DELETE")
	}
	waitFor(t, "web paged by eval-b once the silence expired", func() bool { return len(pagesOf(notesB, "web")) == 1 })
	evA.peerWG.Wait()
}

// pagesOf returns the notifications about check: action and summary.
func pagesOf(r *notifytest.Recorder, check string) []string {
	var out []string
	for _, n := range r.Delivered() {
		if n.Check == check {
			out = append(out, n.Action+" "+n.Summary)
		}
	}
	return out
}
