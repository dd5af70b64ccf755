package alerting

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/probes/wire"
)

// goodBody is a valid us-east batch of agent a1.
func goodBody(f *fixture, seq uint64) []byte {
	return mustJSON(f.t, f.batch("us-east", seq, result("web", "us-east", false), result("api", "us-east", true)))
}

func TestIngestRefusals(t *testing.T) {
	f := newFixture(t)
	// Some state first, so that "unchanged" means something.
	if code, body := f.send("us-east", keyUS, goodBody(f, 1)); code != http.StatusOK || body != "ok" {
		t.Fatalf("seed batch: %d %q", code, body)
	}

	withResults := func(n int, last func(*wire.Result)) []byte {
		rs := make([]wire.Result, n)
		for i := range rs {
			rs[i] = result("web", "us-east", true)
		}
		if last != nil {
			last(&rs[n-1])
		}
		return mustJSON(t, f.batch("us-east", 50, rs...))
	}
	good := goodBody(f, 50)
	signed := func(body []byte) request {
		return request{region: "us-east", key: keyUS, signAt: f.clock.Now(), body: body}
	}
	edit := func(old, new string) request {
		b := strings.Replace(string(good), old, new, 1)
		if b == string(good) {
			t.Fatalf("edit %q found nothing to replace", old)
		}
		return signed([]byte(b))
	}
	huge := bytes.Repeat([]byte(" "), 10<<20)

	tests := []struct {
		name   string
		req    request
		status int
		want   string // in the answer
		label  string // region label of the metric
		result string
	}{
		{"forged signature", request{region: "us-east", key: keyUS, signAt: f.clock.Now(), body: good, sig: "v1=" + strings.Repeat("ab", 32)},
			401, "signature does not match", "us-east", "unauthorized"},
		{"malformed signature", request{region: "us-east", key: keyUS, signAt: f.clock.Now(), body: good, sig: "sha1=zz"},
			401, "malformed X-Outpost-Signature", "us-east", "unauthorized"},
		{"another region's key", request{region: "us-east", key: keyEU, signAt: f.clock.Now(), body: good},
			401, "signature does not match", "us-east", "unauthorized"},
		{"unknown key", request{region: "us-east", key: keyOther, signAt: f.clock.Now(), body: good},
			401, "signature does not match", "us-east", "unauthorized"},
		{"unsigned", request{region: "us-east", body: good},
			401, "missing X-Outpost-Timestamp or X-Outpost-Signature", "us-east", "unauthorized"},
		{"unknown region", request{region: "mars", key: keyUS, signAt: f.clock.Now(), body: good},
			401, `unknown region "mars"`, unknownRegionLabel, "unauthorized"},
		{"no region header", request{key: keyUS, signAt: f.clock.Now(), body: good},
			401, "missing X-Outpost-Region", unknownRegionLabel, "unauthorized"},
		{"region without agent keys", request{region: "ap-south", key: keyUS, signAt: f.clock.Now(), body: good},
			401, `no agent key is configured for region "ap-south"`, "ap-south", "unauthorized"},
		{"signed 10 minutes ago", request{region: "us-east", key: keyUS, signAt: f.clock.Now().Add(-10 * time.Minute), body: good},
			401, "clock skew", "us-east", "unauthorized"},
		{"signed 10 minutes ahead", request{region: "us-east", key: keyUS, signAt: f.clock.Now().Add(10 * time.Minute), body: good},
			401, "clock skew", "us-east", "unauthorized"},
		{"10 MiB body", signed(huge), 413, "over the limit", "us-east", "too_large"},
		{"10 MiB body without length", request{region: "us-east", key: keyUS, signAt: f.clock.Now(), body: huge, hideLength: true},
			413, "over the limit", "us-east", "too_large"},
		{"garbage", signed([]byte("}{ not json")), 400, "malformed JSON at byte 1", "us-east", "bad_request"},
		{"empty body", signed(nil), 400, "empty body", "us-east", "bad_request"},
		{"truncated", signed(good[:len(good)/2]), 400, "body ends inside the batch", "us-east", "bad_request"},
		{"trailing data", signed(append(append([]byte{}, good...), "{}"...)), 400, "data after the batch object", "us-east", "bad_request"},
		{"unknown field", edit(`"v":1,`, `"v":1,"extra":true,`), 400, `unknown field "extra"`, "us-east", "bad_request"},
		{"unknown field in a result", edit(`"ok":false`, `"ok":false,"okay":true`), 400, `unknown field "okay"`, "us-east", "bad_request"},
		{"wrong type", edit(`"ok":false`, `"ok":"no"`), 400, "results.ok: got JSON string, want bool", "us-east", "bad_request"},
		{"batch version", edit(`"v":1,"agent"`, `"v":2,"agent"`), 400, "v must be 1, got 2", "us-east", "bad_request"},
		{"result version", edit(`{"v":1,"check":"api"`, `{"v":7,"check":"api"`), 400, "results[1].v must be 1, got 7", "us-east", "bad_request"},
		{"no agent", edit(`"agent":"a1"`, `"agent":""`), 400, "agent is required", "us-east", "bad_request"},
		{"seq zero", edit(`"seq":50`, `"seq":0`), 400, "seq is required", "us-east", "bad_request"},
		{"seq ahead of the clock", edit(`"seq":50`, `"seq":18446744073709551615`), 400, "seq 18446744073709551615 is ahead of this evaluator's clock", "us-east", "bad_request"},
		{"batch region differs from header", edit(`"region":"us-east","seq"`, `"region":"eu-west","seq"`),
			400, `region "eu-west" does not match the X-Outpost-Region header "us-east"`, "us-east", "bad_request"},
		{"agent header differs", request{region: "us-east", agent: "a2", key: keyUS, signAt: f.clock.Now(), body: good},
			400, `agent "a1" does not match the X-Outpost-Agent header "a2"`, "us-east", "bad_request"},
		{"result region differs", signed(mustJSON(t, f.batch("us-east", 50, result("web", "eu-west", true)))),
			400, `results[0].region "eu-west" does not match the batch region "us-east"`, "us-east", "bad_request"},
		{"result agent differs", edit(`"region":"us-east","seq":0`, `"region":"us-east","agent":"a9","seq":0`),
			400, `results[0].agent "a9" does not match the batch agent "a1"`, "us-east", "bad_request"},
		{"only the last of 500 has no time", signed(withResults(500, func(r *wire.Result) { r.Time = time.Time{} })),
			400, "results[499].time is required", "us-east", "bad_request"},
		{"negative duration last", signed(withResults(3, func(r *wire.Result) { r.Duration = -1 })),
			400, "results[2].duration_seconds must not be negative", "us-east", "bad_request"},
		{"more than 1000 results", signed(withResults(wire.MaxBatchResults+1, nil)),
			400, "more than 1000 results", "us-east", "bad_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshotJSON()
			wantCount := f.batches(tc.label, tc.result) + 1
			okBefore := f.batches("us-east", "ok")

			code, body := f.do(tc.req)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("answer %d %q, want %d containing %q", code, body, tc.status, tc.want)
			}
			for _, k := range [][]byte{keyUS, keyUS2, keyEU} {
				if strings.Contains(body, string(k)) {
					t.Fatalf("answer %q contains a key", body)
				}
			}
			if after := f.snapshotJSON(); after != before {
				t.Errorf("state changed by a refused batch:\nbefore %s\nafter  %s", before, after)
			}
			if got := f.batches(tc.label, tc.result); got != wantCount {
				t.Errorf("outpost_ingest_batches_total{region=%q,result=%q} = %g, want %g", tc.label, tc.result, got, wantCount)
			}
			if got := f.batches("us-east", "ok"); got != okBefore {
				t.Errorf("ok batches went from %g to %g", okBefore, got)
			}
		})
	}
	// The refused seq 50 was never accepted: the same batch, correctly
	// signed, goes through.
	if code, body := f.send("us-east", keyUS, good); code != http.StatusOK || body != "ok" {
		t.Fatalf("valid batch after refusals: %d %q", code, body)
	}
}

