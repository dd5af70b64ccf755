package alerting

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// Hostile clients against a real evaluator on loopback: what they cost the
// evaluator before they are authenticated, and that real agents get
// through meanwhile.

// hostileConn opens a connection to f's server from local (nil: any) and
// sends the headers of a batch for us-east that look right (a fresh
// timestamp, a well-formed signature by a key of nobody) and claim
// contentLength bytes, then the first byte of the body. The test closes it
// at cleanup.
func hostileConn(t *testing.T, f *fixture, local net.Addr, contentLength int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ts, sig := wire.Sign(keyOther, f.clock.Now(), []byte("whatever"))
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: evaluator\r\nContent-Type: application/json\r\n%s: us-east\r\n%s: a1\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n{",
		wire.ResultsPath, wire.HeaderRegion, wire.HeaderAgent, wire.HeaderTimestamp, ts, wire.HeaderSignature, sig, contentLength)
	return c
}

// heapInuse is the live heap after a collection.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// clientFrom is an HTTP client whose connections come from local.
func clientFrom(local net.Addr) *http.Client {
	d := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// sendFrom posts a valid batch of us-east as agent a1 with seq from local.
func sendFrom(t *testing.T, f *fixture, c *http.Client, seq uint64) (int, string) {
	t.Helper()
	body := mustJSON(t, f.batch("us-east", seq, result("web", "us-east", true)))
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+wire.ResultsPath, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	ts, sig := wire.Sign(keyUS, f.clock.Now(), body)
	req.Header.Set(wire.HeaderRegion, "us-east")
	req.Header.Set(wire.HeaderAgent, "a1")
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode, sb.String()
}

// TestHostileSlowBodiesCostLittle: many connections claim 4 MiB bodies
// and trickle them. The evaluator holds only what arrived of each (before
// this limit it allocated the claimed length, 4 MiB apiece, before the
// signature could be checked), and a real agent's batch is accepted while
// they hang on.
func TestHostileSlowBodiesCostLittle(t *testing.T) {
	const n = 1000
	f := newFixture(t)
	// As if from n sources: this test is about the bodies.
	f.ev.guard.perSource = 10 * n
	before := heapInuse()
	for range n {
		hostileConn(t, f, nil, wire.MaxBatchBytes)
	}
	waitFor(t, "every hostile body being read", func() bool { return len(f.ev.guard.bodies) == n })
	grown := int64(heapInuse()) - int64(before)
	t.Logf("live heap grew by %.1f MB for %d slow bodies", float64(grown)/(1<<20), n)
	// Client and server sides of n connections and the first chunk of
	// each body: tens of MB. Claimed lengths would be n × 4 MiB = 4 GB.
	if limit := int64(100 << 20); grown > limit {
		t.Errorf("live heap grew by %d MB with %d slow bodies, want under %d MB", grown>>20, n, limit>>20)
	}
	if code, body := sendFrom(t, f, f.srv.Client(), 1); code != http.StatusOK || body != "ok" {
		t.Errorf("a real batch during the attack: %d %q, want 200 ok", code, body)
	}
}

// TestHostileFloodFromOneSource: one address opens a thousand slow
// batches. Past the per-source limit they are refused at once with 503
// and Retry-After, and counted; an agent on another address still gets
// its batch in.
func TestHostileFloodFromOneSource(t *testing.T) {
	const n = 1000
	f := newFixture(t)
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	if ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: other.IP}); err != nil {
		t.Skipf("no second loopback address: %v", err)
	} else {
		ln.Close()
	}
	before := heapInuse()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	for range n {
		hostileConn(t, f, local, wire.MaxBatchBytes)
	}
	refused := f.ev.metrics.refused("source_limit")
	waitFor(t, "the flood past the per-source limit refused", func() bool {
		return int(testutil.ToFloat64(refused)) == n-maxRequestsPerSource
	})
	if got := len(f.ev.guard.bodies); got != maxRequestsPerSource {
		t.Errorf("%d bodies being read from the flooding source, want %d", got, maxRequestsPerSource)
	}
	grown := int64(heapInuse()) - int64(before)
	t.Logf("live heap grew by %.1f MB for %d connections", float64(grown)/(1<<20), n)
	if limit := int64(100 << 20); grown > limit {
		t.Errorf("live heap grew by %d MB, want under %d MB", grown>>20, limit>>20)
	}

	t.Run("refused with Retry-After", func(t *testing.T) {
		resp := sendRaw(t, f, local)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get(wire.HeaderEvaluator) == "" {
			t.Errorf("another batch from the flooding address: %d, Retry-After %q, %s %q; want 503 with both",
				resp.StatusCode, resp.Header.Get("Retry-After"), wire.HeaderEvaluator, resp.Header.Get(wire.HeaderEvaluator))
		}
	})
	t.Run("other source accepted", func(t *testing.T) {
		c := clientFrom(other)
		defer c.CloseIdleConnections()
		if code, body := sendFrom(t, f, c, 1); code != http.StatusOK || body != "ok" {
			t.Errorf("a real batch from another address: %d %q, want 200 ok", code, body)
		}
	})
}

