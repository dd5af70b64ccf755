package alerting

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// statusPageConfig has a public check with a hostile reason, a healthy
// check in maintenance, and a private check; ap-south has no agent and
// goes STALE. The configured targets and the token must never show.
const statusPageConfig = `version: 1
regions: [us-east, eu-west, ap-south]
agents:
  - {region: us-east, key: "${KEY_US}"}
  - {region: eu-west, key: "${KEY_EU}"}
reporting: {heartbeat: 4s, stale_after: 26s}
checks:
  - id: web
    failure: {consecutive: 1}
    http: {url: "http://config-url-must-not-show.invalid/login?token=${PAGE_TOKEN}"}
  - id: api
    failure: {consecutive: 1}
    tcp: {address: "api-config-address.invalid:443"}
  - id: vault
    private: true
    failure: {consecutive: 1}
    tcp: {address: "vault-secret-host.invalid:8200"}
maintenance:
  - name: api-migration
    checks: [api]
    start: 2030-01-02T11:00:00Z
    end: 2030-01-02T13:00:00Z
`

const (
	pageToken     = "page-token-0123456789abcdef"
	hostileReason = `<script>alert(1)</script> status 503, want 200`
	// privateIP is in the private check's reason and observations only.
	privateIP     = "10.20.30.40"
	privateReason = "dial tcp " + privateIP + ":8200: connection refused"
	statusBatches = 6
)