// Results for checks the evaluator's configuration does not run in the
// region are configuration skew (an agent a reload ahead or behind): they
// are skipped and counted, the rest of the batch applies, and the agent is
// answered 200 so that it does not drop the batch as refused.
func TestIngestSkipsResultsOfChecksItDoesNotRun(t *testing.T) {
	f := newFixture(t)
	skipped := func(region string) float64 {
		v, _ := f.gathered("outpost_ingest_skipped_results_total", map[string]string{"region": region})
		return v
	}
	long := strings.Repeat("k", 100_000)
	b := f.batch("us-east", 60, result("foo", "us-east", false), result("web", "us-east", false), result(long, "us-east", false))
	typ := result("web", "us-east", false)
	typ.Type = "dns"
	b.Results = append(b.Results, typ)
	if code, body := f.sendBatch(b); code != http.StatusOK || body != "ok" {
		t.Fatalf("answer %d %q, want 200 ok", code, body)
	}
	if got := skipped("us-east"); got != 3 {
		t.Errorf("outpost_ingest_skipped_results_total{region=us-east} = %g, want 3 (unknown, too long, another type)", got)
	}
	if w, _ := f.ev.Window("web", "us-east"); len(w.Samples) != 1 {
		t.Errorf("web's window holds %d samples, want the batch's one result of type http", len(w.Samples))
	}
	if _, ok := f.ev.Window("foo", "us-east"); ok {
		t.Error("a window exists for the unknown check foo")
	}
	// api does not run in eu-west.
	eu := f.batch("eu-west", 61, result("api", "eu-west", false), result("web", "eu-west", true))
	if code, body := f.send("eu-west", keyEU, mustJSON(t, eu)); code != http.StatusOK || body != "ok" {
		t.Fatalf("eu-west answer %d %q, want 200 ok", code, body)
	}
	if got := skipped("eu-west"); got != 1 {
		t.Errorf("skipped in eu-west = %g, want 1", got)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "does not run in the region skipped") {
		t.Errorf("no skip logged: %.500s", logs)
	}
	if strings.Contains(logs, strings.Repeat("k", wire.MaxQuoteBytes+1)) {
		t.Errorf("the log quotes more than %d bytes of a check name", wire.MaxQuoteBytes)
	}
}

