package probes

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// mapEnv is a LookupEnv over a fixed map, so tests never touch os.Environ.
func mapEnv(m map[string]string) checks.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// loadOne loads a config holding one check written as YAML under "checks:".
func loadOne(t testing.TB, check string, env map[string]string) (*checks.Config, *checks.Check) {
	t.Helper()
	cfg, err := checks.LoadBytes("test.yaml", []byte("checks:\n"+check), mapEnv(env))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg, cfg.Checks[0]
}

// probeOnce builds the prober for a one-check config and runs it once.
func probeOnce(t *testing.T, check string, env map[string]string, opts Options) wire.Result {
	t.Helper()
	cfg, c := loadOne(t, check, env)
	opts.Redact = cfg.Redactor()
	p, err := New(c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.Probe(context.Background())
}

func wantFail(t *testing.T, r wire.Result, reason string) {
	t.Helper()
	if r.OK {
		t.Fatalf("probe passed (%q), want failure containing %q", r.Reason, reason)
	}
	if !strings.Contains(r.Reason, reason) {
		t.Fatalf("reason = %q, want it to contain %q", r.Reason, reason)
	}
}

func wantOK(t *testing.T, r wire.Result) {
	t.Helper()
	if !r.OK {
		t.Fatalf("probe failed: %s", r.Reason)
	}
}

func TestHTTPExpectations(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the server is closed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("X-Served-By", "web-7")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"status":"ok","version":3,"items":[{"id":"a"}],"note":"Welcome home"}`)
		case "/api":
			w.Header().Set("X-Served-By", "api-3")
			fmt.Fprint(w, `{"status":"degraded"}`)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "maintenance")
		case "/html":
			fmt.Fprint(w, "<html>Error: database unavailable</html>")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name   string
		path   string
		expect string
		reason string // empty: must pass
	}{
		{"all pass", "/ok", `{status: [200], body_contains: Welcome, headers: {X-Served-By: "^web-"}, json: {"$.status": ok, "$.version": 3, "$.items[0].id": a}}`, ""},
		{"default status is 2xx", "/down", `{}`, "status 503, want 2xx"},
		{"status list", "/down", `{status: [200, 3xx]}`, "status 503, want 200, 3xx"},
		{"status range allows 503", "/down", `{status: ["500-599"]}`, ""},
		{"wrong tier header", "/api", `{headers: {X-Served-By: "^web-"}}`, `header X-Served-By = "api-3", want match ^web-`},
		{"missing header", "/html", `{headers: {X-Served-By: "^web-"}}`, "header X-Served-By missing, want match ^web-"},
		{"body contains", "/html", `{body_contains: Welcome}`, `body does not contain "Welcome"`},
		{"body not contains", "/html", `{body_not_contains: "Error:"}`, `body contains "Error:"`},
		{"body regex", "/html", `{body_regex: "^<html>OK"}`, "body does not match ^<html>OK"},
		{"json value", "/api", `{json: {"$.status": ok}}`, `$.status = "degraded", want "ok"`},
		{"json missing key", "/api", `{json: {"$.health.db": up}}`, `$.health.db: no value: no key "health"`},
		{"json on html", "/html", `{json: {"$.status": ok}}`, "body is not JSON"},
		{"every failure listed", "/api", `{status: [201], headers: {X-Served-By: "^web-"}}`, `status 200, want 201; header X-Served-By = "api-3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, fmt.Sprintf("- id: t\n  http:\n    url: %s%s\n    expect: %s\n", srv.URL, tc.path, tc.expect), nil, Options{Region: "test"})
			if tc.reason == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.reason)
			}
			if r.Observed.StatusCode == 0 || r.Observed.ConnectedAddr == "" {
				t.Errorf("observed = %+v, want status and connected address", r.Observed)
			}
			if r.Check != "t" || r.Region != "test" || r.V != wire.WireVersion || r.Type != "http" {
				t.Errorf("identity fields = %q %q %d %q", r.Check, r.Region, r.V, r.Type)
			}
		})
	}
}

func TestHTTPEvidenceHeadersAndPhases(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "api-3")
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(srv.Close)
	r := probeOnce(t, fmt.Sprintf("- id: t\n  http:\n    url: %s/\n    expect: {headers: {x-served-by: '^web-'}}\n", srv.URL), nil, Options{})
	wantFail(t, r, "want match ^web-")
	if got := r.Observed.Headers["X-Served-By"]; got != "api-3" {
		t.Errorf("observed header = %q, want api-3 as evidence", got)
	}
	if r.Phases.Connect <= 0 || r.Phases.Processing <= 0 || r.Duration <= 0 {
		t.Errorf("phases = %+v, duration %v: want connect and processing measured", r.Phases, r.Duration)
	}
	if r.Observed.BodyBytes != 5 {
		t.Errorf("body bytes = %d, want 5", r.Observed.BodyBytes)
	}
}

