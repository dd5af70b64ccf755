package alerting

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/probes/wire"
)

// statusAtScale is an evaluator with 10,000 checks × 5 regions, every one
// passing (without a verdict yet: no sweep has run) but c04242, DOWN in
// three regions, and c00007, DEGRADED in one.
func statusAtScale(tb testing.TB) *Evaluator {
	tb.Helper()
	ev, _, clk := loadedEvaluator(tb, 10000)
	clk.Advance(time.Second)
	for _, r := range []string{"r1", "r2", "r3"} {
		applyBatch(tb, ev, r, []wire.Result{benchResult("c04242", r, false, clk.Now())}, clk)
	}
	applyBatch(tb, ev, "r5", []wire.Result{benchResult("c00007", "r5", false, clk.Now())}, clk)
	return ev
}

func get(tb testing.TB, h http.Handler, target string) (int, []byte) {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.Bytes()
}

// TestStatusBoundedAtScale: at 10,000 checks × 5 regions /status.json and
// /status answer a summary and a page of checks, not OK first, a few MB at
// most; the default answer is built once a second for every reader, and
// ?check= builds that one check only.
func TestStatusBoundedAtScale(t *testing.T) {
	if testing.Short() || raceEnabled {
		// Nothing here runs concurrently that other tests do not cover
		// under -race; loading 50,000 windows with it costs a minute.
		t.Skip("loads 50,000 windows")
	}
	ev := statusAtScale(t)
	const limit = 2 << 20
	full := len(encodeStatus(ev.PublicStatus()))
	js := ev.StatusJSON()

	builds := ev.checkBuilds.Load()
	code, body := get(t, js, "/status.json")
	if code != 200 || len(body) > limit {
		t.Fatalf("default /status.json: %d, %d bytes, want 200 and under %d", code, len(body), limit)
	}
	t.Logf("default /status.json: %d bytes; the whole document would be %d bytes", len(body), full)
	var s status.Status
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Summary == nil || s.Page == nil || s.Summary.Checks != 10000 || s.Summary.States["PENDING"] != 9998 || s.Summary.States["DOWN"] != 1 || s.Summary.States["DEGRADED"] != 1 {
		t.Fatalf("summary %+v", s.Summary)
	}
	if len(s.Checks) != status.DefaultPerPage || s.Checks[0].ID != "c04242" || s.Checks[1].ID != "c00007" || len(s.Checks[0].Regions) != 5 {
		t.Fatalf("first checks %s %s, %d of them; want c04242, c00007 and a page", s.Checks[0].ID, s.Checks[1].ID, len(s.Checks))
	}
	if s.Page.Pages != 100 || s.Page.Next != "?page=2&per_page=100" || len(s.Regions) != 5 {
		t.Fatalf("page %+v, %d regions", s.Page, len(s.Regions))
	}
	if got := ev.checkBuilds.Load() - builds; got != status.DefaultPerPage {
		t.Errorf("the default answer built %d checks, want one page", got)
	}
	builds = ev.checkBuilds.Load()
	if _, again := get(t, js, "/status.json"); string(again) != string(body) || ev.checkBuilds.Load() != builds {
		t.Error("a second reader in the same second did not share the first's answer")
	}

	code, body = get(t, js, "/status.json?check=c00007")
	if got := ev.checkBuilds.Load() - builds; code != 200 || got != 1 {
		t.Fatalf("?check=: %d, built %d checks, want 200 and one", code, got)
	}
	var one status.Status
	if err := json.Unmarshal(body, &one); err != nil || len(one.Checks) != 1 || one.Checks[0].State != decide.StateDegraded || len(one.Regions) != 5 {
		t.Fatalf("?check= answered %d checks (%v)", len(one.Checks), err)
	}

	for _, tc := range []struct {
		target string
		checks int
	}{
		{"/status.json?state=DOWN", 1},
		{"/status.json?state=PENDING&page=100", 98},
		{"/status.json?per_page=100000", status.MaxPerPage},
	} {
		code, body := get(t, js, tc.target)
		var s status.Status
		if err := json.Unmarshal(body, &s); code != 200 || err != nil || len(s.Checks) != tc.checks || len(body) > 3*limit {
			t.Errorf("%s: %d, %d checks in %d bytes (%v), want %d", tc.target, code, len(s.Checks), len(body), err, tc.checks)
		}
	}
	if code, _ := get(t, js, "/status.json?page=0"); code != http.StatusBadRequest {
		t.Errorf("?page=0: %d, want 400", code)
	}

	code, page := get(t, ev.StatusPage(), "/status")
	if code != 200 || len(page) > limit {
		t.Fatalf("/status: %d, %d bytes, want 200 and under %d", code, len(page), limit)
	}
	t.Logf("default /status: %d bytes", len(page))
	html := string(page)
	if !strings.Contains(html, `id="check-c04242"`) || strings.Contains(html, `id="check-c09999"`) || !strings.Contains(html, `href="?page=2&amp;per_page=100"`) {
		t.Error("/status does not show the failing checks first with a link to the next page")
	}
}

// BenchmarkStatusJSON10k compares, in one run at 10,000 checks × 5
// regions, the whole /status.json document (the default before it was
// bounded, still the answer of a small configuration) with the default
// answer of a large one (a summary and a page), each built afresh.
func BenchmarkStatusJSON10k(b *testing.B) {
	ev := statusAtScale(b)
	b.Run("whole", func(b *testing.B) {
		var n int
		for b.Loop() {
			n = len(encodeStatus(ev.PublicStatus()))
		}
		b.ReportMetric(float64(n), "body-B")
	})
	b.Run("summary", func(b *testing.B) {
		var n int
		for b.Loop() {
			n = len(encodeStatus(status.Paged(ev, status.Query{})))
		}
		b.ReportMetric(float64(n), "body-B")
	})
}