func TestIngestAppliesValidBatch(t *testing.T) {
	f := newFixture(t)
	b := f.batch("us-east", 7, result("web", "us-east", true), result("web", "us-east", false), result("api", "us-east", true))
	b.Results[1].Observed.ResolvedIPs = []string{"203.0.113.10"}
	f.clock.Advance(3 * time.Second)
	if code, body := f.sendBatch(b); code != http.StatusOK || body != "ok" {
		t.Fatalf("answer %d %q, want 200 ok", code, body)
	}
	w, ok := f.ev.Window("web", "us-east")
	if !ok {
		t.Fatal("no window for web in us-east")
	}
	if len(w.Samples) != 2 || !w.Samples[0].OK || w.Samples[1].OK || w.Samples[1].Reason != "status 503, want 200" {
		t.Fatalf("samples = %+v", w.Samples)
	}
	if got := w.Samples[1].Received; !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("received %v, want the evaluator's clock", got)
	}
	if w.Failures != 1 || w.Passes != 1 || w.Consecutive != 1 || w.Last == nil || w.Last.Observed.ResolvedIPs[0] != "203.0.113.10" {
		t.Errorf("window = %+v", w)
	}
	if _, ok := f.ev.Window("api", "eu-west"); ok {
		t.Error("window for a check that does not run in the region")
	}
	if got, _ := f.gathered("outpost_ingest_results_total", map[string]string{"region": "us-east"}); got != 3 {
		t.Errorf("outpost_ingest_results_total{region=us-east} = %g, want 3", got)
	}
	if got, _ := f.gathered("outpost_ingest_batches_total", map[string]string{"region": "us-east", "result": "ok"}); got != 1 {
		t.Errorf("ok batches = %g, want 1", got)
	}

	s := f.ev.Snapshot()
	web := s.Checks[0]
	if web.ID != "web" || len(web.Regions) != 3 || web.Regions[0].Region != "us-east" {
		t.Fatalf("snapshot checks = %+v", s.Checks)
	}
	if l := web.Regions[0].Last; l == nil || l.OK || l.Reason != "status 503, want 200" || l.Agent != "a1" {
		t.Errorf("last = %+v", l)
	}
	if c := web.Regions[0].Window; c != (status.WindowCounts{Samples: 2, Size: 10, Failures: 1, Passes: 1, Consecutive: 1}) {
		t.Errorf("window counts = %+v", c)
	}
	if web.Regions[1].Last != nil {
		t.Errorf("eu-west has a last result: %+v", web.Regions[1].Last)
	}
	us := s.Regions[0]
	if us.Name != "us-east" || !us.LastSeen.Equal(t0.Add(3*time.Second)) || len(us.Agents) != 1 || us.Agents[0].LastSeq != 7 || !us.ConfigDigestMatch {
		t.Errorf("region = %+v", us)
	}
}

func TestIngestSecondKeyOfRegion(t *testing.T) {
	f := newFixture(t)
	if code, body := f.send("us-east", keyUS2, goodBody(f, 1)); code != http.StatusOK {
		t.Fatalf("batch signed with the region's second key: %d %q", code, body)
	}
}

func TestIngestHeartbeatBatch(t *testing.T) {
	f := newFixture(t)
	if code, body := f.sendBatch(f.batch("eu-west", 1)); code != http.StatusOK || body != "ok" {
		t.Fatalf("empty batch: %d %q", code, body)
	}
	if s := f.ev.Snapshot(); !s.Regions[1].LastSeen.Equal(t0) {
		t.Errorf("heartbeat not recorded: %+v", s.Regions[1])
	}
}

