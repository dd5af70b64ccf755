package alerting

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// maxRefusalBytes bounds an answer to a refused batch, whatever it held.
const maxRefusalBytes = 512

// A key holder's huge values are refused with an answer and a log line
// that quote at most a short prefix of them.
func TestIngestHugeValuesAreQuotedShort(t *testing.T) {
	f := newFixture(t)
	digits := strings.Repeat("7", 3_000_000)
	long := strings.Repeat("k", 1_000_000)
	good := string(goodBody(f, 1))
	tests := []struct {
		name, body, want string
	}{
		{"3,000,000-digit seq", strings.Replace(good, `"seq":1`, `"seq":`+digits, 1), "seq: got JSON number 7777"},
		{"3,000,000-digit duration", strings.Replace(good, `"duration_seconds":0.05`, `"duration_seconds":`+digits, 1), "got JSON number 7777"},
		{"long unknown field", strings.Replace(good, `{"v":1,`, `{"`+long+`":1,"v":1,`, 1), `unknown field "kkk`},
		{"long time", strings.Replace(good, `"created":"2030-01-02T12:00:00Z"`, `"created":"`+long+`"`, 1), `time "kkk`},
		{"long check name and no time", strings.Replace(good, `"check":"web"`, `"check":"`+long+`","time":"`+long+`"`, 1), `time "kkk`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.body == good {
				t.Fatal("the edit found nothing to replace")
			}
			code, answer := f.send("us-east", keyUS, []byte(tc.body))
			if code != http.StatusBadRequest || !strings.Contains(answer, tc.want) {
				t.Fatalf("answer %d %.300q, want 400 with %q", code, answer, tc.want)
			}
			if len(answer) > maxRefusalBytes {
				t.Errorf("answer of %d bytes, want at most %d: %.300q", len(answer), maxRefusalBytes, answer)
			}
			for _, c := range []string{"7", "k"} {
				if run := strings.Repeat(c, wire.MaxQuoteBytes+1); strings.Contains(answer, run) {
					t.Errorf("the answer quotes more than %d bytes of the value", wire.MaxQuoteBytes)
				}
			}
			f.clock.Advance(time.Minute) // past the log's rate limit
		})
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "result batch refused") {
		t.Fatalf("no refusal logged: %.500s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if len(line) > 2*maxRefusalBytes {
			t.Errorf("log line of %d bytes: %.300s", len(line), line)
		}
	}
	if f.batches("us-east", "bad_request") != float64(len(tests)) {
		t.Errorf("bad_request batches = %v, want %d", f.batches("us-east", "bad_request"), len(tests))
	}
}

// Result times outside [now − wire.MaxResultAge, now + wire.MaxClockSkew]
// are refused with a reason that names the result; a result replayed days
// late from a spool is history, accepted.
func TestIngestResultTimesOutOfRange(t *testing.T) {
	f := newFixture(t)
	at := func(seq uint64, tm time.Time) wire.Batch {
		r := result("web", "us-east", false)
		r.Time = tm
		return f.batch("us-east", seq, result("api", "us-east", true), r)
	}
	tests := []struct {
		name   string
		time   time.Time
		status int
		want   string
	}{
		{"1976", time.Date(1976, 1, 1, 0, 0, 0, 0, time.UTC), 400,
			"results[1].time 1976-01-01T00:00:00Z is more than 7 days before this evaluator's clock (2030-01-02T12:00:00Z)"},
		{"a year ahead", t0.AddDate(1, 0, 0), 400,
			"results[1].time 2031-01-02T12:00:00Z is more than 5m0s ahead of this evaluator's clock"},
		{"eight days late", t0.Add(-8 * 24 * time.Hour), 400, "results[1].time 2029-12-25T12:00:00Z is more than 7 days before"},
		{"replayed six days late", t0.Add(-6 * 24 * time.Hour), 200, "ok"},
		{"a little ahead", t0.Add(time.Minute), 200, "ok"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, answer := f.sendBatch(at(uint64(10+i), tc.time))
			if code != tc.status || !strings.Contains(answer, tc.want) {
				t.Fatalf("answer %d %q, want %d with %q", code, answer, tc.status, tc.want)
			}
		})
	}
	// Nothing refused became the latest result.
	w := f.ev.Snapshot()
	for _, c := range w.Checks {
		for _, r := range c.Regions {
			if r.Last != nil && (r.Last.Time.Year() != 2030) {
				t.Errorf("%s/%s: latest result from %s", c.ID, r.Region, r.Last.Time)
			}
		}
	}
}