// newStatusFixture is newFixture on statusPageConfig.
func newStatusFixture(t testing.TB) *fixture {
	t.Helper()
	env := map[string]string{"KEY_US": string(keyUS), "KEY_EU": string(keyEU), "PAGE_TOKEN": pageToken}
	cfg, err := checks.LoadBytes("status.yaml", []byte(statusPageConfig), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("loading status config: %v", err)
	}
	f := &fixture{t: t, cfg: cfg, clock: clocktest.New(t0), reg: prometheus.NewRegistry(), notes: &notifytest.Recorder{}, logs: &notifytest.LogBuffer{}}
	f.ev, err = New(cfg, Options{Clock: f.clock, Registerer: f.reg, Notifier: f.notes, Logger: slogTo(f.logs)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = httptest.NewServer(f.ev.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// statusScenario brings the fixture to: web DOWN in us-east and eu-west
// (with a hostile reason from us-east), api OK and in maintenance, vault
// (private) DOWN, ap-south STALE; t0+31s.
func statusScenario(t testing.TB) *fixture {
	t.Helper()
	f := newStatusFixture(t)
	for i := range statusBatches {
		f.clock.Advance(5 * time.Second)
		for _, region := range []string{"us-east", "eu-west"} {
			web := result("web", region, i < 2) // fails from the third batch on
			if region == "us-east" && !web.OK {
				web.Reason = hostileReason
			}
			web.Duration = 0.04 + 0.03*float64(i)
			api := result("api", region, true)
			api.Duration = 0.012 + 0.002*float64(i%3)
			if region == "eu-west" {
				web.Duration += 0.08
				api.Duration += 0.03
			}
			vault := result("vault", region, false)
			vault.Reason = privateReason
			vault.Duration = 0.25
			vault.Observed.ConnectedAddr = privateIP + ":8200"
			vault.Observed.ResolvedIPs = []string{privateIP}
			if code, body := f.sendBatch(f.batch(region, uint64(i+1), web, api, vault)); code != http.StatusOK {
				t.Fatalf("batch %d from %s: %d %s", i+1, region, code, body)
			}
		}
	}
	f.clock.Advance(time.Second)
	f.ev.tick(context.Background(), f.clock.Now())
	return f
}

// The check states and region liveness of statusScenario.
var (
	statusScenarioChecks  = map[string]string{"web": "DOWN", "api": "OK", "vault": "DOWN"}
	statusScenarioRegions = map[string]string{"us-east": "LIVE", "eu-west": "LIVE", "ap-south": "STALE"}
)

// getStatusPage serves one GET /status from a fresh loopback server.
func getStatusPage(t *testing.T, ev *Evaluator, method string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(ev.StatusPage())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+"/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s /status: %v", method, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestStatusPage(t *testing.T) {
	f := statusScenario(t)
	resp, body := getStatusPage(t, f.ev, http.MethodGet)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	card := func(t *testing.T, id string) *html.Node {
		t.Helper()
		n := findFirst(doc, func(n *html.Node) bool { return n.Data == "section" && attr(n, "id") == "check-"+id })
		if n == nil {
			t.Fatalf("no section for check %q", id)
		}
		return n
	}

	t.Run("security headers", func(t *testing.T) {
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'unsafe-inline'", "img-src data:"} {
			if !strings.Contains(csp, want) {
				t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "script-src") {
			t.Errorf("Content-Security-Policy %q allows scripts", csp)
		}
		for name, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"Content-Type":           "text/html; charset=utf-8",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	})
	t.Run("no script anywhere", func(t *testing.T) {
		if n := findFirst(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "script" }); n != nil {
			t.Errorf("the page has a script element: %s", render(t, n))
		}
		findAll(doc, func(n *html.Node) bool {
			for _, a := range n.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") || strings.Contains(strings.ToLower(a.Val), "javascript:") {
					t.Errorf("<%s> has script in attribute %s=%q", n.Data, a.Key, a.Val)
				}
			}
			return false
		})
	})
	t.Run("head", func(t *testing.T) {
		metas := findAll(doc, func(n *html.Node) bool { return n.Data == "meta" })
		var refresh, viewport bool
		for _, m := range metas {
			refresh = refresh || attr(m, "http-equiv") == "refresh" && attr(m, "content") == "30"
			viewport = viewport || attr(m, "name") == "viewport" && strings.Contains(attr(m, "content"), "width=device-width")
		}
		if !refresh || !viewport {
			t.Errorf("meta refresh 30: %v, viewport: %v", refresh, viewport)
		}
		if styles := findAll(doc, func(n *html.Node) bool { return n.Data == "style" }); len(styles) != 1 {
			t.Errorf("%d style elements, want 1", len(styles))
		}
		for _, tag := range []string{"link", "img", "iframe", "object", "embed", "form"} {
			if n := findFirst(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }); n != nil {
				t.Errorf("the page has a <%s>", tag)
			}
		}
	})
	t.Run("banner", func(t *testing.T) {
		b := findFirst(doc, hasClass("banner"))
		if b == nil {
			t.Fatal("no banner")
		}
		if !hasClass("down")(b) {
			t.Errorf("banner class %q, want down", attr(b, "class"))
		}
		text := textOf(b)
		for _, want := range []string{"2 checks DOWN", "region ap-south STALE", "1 OK"} {
			if !strings.Contains(text, want) {
				t.Errorf("banner %q lacks %q", text, want)
			}
		}
	})
	t.Run("checks with their states", func(t *testing.T) {
		for id, want := range statusScenarioChecks {
			c := card(t, id)
			if got := checkState(doc, id); got != want {
				t.Errorf("check %s state %q, want %q", id, got, want)
			}
			rows := regionRows(c)
			wantRows := map[string]string{"us-east": "FAIL", "eu-west": "FAIL", "ap-south": "NO DATA"}
			if id == "api" {
				wantRows["us-east"], wantRows["eu-west"] = "PASS", "PASS"
			}
			for region, result := range wantRows {
				if got := rows[region]; got != result {
					t.Errorf("check %s region %s shows %q, want %q", id, region, got, result)
				}
			}
		}
	})
	t.Run("region liveness", func(t *testing.T) {
		got := regionLiveness(doc)
		for region, state := range statusScenarioRegions {
			if got[region] != state {
				t.Errorf("region %s shows %q, want %q (all: %v)", region, got[region], state, got)
			}
		}
		// A check's row of a STALE region says so too.
		if !strings.Contains(textOf(card(t, "api")), "ap-south STALE") {
			t.Errorf("api's ap-south row does not say STALE: %q", textOf(card(t, "api")))
		}
	})
	t.Run("hostile reason is escaped text", func(t *testing.T) {
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Error("the reason is not in the page escaped")
		}
		reasons := findAll(card(t, "web"), hasClass("reason"))
		var found bool
		for _, r := range reasons {
			found = found || textOf(r) == hostileReason
		}
		if !found {
			t.Errorf("no reason cell reads %q", hostileReason)
		}
	})
	t.Run("private check shows state only", func(t *testing.T) {
		c := card(t, "vault")
		text := textOf(c)
		for _, leak := range []string{privateIP, "connection refused", "8200", "tcp", "a1"} {
			if strings.Contains(text, leak) {
				t.Errorf("private check shows %q: %q", leak, text)
			}
		}
		if d := durationText.FindString(text); d != "" {
			t.Errorf("private check shows a duration %q: %q", d, text)
		}
		if n := findFirst(c, func(n *html.Node) bool { return n.Data == "svg" }); n != nil {
			t.Error("private check has a sparkline")
		}
		if len(findAll(c, hasClass("reason"))) != 0 {
			t.Error("private check has a reason column")
		}
		if !strings.Contains(text, "private") {
			t.Errorf("private check is not marked private: %q", text)
		}
		for _, leak := range []string{privateIP, "connection refused"} {
			if strings.Contains(body, leak) {
				t.Errorf("page shows %q", leak)
			}
		}
	})
	t.Run("configuration never shown", func(t *testing.T) {
		for _, leak := range []string{"config-url-must-not-show", pageToken, "api-config-address", "vault-secret-host", string(keyUS), string(keyEU)} {
			if strings.Contains(body, leak) {
				t.Errorf("page shows %q", leak)
			}
		}
	})
	t.Run("incidents and maintenance", func(t *testing.T) {
		tl := findFirst(doc, hasClass("timeline"))
		if tl == nil {
			t.Fatal("no incident timeline")
		}
		items := findAll(tl, func(n *html.Node) bool { return n.Data == "li" })
		if len(items) != 2 {
			t.Fatalf("%d open incidents, want 2 (web and vault down)", len(items))
		}
		for _, li := range items {
			text := textOf(li)
			if !strings.Contains(text, "down") || findFirst(li, func(n *html.Node) bool { return n.Data == "time" && attr(n, "datetime") != "" }) == nil {
				t.Errorf("incident %q lacks its kind or opened-at time", text)
			}
		}
		if text := textOf(card(t, "api")); !strings.Contains(text, "In maintenance: api-migration") {
			t.Errorf("api card does not show its maintenance: %q", text)
		}
	})
	t.Run("sparkline", func(t *testing.T) {
		svg := findFirst(card(t, "web"), func(n *html.Node) bool { return n.Data == "svg" })
		if svg == nil {
			t.Fatal("web has no sparkline")
		}
		lines := findAll(svg, func(n *html.Node) bool { return n.Data == "polyline" })
		if len(lines) != 2 {
			t.Fatalf("%d lines, want one per reporting region", len(lines))
		}
		for _, l := range lines {
			if n := len(strings.Fields(attr(l, "points"))); n != statusBatches {
				t.Errorf("line %s has %d points, want %d", attr(l, "class"), n, statusBatches)
			}
		}
		fails := findAll(svg, func(n *html.Node) bool { return n.Data == "circle" && hasClass("fail")(n) })
		if want := 2 * (statusBatches - 2); len(fails) != want {
			t.Errorf("%d failure marks, want %d", len(fails), want)
		}
	})
	t.Run("generated at", func(t *testing.T) {
		want := f.clock.Now().UTC().Format(time.RFC3339)
		if findFirst(doc, func(n *html.Node) bool { return n.Data == "time" && attr(n, "datetime") == want }) == nil {
			t.Errorf("no <time datetime=%q>", want)
		}
	})
}