func TestHTTPConnectionFailures(t *testing.T) {
	// A listener closed straight away gives a port with nothing behind it.
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: 'http://%s/'}\n", addr), nil, Options{})
	wantFail(t, r, "connect "+addr+": connection refused")
}

func TestHTTPTimeoutNamesTheStage(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	r := probeOnce(t, fmt.Sprintf("- id: t\n  interval: 1s\n  timeout: 150ms\n  http: {url: '%s/slow'}\n", srv.URL), nil, Options{})
	wantFail(t, r, "timed out after 150ms waiting for the response (connected to "+srv.Listener.Addr().String()+")")
}

func TestHTTPRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", http.StatusFound) })
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "new home") })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	t.Run("followed", func(t *testing.T) {
		r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/old', expect: {body_contains: new home}}\n", srv.URL), nil, Options{})
		wantOK(t, r)
		if r.Observed.Redirects != 1 || r.Observed.StatusCode != 200 {
			t.Errorf("redirects=%d status=%d, want 1 and 200", r.Observed.Redirects, r.Observed.StatusCode)
		}
	})
	t.Run("not followed fails 2xx", func(t *testing.T) {
		r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/old', follow_redirects: false}\n", srv.URL), nil, Options{})
		wantFail(t, r, "status 302, want 2xx")
	})
	t.Run("not followed, 302 expected", func(t *testing.T) {
		r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/old', follow_redirects: false, expect: {status: 302}}\n", srv.URL), nil, Options{})
		wantOK(t, r)
	})
	t.Run("loop", func(t *testing.T) {
		r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/loop', max_redirects: 3}\n", srv.URL), nil, Options{})
		wantFail(t, r, "stopped after 3 redirects")
	})
}

func TestHTTPBodyCap(t *testing.T) {
	const size = 8 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		io.WriteString(w, "THE-END")
	}))
	t.Cleanup(srv.Close)
	r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/', max_body_bytes: 4KiB, expect: {body_contains: THE-END}}\n", srv.URL), nil, Options{})
	wantFail(t, r, `body does not contain "THE-END" (only the first 4096 bytes were read; raise max_body_bytes)`)
	if r.Observed.BodyBytes != 4096 {
		t.Errorf("body bytes = %d, want the cap of 4096", r.Observed.BodyBytes)
	}
}

// fixedResolver answers every name with the same addresses: the system
// resolver cannot be pointed at loopback names in a test.
type fixedResolver []netip.Addr

func (f fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return f, nil
}

func TestHTTPAddressesAndResolution(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	res := fixedResolver{netip.MustParseAddr("127.0.0.1")}
	url := "http://www.example.test:" + port + "/"

	r := probeOnce(t, "- id: t\n  http: {url: '"+url+"', expect: {addresses: [203.0.113.10/32]}}\n", nil, Options{Resolver: res})
	wantFail(t, r, "connected to 127.0.0.1, want an address in [203.0.113.10/32]")
	if len(r.Observed.ResolvedIPs) != 1 || r.Observed.ResolvedIPs[0] != "127.0.0.1" {
		t.Errorf("resolved = %v, want [127.0.0.1]", r.Observed.ResolvedIPs)
	}
	r = probeOnce(t, "- id: t\n  http: {url: '"+url+"', expect: {addresses: [127.0.0.0/8]}}\n", nil, Options{Resolver: res})
	wantOK(t, r)

	r = probeOnce(t, "- id: t\n  http: {url: '"+url+"', ip_protocol: ipv6}\n", nil, Options{Resolver: res})
	wantFail(t, r, "www.example.test has no IPv6 address (resolved [127.0.0.1])")
}

func TestHTTPAuthAndSecretsNeverLeak(t *testing.T) {
	const token = "tok-9f8e7d6c5b4a"
	const password = "pw-0a1b2c3d4e5f"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server reflects credentials back, as misconfigured ones do.
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		if u, p, ok := r.BasicAuth(); ok && u == "ops" && p == password {
			fmt.Fprint(w, "basic ok")
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "bad credentials %s", r.Header.Get("Authorization"))
			return
		}
		fmt.Fprint(w, "bearer ok")
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"TOKEN": token, "PASSWORD": password}

	r := probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/', bearer_token: '${TOKEN}', expect: {body_contains: bearer ok}}\n", srv.URL), env, Options{})
	wantOK(t, r)
	r = probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/', basic_auth: {username: ops, password: '${PASSWORD}'}, expect: {body_contains: basic ok}}\n", srv.URL), env, Options{})
	wantOK(t, r)

	// A failing probe whose reason would quote the reflected token.
	r = probeOnce(t, fmt.Sprintf("- id: t\n  http: {url: '%s/', bearer_token: '${TOKEN}', expect: {headers: {X-Echo: '^nothing$'}, body_contains: nope}}\n", srv.URL), env, Options{})
	if r.OK {
		t.Fatal("probe passed, want a failure")
	}
	out := fmt.Sprintf("%+v", r)
	for _, s := range []string{token, password} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q leaked into result: %s", s, out)
		}
	}
	if !strings.Contains(r.Reason, "<redacted>") {
		t.Errorf("reason = %q, want the reflected token shown as <redacted>", r.Reason)
	}
}