// sendRaw posts a valid batch from local and returns the answer, read.
func sendRaw(t *testing.T, f *fixture, local net.Addr) *http.Response {
	t.Helper()
	c := clientFrom(local)
	defer c.CloseIdleConnections()
	body := mustJSON(t, f.batch("us-east", 99, result("web", "us-east", true)))
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+wire.ResultsPath, strings.NewReader(string(body)))
	ts, sig := wire.Sign(keyUS, f.clock.Now(), body)
	req.Header.Set(wire.HeaderRegion, "us-east")
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestHostileSlowBodyIsCut: a body that stops arriving is cut at the
// minimum rate, answered 400 and counted; its buffer and slot are given
// back.
func TestHostileSlowBodyIsCut(t *testing.T) {
	f := newFixture(t)
	f.ev.guard.bodyTime = 100 * time.Millisecond
	c := hostileConn(t, f, nil, 1000)
	// Waits for the answer, bounded in case it never comes.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("stalled body answered %d, want 400", resp.StatusCode)
	}
	if got := testutil.ToFloat64(f.ev.metrics.refused("slow_body")); got != 1 {
		t.Errorf("outpost_http_refused_total{reason=slow_body} = %v, want 1", got)
	}
	waitFor(t, "the slot and budget given back", func() bool {
		f.ev.guard.mu.Lock()
		defer f.ev.guard.mu.Unlock()
		return len(f.ev.guard.bodies) == 0 && f.ev.guard.used == 0
	})
}

// TestHeadersCheckedBeforeBody: requests whose headers cannot pass are
// refused before a byte of their body is read or a buffer taken.
func TestHeadersCheckedBeforeBody(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	ts, sig := wire.Sign(keyUS, now, []byte("x"))
	stale, _ := wire.Sign(keyUS, now.Add(-wire.MaxClockSkew-time.Minute), []byte("x"))
	cases := []struct {
		name            string
		region, ts, sig string
	}{
		{"unknown region", "mars", ts, sig},
		{"region without keys", "ap-south", ts, sig},
		{"stale timestamp", "us-east", stale, sig},
		{"timestamp not a number", "us-east", "soon", sig},
		{"signature without prefix", "us-east", ts, strings.TrimPrefix(sig, "v1=")},
		{"signature too long", "us-east", ts, sig + "00"},
		{"signature not hex", "us-east", ts, "v1=" + strings.Repeat("zz", 32)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A body that never ends: a refusal that read it would hang.
			pr, pw := net.Pipe()
			defer pr.Close()
			defer pw.Close()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, f.srv.URL+wire.ResultsPath, pr)
			req.ContentLength = wire.MaxBatchBytes
			req.Header.Set(wire.HeaderRegion, tc.region)
			req.Header.Set(wire.HeaderTimestamp, tc.ts)
			req.Header.Set(wire.HeaderSignature, tc.sig)
			c := &http.Client{Timeout: 30 * time.Second}
			defer c.CloseIdleConnections()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("answered %d, want 401", resp.StatusCode)
			}
			f.ev.guard.mu.Lock()
			used := f.ev.guard.used
			f.ev.guard.mu.Unlock()
			if used != 0 {
				t.Errorf("%d bytes of body budget held after the refusal", used)
			}
		})
	}
}