func TestStatusPageConfigMismatch(t *testing.T) {
	f := newStatusFixture(t)
	f.clock.Advance(time.Second)
	b := f.batch("eu-west", 1, result("api", "eu-west", true))
	b.ConfigDigest = "0ther<digest>"
	if code, body := f.sendBatch(b); code != http.StatusOK {
		t.Fatalf("batch: %d %s", code, body)
	}
	f.ev.tick(context.Background(), f.clock.Now())
	_, body := getStatusPage(t, f.ev, http.MethodGet)
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	warn := findFirst(doc, hasClass("warn"))
	if warn == nil {
		t.Fatal("no configuration mismatch warning")
	}
	if text := textOf(warn); !strings.Contains(text, "eu-west") || !strings.Contains(text, "0ther<digest>") || !strings.Contains(text, f.cfg.Digest) {
		t.Errorf("warning %q does not name the region and both digests", text)
	}
	banner := textOf(findFirst(doc, hasClass("banner")))
	for _, want := range []string{"configuration mismatch in eu-west", "3 checks UNKNOWN", "regions us-east, ap-south not heard from yet"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner %q lacks %q", banner, want)
		}
	}
	if hasClass("ok")(findFirst(doc, hasClass("banner"))) {
		t.Error("banner is green")
	}
}