// uploadServer stores uploaded blobs and fails every POST whose sequence
// number falls in failEvery's pattern, like workers with a full disk.
type uploadServer struct {
	mu    sync.Mutex
	blobs map[string]string
	posts atomic.Int64
}

func (u *uploadServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/upload":
		n := u.posts.Add(1)
		if n%10 == 1 || n%10 == 4 || n%10 == 7 { // 3 of every 10
			http.Error(w, "No space left on device", http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		id := "blob-" + strconv.FormatInt(n, 10)
		u.mu.Lock()
		u.blobs[id] = string(body)
		u.mu.Unlock()
		w.Header().Set("Location", "/files/"+id)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, id)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/files/"):
		u.mu.Lock()
		b, ok := u.blobs[strings.TrimPrefix(r.URL.Path, "/files/")]
		u.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, b)
	default:
		http.NotFound(w, r)
	}
}

func TestHTTPMultiStepUploadWithIntermittentFailures(t *testing.T) {
	us := &uploadServer{blobs: map[string]string{}}
	srv := httptest.NewServer(us)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "payload.txt"), []byte("outpost-canary-payload"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`checks:
- id: upload-roundtrip
  http:
    steps:
      - name: upload
        method: POST
        url: %[1]s/upload
        body_file: payload.txt
        expect: {status: 201}
        capture:
          id: {json: $.id}
          where: {header: Location}
      - name: read back
        url: %[1]s/files/{{id}}
        expect: {body_contains: outpost-canary-payload}
      - name: by location
        url: "{{where}}"
        expect: {status: 200}
`, srv.URL)
	path := filepath.Join(dir, "upload.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := checks.Load([]string{path}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(loaded.Checks[0], Options{Region: "us-east"})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 20; i++ {
		r := p.Probe(context.Background())
		if len(r.Observed.Steps) == 0 {
			t.Fatalf("run %d: no step observations", i)
		}
		if r.OK {
			if len(r.Observed.Steps) != 3 || r.Reason != "3 steps passed" {
				t.Fatalf("run %d: steps=%+v reason=%q", i, r.Observed.Steps, r.Reason)
			}
			continue
		}
		failed++
		if r.Reason != `step "upload": status 500, want 201` {
			t.Fatalf("run %d: reason = %q", i, r.Reason)
		}
		if len(r.Observed.Steps) != 1 || r.Observed.Steps[0].StatusCode != 500 {
			t.Fatalf("run %d: a failed upload must stop the check: %+v", i, r.Observed.Steps)
		}
	}
	if failed != 6 {
		t.Fatalf("%d of 20 runs failed, want 6 (the server fails 30%% of uploads)", failed)
	}
}

// TestHTTPFreshness: a status page or feed that answers 200 but stopped
// updating fails.
func TestHTTPFreshness(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fresh.json":
			fmt.Fprintf(w, `{"updated_at": %q, "epoch": %d}`, now.Add(-5*time.Minute).Format(time.RFC3339), now.Add(-5*time.Minute).Unix())
		case "/stale.json":
			fmt.Fprintf(w, `{"updated_at": %q}`, now.Add(-47*time.Minute).Format(time.RFC3339))
		case "/page":
			w.Header().Set("Last-Modified", now.Add(-2*time.Hour).Format(http.TimeFormat))
			fmt.Fprint(w, "<html>status</html>")
		}
	}))
	t.Cleanup(srv.Close)
	opts := Options{Clock: clocktest.New(now)}
	tests := []struct {
		name, path, fresh, reason string
	}{
		{"json fresh", "/fresh.json", `{json: "$.updated_at", max_age: 15m}`, ""},
		{"json epoch seconds", "/fresh.json", `{json: "$.epoch", max_age: 15m}`, ""},
		{"json stale", "/stale.json", `{json: "$.updated_at", max_age: 15m}`, "stale: $.updated_at = 2026-11-21T11:13:00Z, 47m0s old, want at most 15m0s"},
		{"header stale", "/page", `{header: Last-Modified, max_age: 1h}`, "stale: header Last-Modified = 2026-11-21T10:00:00Z, 2h0m0s old, want at most 1h0m0s"},
		{"header missing", "/fresh.json", `{header: Last-Modified, max_age: 1h}`, "fresh: no Last-Modified header"},
		{"not a time", "/fresh.json", `{json: "$.missing", max_age: 1h}`, `fresh: $.missing: no value: no key "missing"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, fmt.Sprintf("- id: f\n  http: {url: '%s%s', expect: {fresh: %s}}\n", srv.URL, tc.path, tc.fresh), nil, opts)
			if tc.reason == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.reason)
			}
		})
	}
}