// TestPingBruteForce: 3,000 wrong tokens from one address cost a bounded
// bucket: past the allowance they are answered 429 with Retry-After and
// counted, logged once per reason, and the right token from the same
// address is still answered 200. The allowance refills with time.
func TestPingBruteForce(t *testing.T) {
	const n = 3000
	f := pingFixture(t)
	c := f.srv.Client()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := c.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	codes := map[int]int{}
	var last *http.Response
	for i := range n {
		last = get(fmt.Sprintf("/ping/guess-%d", i))
		codes[last.StatusCode]++
	}
	if codes[http.StatusNotFound] != pingBurst || codes[http.StatusTooManyRequests] != n-pingBurst {
		t.Errorf("answers to %d wrong tokens: %v, want %d × 404 then 429", n, codes, pingBurst)
	}
	if last.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	for reason, want := range map[string]float64{"wrong_token": pingBurst, "rate_limited": n - pingBurst} {
		if got, _ := gatheredFrom(t, f.reg, "outpost_ping_refused_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("outpost_ping_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := f.ev.pings.size(); got != 1 {
		t.Errorf("%d ping buckets held for one source, want 1", got)
	}
	if got := strings.Count(f.logs.String(), "heartbeat ping refused"); got != 2 {
		t.Errorf("%d log lines for %d refusals, want one per reason:\n%s", got, n, f.logs.String())
	}
	if resp := get("/ping/" + url.PathEscape(pingToken)); resp.StatusCode != http.StatusOK {
		t.Errorf("the right token from the guessing address: %d, want 200", resp.StatusCode)
	}
	f.clock.Advance(pingRefill)
	if resp := get("/ping/guess-again"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a wrong token once the allowance refilled: %d, want 404", resp.StatusCode)
	}
}

// pingFixture is a fixture whose configuration adds a heartbeat check
// with token pingToken.
func pingFixture(t *testing.T) *fixture {
	t.Helper()
	env := map[string]string{"KEY_US": string(keyUS), "KEY_US2": string(keyUS2), "KEY_EU": string(keyEU), "PING": pingToken}
	cfg, err := checks.LoadBytes("test.yaml", []byte(testConfig+"  - id: nightly-backup\n    heartbeat: {every: 1h, token: \"${PING}\"}\n"), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	f := &fixture{t: t, cfg: cfg, clock: clocktest.New(t0), reg: prometheus.NewRegistry(), notes: &notifytest.Recorder{}, logs: &notifytest.LogBuffer{}}
	ev, err := New(cfg, Options{Clock: f.clock, Registerer: f.reg, Notifier: f.notes, Logger: slogTo(f.logs)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.ev = ev
	t.Cleanup(func() { ev.Close() })
	f.srv = httptest.NewServer(ev.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// TestPingLimiterStaysBounded: wrong tokens from more sources than it
// keeps buckets for hold it at its bound.
func TestPingLimiterStaysBounded(t *testing.T) {
	l := newPingLimiter()
	now := t0
	for i := range 3 * maxPingSources {
		l.wrong(addrN(i), now)
	}
	if got := l.size(); got > maxPingSources {
		t.Errorf("%d buckets, want at most %d", got, maxPingSources)
	}
	// A source that guessed and then went quiet is forgotten first.
	now = now.Add(pingBurst * pingRefill)
	l.wrong(netip.MustParseAddr("2001:db8::1"), now)
	if got := l.size(); got != 1 {
		t.Errorf("%d buckets after every other source went idle, want 1", got)
	}
}

// addrN is the nth address of 10.0.0.0/8.
func addrN(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// TestUnsignedConfirmPollsAreLimited: confirmation polls that fail
// authentication take from the source's allowance of wrong credentials;
// once it is spent they get 429 with Retry-After, and a signed poll from
// the same address is still served.
func TestUnsignedConfirmPollsAreLimited(t *testing.T) {
	const n = 3 * pingBurst
	f := newFixture(t)
	poll := func(key []byte) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+wire.ConfirmPath, nil)
		ts, sig := wire.Sign(key, f.clock.Now(), wire.ConfirmPayload("us-east", "a1"))
		req.Header.Set(wire.HeaderRegion, "us-east")
		req.Header.Set(wire.HeaderAgent, "a1")
		req.Header.Set(wire.HeaderTimestamp, ts)
		req.Header.Set(wire.HeaderSignature, sig)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	codes := map[int]int{}
	var last *http.Response
	for range n {
		last = poll(keyOther)
		codes[last.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != pingBurst || codes[http.StatusTooManyRequests] != n-pingBurst || last.Header.Get("Retry-After") == "" {
		t.Errorf("answers to %d unsigned polls: %v (last Retry-After %q), want %d × 401 then 429 with Retry-After", n, codes, last.Header.Get("Retry-After"), pingBurst)
	}
	for reason, want := range map[string]float64{"poll_unauthorized": pingBurst, "poll_rate_limited": n - pingBurst} {
		if got := testutil.ToFloat64(f.ev.metrics.refused(reason)); got != want {
			t.Errorf("outpost_http_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	f.ev.confirm.request("us-east", "web", 1, f.clock.Now())
	if resp := poll(keyUS); resp.StatusCode != http.StatusOK {
		t.Errorf("a signed poll from the same address: %d, want 200", resp.StatusCode)
	}
}