func TestStatusPageMethods(t *testing.T) {
	f := newStatusFixture(t)
	tests := []struct {
		method string
		code   int
		body   bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, true},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			resp, body := getStatusPage(t, f.ev, tc.method)
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if (body != "") != tc.body {
				t.Errorf("body %q, want one: %v", body, tc.body)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("security headers missing: %v", resp.Header)
			}
		})
	}
}

func TestPublicStatusHidesPrivateEvidence(t *testing.T) {
	f := statusScenario(t)
	pub := string(mustJSON(t, f.ev.PublicStatus()))
	for _, leak := range []string{privateIP, "connection refused"} {
		if strings.Contains(pub, leak) {
			t.Errorf("PublicStatus shows %q", leak)
		}
	}
	for _, cs := range f.ev.PublicStatus().Checks {
		switch cs.ID {
		case "vault":
			if cs.State != decide.StateDown || cs.Summary != "" || cs.Type != "" || len(cs.Incidents) != 1 {
				t.Errorf("vault = %+v, want DOWN with one incident and no type or summary", cs)
			}
			for _, r := range cs.Regions {
				if r.Last != nil && (r.Last.Reason != "" || r.Last.Duration != 0 || r.Last.Agent != "" || r.Last.OK) {
					t.Errorf("vault in %s: %+v", r.Region, *r.Last)
				}
			}
		case "web":
			if !strings.Contains(cs.Summary, "status 503") {
				t.Errorf("web summary %q lost its reason", cs.Summary)
			}
		}
	}
	// Snapshot itself, for operators, is unchanged.
	if !strings.Contains(f.snapshotJSON(), privateIP) {
		t.Error("Snapshot lost the private check's reason")
	}
}

// durationText matches a duration as formatSeconds writes it.
var durationText = regexp.MustCompile(`\d m?s\b`)

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

func findFirst(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n == nil {
		return nil
	}
	for d := range n.Descendants() {
		if match(d) {
			return d
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(c string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		return n != nil && n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+c+" ")
	}
}

// textOf is the text of n with runs of white space folded.
func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	if n.Type == html.TextNode {
		b.WriteString(n.Data)
	}
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// checkState is the state the card of check id shows in its heading,
// next to the id; "" without such a card.
func checkState(doc *html.Node, id string) string {
	card := findFirst(doc, func(n *html.Node) bool { return n.Data == "section" && attr(n, "id") == "check-"+id })
	head := findFirst(card, hasClass("head"))
	if textOf(findFirst(head, hasClass("id"))) != id {
		return ""
	}
	return textOf(findFirst(head, hasClass("pill")))
}

// regionLiveness maps each region of the liveness table to its state.
func regionLiveness(doc *html.Node) map[string]string {
	got := map[string]string{}
	for _, tr := range findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && hasClass("region")(n) }) {
		cells := findAll(tr, func(n *html.Node) bool { return n.Data == "td" })
		got[textOf(cells[0])] = textOf(cells[1])
	}
	return got
}

// regionRows maps each region of a check card to its latest result.
func regionRows(card *html.Node) map[string]string {
	rows := map[string]string{}
	tbody := findFirst(card, func(n *html.Node) bool { return n.Data == "tbody" })
	for _, tr := range findAll(tbody, func(n *html.Node) bool { return n.Data == "tr" }) {
		cells := findAll(tr, func(n *html.Node) bool { return n.Data == "td" })
		region, _, _ := strings.Cut(textOf(cells[0]), " ")
		rows[region] = textOf(cells[1])
	}
	return rows
}

func render(t *testing.T, n *html.Node) string {
	t.Helper()
	var b strings.Builder
	if err := html.Render(&b, n); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
