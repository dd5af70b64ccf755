package alerting

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// regionResolver answers every name with one address: how a region's agent
// is routed through its own network path in these tests.
type regionResolver netip.Addr

func (r regionResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.Addr(r)}, nil
}

// regionConfig loads the configuration as the agent of region sees it:
// ${REGION} expands to its name, as a per-host environment would.
func regionConfig(t *testing.T, region, checksYAML string) *checks.Config {
	t.Helper()
	env := e2eEnv("REGION", region)
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
`+checksYAML), env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEndToEndLossyRegionDoesNotPage: ap-south's agent reaches the target
// through an in-process Toxiproxy that drops 30% of its connections (the
// data never arrives, the probe times out). ap-south fails often enough to
// cross its failure rule, the check is DEGRADED with a warning, and nobody
// is paged: one lossy vantage point is not an outage.
func TestEndToEndLossyRegionDoesNotPage(t *testing.T) {
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target.Listener = ln
	target.Start()
	t.Cleanup(target.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	// The lossy path: the same port on 127.0.0.2, through Toxiproxy.
	tox := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(tox, "ap-south-path", "127.0.0.2:"+port, ln.Addr().String())
	if err := proxy.Start(); err != nil {
		t.Skipf("cannot listen on 127.0.0.2:%s: %v", port, err)
	}
	t.Cleanup(proxy.Stop)
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"lossy","type":"timeout","stream":"downstream","toxicity":0.3,"attributes":{"timeout":0}}`)); err != nil {
		t.Fatal(err)
	}

	checksYAML := fmt.Sprintf(`checks:
  - id: web-home
    interval: 2s
    timeout: 500ms
    failure: {ratio: 0.2, window: 10}
    http: {url: "http://www.example.test:%s/"}
`, port)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev := startEvaluator(t, regionConfig(t, "us-east", checksYAML), clk)
	paths := map[string]string{"us-east": "127.0.0.1", "eu-west": "127.0.0.1", "ap-south": "127.0.0.2"}
	for region, ip := range paths {
		startAgentWith(t, regionConfig(t, region, checksYAML), clk, region, []string{ev.url}, t.TempDir(),
			probes.Options{Resolver: regionResolver(netip.MustParseAddr(ip))})
	}
	advanceUntil(t, clk, 250*time.Millisecond, 5*time.Minute, "a DEGRADED warning for the lossy region", func() bool {
		for _, n := range ev.pages(checks.RouteWarning) {
			if n.Kind == "check_degraded" && strings.HasPrefix(n.Details["region.ap-south"], "FAILING") {
				return true
			}
		}
		return false
	})
	degradedAt := clk.Now()
	advanceUntil(t, clk, 500*time.Millisecond, 5*time.Minute, "two more minutes of loss", func() bool { return clk.Now().Sub(degradedAt) >= 2*time.Minute })
	if p := ev.pages(checks.RouteCritical); len(p) != 0 {
		t.Fatalf("a lossy region paged: %+v", p)
	}
	for _, r := range []string{"us-east", "eu-west"} {
		if w, _ := ev.ev.Window("web-home", r); w.Failures != 0 {
			t.Errorf("%s saw %d failures through the clean path", r, w.Failures)
		}
	}
}

// TestEndToEndIntermittentUploadFailuresPage is SCENARIOS.md row 3: uploads
// fail with HTTP 500 on 3 of every 10 attempts, retries work. A rule of two
// consecutive failures never fires (the failures are never adjacent); the
// ratio rule over a window does, in every region, and pages.
func TestEndToEndIntermittentUploadFailuresPage(t *testing.T) {
	var mu sync.Mutex
	posts := map[string]int{}
	blobs := map[string]string{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodPost:
			region := r.Header.Get("X-Region")
			posts[region]++
			if n := posts[region] % 10; n == 1 || n == 4 || n == 7 { // disk full on some workers
				http.Error(w, "No space left on device", http.StatusInternalServerError)
				return
			}
			body, _ := io.ReadAll(r.Body)
			id := region + "-" + strconv.Itoa(posts[region])
			blobs[id] = string(body)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%q}`, id)
		default:
			b, ok := blobs[strings.TrimPrefix(r.URL.Path, "/files/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			io.WriteString(w, b)
		}
	}))
	t.Cleanup(target.Close)
	checksYAML := fmt.Sprintf(`checks:
  - id: upload
    interval: 2s
    timeout: 1s
    failure: {ratio: 0.3, window: 10}
    http:
      headers: {X-Region: "${REGION}"}
      steps:
        - {name: upload, method: POST, url: "%[1]s/upload", body: canary, expect: {status: 201}, capture: {id: {json: $.id}}}
        - {name: read back, url: "%[1]s/files/{{id}}", expect: {body_contains: canary}}
`, target.URL)
	clk := clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	ev := startEvaluator(t, regionConfig(t, "us-east", checksYAML), clk)
	for _, region := range []string{"us-east", "eu-west", "ap-south"} {
		startAgentWith(t, regionConfig(t, region, checksYAML), clk, region, []string{ev.url}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, 3*time.Minute, "the page", func() bool { return len(ev.pages(checks.RouteCritical)) >= 1 })
	page := ev.pages(checks.RouteCritical)[0]
	if page.Kind != "check_down" || !strings.Contains(page.Summary, "upload DOWN") {
		t.Fatalf("page = %+v", page)
	}
	if !strings.Contains(page.Summary, "probes failed (ratio 0.30") || !strings.Contains(page.Summary, `step "upload": status 500, want 201`) {
		t.Errorf("page summary should say it is the ratio rule and why: %q", page.Summary)
	}
	for _, r := range []string{"us-east", "eu-west", "ap-south"} {
		if w, _ := ev.ev.Window("upload", r); w.Consecutive > 1 {
			t.Errorf("%s had %d consecutive failures; the point is that they are never adjacent", r, w.Consecutive)
		}
	}
}