func TestIngestReplay(t *testing.T) {
	f := newFixture(t)
	first := goodBody(f, 100)
	if code, body := f.send("us-east", keyUS, first); code != 200 || body != "ok" {
		t.Fatalf("first: %d %q", code, body)
	}
	// The same body again, as an agent sends it after losing the answer
	// (re-signed) or as an attacker replays it (same signature).
	for _, signAt := range []time.Time{f.clock.Now(), f.clock.Now().Add(time.Minute)} {
		code, body := f.do(request{region: "us-east", key: keyUS, signAt: signAt, body: first})
		if code != 200 || body != "duplicate" {
			t.Fatalf("resent: %d %q, want 200 duplicate", code, body)
		}
	}
	if w, _ := f.ev.Window("web", "us-east"); len(w.Samples) != 1 {
		t.Fatalf("duplicate applied: %d samples", len(w.Samples))
	}
	if got := f.batches("us-east", "duplicate"); got != 2 {
		t.Errorf("duplicate batches = %g, want 2", got)
	}
	for seq := uint64(101); seq <= 101+recentSeqs; seq++ {
		if code, body := f.send("us-east", keyUS, goodBody(f, seq)); code != 200 {
			t.Fatalf("seq %d: %d %q", seq, code, body)
		}
	}
	before := f.snapshotJSON()
	// Older than the highest, and never accepted.
	if code, body := f.send("us-east", keyUS, mustJSON(t, f.batch("us-east", 99, result("web", "us-east", true)))); code != 401 || !strings.Contains(body, "replayed or out-of-order sequence") {
		t.Fatalf("older seq: %d %q, want 401", code, body)
	}
	// Accepted long ago: no longer among the recent, so refused.
	if code, body := f.send("us-east", keyUS, first); code != 401 {
		t.Fatalf("seq 100 after %d more: %d %q, want 401", recentSeqs+1, code, body)
	}
	// Recently accepted: duplicate.
	if code, body := f.send("us-east", keyUS, goodBody(f, 110)); code != 200 || body != "duplicate" {
		t.Fatalf("recent seq: %d %q", code, body)
	}
	if after := f.snapshotJSON(); after != before {
		t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
	}
	// Sequences are per agent: another agent of the region starts afresh.
	b := f.batch("us-east", 5, result("web", "us-east", true))
	b.Agent = "a2"
	if code, body := f.sendBatch(b); code != 200 || body != "ok" {
		t.Fatalf("second agent: %d %q", code, body)
	}
}

// A batch retried while its first attempt is still being applied must be
// applied once, and every attempt answered 200.
func TestIngestConcurrentRetries(t *testing.T) {
	f := newFixture(t, withDataDir(t.TempDir()))
	body := goodBody(f, 1)
	const n = 8
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, answer := f.send("us-east", keyUS, body)
			codes[i] = fmt.Sprint(code, " ", answer)
		})
	}
	wg.Wait()
	oks := 0
	for _, c := range codes {
		switch c {
		case "200 ok":
			oks++
		case "200 duplicate":
		default:
			t.Errorf("answer %s", c)
		}
	}
	if w, _ := f.ev.Window("web", "us-east"); oks != 1 || len(w.Samples) != 1 {
		t.Fatalf("%d applied, %d samples; want 1 and 1", oks, len(w.Samples))
	}
}

func TestIngestAgentsPerRegionBounded(t *testing.T) {
	f := newFixture(t)
	for i := range maxAgentsPerRegion {
		b := f.batch("us-east", 1)
		b.Agent = fmt.Sprintf("agent-%d", i)
		if code, body := f.sendBatch(b); code != 200 {
			t.Fatalf("agent %d: %d %q", i, code, body)
		}
	}
	extra := f.batch("us-east", 1)
	extra.Agent = "one-too-many"
	if code, body := f.sendBatch(extra); code != 401 || !strings.Contains(body, "already has 64 agents") {
		t.Fatalf("agent %d: %d %q, want 401", maxAgentsPerRegion+1, code, body)
	}
	// Once the others have been silent longer than any signature stays
	// valid, the silent longest is forgotten to make room.
	f.clock.Advance(agentForgetAfter)
	if code, body := f.sendBatch(extra); code != 200 {
		t.Fatalf("after the others went silent: %d %q", code, body)
	}
	if n := len(f.ev.Snapshot().Regions[0].Agents); n != maxAgentsPerRegion {
		t.Errorf("%d agents remembered, want %d", n, maxAgentsPerRegion)
	}
}

func TestIngestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	resp, err := f.srv.Client().Get(f.srv.URL + wire.ResultsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
}
