package alerting

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

func httpCheck(rule *checks.FailureRule) *checks.Check {
	return &checks.Check{ID: "web", HTTP: &checks.HTTPSpec{}, Failure: rule}
}

func TestWindowSize(t *testing.T) {
	tests := []struct {
		name          string
		rule          *checks.FailureRule
		ring, ruleWin int
	}{
		{"consecutive below the minimum", &checks.FailureRule{Consecutive: 3}, 10, 10},
		{"consecutive above it", &checks.FailureRule{Consecutive: 50}, 50, 50},
		{"ratio window below the minimum", &checks.FailureRule{Ratio: 0.5, Window: 5}, 10, 5},
		{"ratio window", &checks.FailureRule{Ratio: 0.3, Window: 20}, 20, 20},
		{"ratio window at the cap", &checks.FailureRule{Ratio: 0.3, Window: 1000}, 1000, 1000},
		{"window over the cap", &checks.FailureRule{Ratio: 0.3, Window: 5000}, 1000, 1000},
		{"no rule", nil, 10, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWindow(httpCheck(tc.rule), "us-east")
			if len(w.ring) != tc.ring || w.ruleSize != tc.ruleWin {
				t.Fatalf("ring %d, rule window %d; want %d, %d", len(w.ring), w.ruleSize, tc.ring, tc.ruleWin)
			}
		})
	}
}

func TestWindowKeepsTheLatest(t *testing.T) {
	w := newWindow(httpCheck(&checks.FailureRule{Ratio: 0.5, Window: 4}), "us-east")
	// 25 results: passing except every fifth, and the last three.
	for i := range 25 {
		r := wire.Result{V: 1, Check: "web", Time: t0.Add(time.Duration(i) * time.Second), OK: i%5 != 0 && i < 22}
		r.Reason = strings.Repeat("x", i)
		w.add(&r, "a1", t0.Add(time.Duration(i)*time.Second), false)
	}
	v := w.view()
	if len(v.Samples) != 10 {
		t.Fatalf("%d samples, want 10", len(v.Samples))
	}
	for i, s := range v.Samples {
		if want := t0.Add(time.Duration(15+i) * time.Second); !s.Time.Equal(want) || len(s.Reason) != 15+i {
			t.Fatalf("sample %d is from %v, want %v (oldest first)", i, s.Time, want)
		}
	}
	// Over the rule's window of 4: results 21 (ok), 22, 23, 24 (failed).
	if v.Size != 4 || v.Failures != 3 || v.Passes != 1 || v.Consecutive != 3 {
		t.Fatalf("counts = size %d, %d failures, %d passes, %d consecutive; want 4, 3, 1, 3", v.Size, v.Failures, v.Passes, v.Consecutive)
	}
	if v.Last == nil || !v.Last.Time.Equal(t0.Add(24*time.Second)) {
		t.Fatalf("last = %+v", v.Last)
	}
}

func TestWindowFilling(t *testing.T) {
	w := newWindow(httpCheck(&checks.FailureRule{Consecutive: 2}), "us-east")
	if v := w.view(); len(v.Samples) != 0 || v.Last != nil || v.Failures+v.Passes+v.Consecutive != 0 {
		t.Fatalf("empty window = %+v", v)
	}
	for _, ok := range []bool{false, true, false} {
		r := result("web", "us-east", ok)
		w.add(&r, "a1", t0, false)
	}
	if v := w.view(); v.Failures != 2 || v.Passes != 1 || v.Consecutive != 1 {
		t.Fatalf("view = %+v", v)
	}
}

func TestWindowViewIsACopy(t *testing.T) {
	w := newWindow(httpCheck(nil), "us-east")
	r := result("web", "us-east", true)
	r.Observed.ResolvedIPs = []string{"203.0.113.10"}
	r.Observed.Headers = map[string]string{"X-Served-By": "web-1"}
	r.Observed.DNS = []wire.DNSObservation{{Answers: []string{"203.0.113.10"}}}
	r.Observed.TLS = &wire.TLSObservation{Version: "TLS 1.3"}
	w.add(&r, "a1", t0, false)

	v := w.view()
	v.Samples[0].OK = false
	v.Last.Observed.ResolvedIPs[0] = "changed"
	v.Last.Observed.Headers["X-Served-By"] = "changed"
	v.Last.Observed.DNS[0].Answers[0] = "changed"
	v.Last.Observed.TLS.Version = "changed"

	again := w.view()
	o := again.Last.Observed
	if !again.Samples[0].OK || o.ResolvedIPs[0] != "203.0.113.10" || o.Headers["X-Served-By"] != "web-1" || o.DNS[0].Answers[0] != "203.0.113.10" || o.TLS.Version != "TLS 1.3" {
		t.Fatalf("changing a view changed the window: %+v", again)
	}
}

// TestWindowClipsLongReasons: a sample keeps at most wire.MaxReasonBytes
// of a reason, cut between characters; the last result keeps it whole.
func TestWindowClipsLongReasons(t *testing.T) {
	w := newWindow(httpCheck(&checks.FailureRule{Consecutive: 2}), "us-east")
	long := strings.Repeat("é", wire.MaxReasonBytes) // two bytes each
	r := wire.Result{Check: "web", Region: "us-east", Time: t0, Reason: long}
	w.add(&r, "a1", t0, false)
	got := w.view()
	if s := got.Samples[0].Reason; len(s) > wire.MaxReasonBytes || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
		t.Errorf("sample reason of %d bytes, valid %v", len(s), utf8.ValidString(s))
	}
	if got.Last.Reason != long {
		t.Error("the last result lost part of its reason")
	}
}

func TestWindowAccessorUnknown(t *testing.T) {
	f := newFixture(t)
	for _, k := range [][2]string{{"nope", "us-east"}, {"web", "mars"}, {"api", "eu-west"}} {
		if _, ok := f.ev.Window(k[0], k[1]); ok {
			t.Errorf("Window(%q, %q) found a window", k[0], k[1])
		}
	}
}