// A key holder's overlong strings are cut on arrival: neither the
// evaluator's memory nor /status.json grows with them, whoever reads it.
func TestHostileStringsLeaveStatusBounded(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.ev.StatusJSON())
	t.Cleanup(srv.Close)
	get := func() int {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /status.json: %d %v", resp.StatusCode, err)
		}
		return int(n)
	}
	if code, answer := f.send("us-east", keyUS, goodBody(f, 1)); code != http.StatusOK {
		t.Fatalf("seed batch: %d %q", code, answer)
	}
	before := get()

	r := result("web", "us-east", false)
	r.Reason = strings.Repeat("r", 3_900_000)
	r.Observed.Headers = map[string]string{"X-Served-By": strings.Repeat("h", 50_000), strings.Repeat("N", 10_000): "v"}
	r.Observed.ConnectedAddr = strings.Repeat("a", 10_000)
	body := mustJSON(t, f.batch("us-east", 2, r))
	if len(body) > wire.MaxBatchBytes {
		t.Fatalf("body of %d bytes would not get this far", len(body))
	}
	heap0 := heapInUse() // with r and body, live until the end
	if code, answer := f.send("us-east", keyUS, body); code != http.StatusOK {
		t.Fatalf("hostile batch: %d %.300q", code, answer)
	}
	sizes := make([]int, 10)
	for i := range sizes {
		sizes[i] = get()
	}
	if grown := heapInUse() - heap0; grown > 1<<20 {
		t.Errorf("the heap grew by %d bytes after a %d-byte reason", grown, len(r.Reason))
	}
	runtime.KeepAlive(body)
	// Cut to their limits, the strings add a few KiB at most.
	for _, n := range sizes {
		if n > before+4*wire.MaxTextBytes {
			t.Fatalf("/status.json grew from %d to %d bytes", before, n)
		}
	}
	last := f.ev.Snapshot()
	for _, c := range last.Checks {
		for _, rs := range c.Regions {
			if rs.Last != nil && len(rs.Last.Reason) > wire.MaxReasonBytes {
				t.Errorf("%s/%s: a reason of %d bytes is kept", c.ID, rs.Region, len(rs.Last.Reason))
			}
		}
	}
}

// heapInUse is the live heap after a collection.
// heapInUse is the live heap after a collection: the least of three
// readings, since whatever else the test binary still runs (a server of
// an earlier test winding down) allocates in between, and what is
// retained shows in every reading.
func heapInUse() int64 {
	least := int64(math.MaxInt64)
	for range 3 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		least = min(least, int64(m.HeapAlloc))
	}
	return least
}

// A result whose observations are structurally absurd is refused,
// naming the result and the field.
func TestIngestRefusesAbsurdObservations(t *testing.T) {
	f := newFixture(t)
	r := result("web", "us-east", true)
	r.Observed.DNS = []wire.DNSObservation{{Resolver: "system", Answers: make([]string, wire.MaxListItems+1)}}
	code, answer := f.sendBatch(f.batch("us-east", 1, result("api", "us-east", true), r))
	want := "results[1].observed.dns[0].answers has 257 entries, over the limit of 256"
	if code != http.StatusBadRequest || !strings.Contains(answer, want) {
		t.Fatalf("answer %d %q, want 400 with %q", code, answer, want)
	}
}
