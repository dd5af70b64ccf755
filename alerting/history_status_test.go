package alerting

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/outposthq/outpost/alerting/status"
)

// historyPage serves the status page and /status.json of an evaluator
// with two days of history (feedTwoDays).
func historyPage(t *testing.T) (*Evaluator, string) {
	t.Helper()
	ev, _ := feedTwoDays(t, t.TempDir(), time.Date(2030, 3, 4, 0, 0, 0, 0, time.UTC))
	t.Cleanup(func() { ev.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /status", ev.StatusPage())
	mux.Handle("GET /status.json", ev.StatusJSON())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return ev, srv.URL
}

func getBody(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}

// dayBars returns the class and title of each day bar of the check
// section with id.
func dayBars(t *testing.T, doc *html.Node, id string) (classes, titles []string) {
	t.Helper()
	sec := findFirst(doc, func(n *html.Node) bool { return attr(n, "id") == "check-"+id })
	if sec == nil {
		t.Fatalf("no section for %s", id)
	}
	bars := findFirst(sec, hasClass("bars"))
	if bars == nil {
		t.Fatalf("no bars for %s", id)
	}
	for c := bars.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == "i" {
			classes = append(classes, attr(c, "class"))
			titles = append(titles, attr(c, "title"))
		}
	}
	return classes, titles
}

// The status page shows 90 days a check, coloured by the worst verdict
// with the day's figures as title, the uptime line, the check's group,
// and on the check's own page its incident history with the timeline; a
// private check shows the same bars and times but no summary.
func TestStatusPageHistory(t *testing.T) {
	_, base := historyPage(t)
	doc, err := html.Parse(bytes.NewReader(getBody(t, base+"/status")))
	if err != nil {
		t.Fatal(err)
	}
	classes, titles := dayBars(t, doc, "web")
	if len(classes) != 90 {
		t.Fatalf("%d bars, want 90", len(classes))
	}
	// Today, the day of the outage (the clock is at the end of the
	// second day), is the last bar, the first day the one before it.
	if classes[87] != "nd" || classes[88] != "ok" || classes[89] != "down" || classes[0] != "nd" {
		t.Errorf("the last bars are %v", classes[86:])
	}
	if want := "2030-03-05: 95.8% up, down 1h0m0s, 864 probes, 36 failed"; titles[89] != want {
		t.Errorf("the outage day's title is %q, want %q", titles[89], want)
	}
	if h := textOf(findFirst(doc, hasClass("group"))); h != "storefront" {
		t.Errorf("group heading %q, want storefront", h)
	}
	if up := textOf(findFirst(doc, hasClass("uptime"))); !strings.HasPrefix(up, "Uptime 24 h 95.8% · 7 d 97.9% · 30 d 97.9% · 90 d 97.9%") {
		t.Errorf("uptime line %q", up)
	}
	if findFirst(doc, func(n *html.Node) bool { return n.Data == "h3" && textOf(n) == "Incident history" }) != nil {
		t.Error("the list of checks shows incident histories")
	}

	one, err := html.Parse(bytes.NewReader(getBody(t, base+"/status?check=web")))
	if err != nil {
		t.Fatal(err)
	}
	past := findFirst(one, hasClass("past"))
	if past == nil {
		t.Fatal("no incident history on the check's page")
	}
	text := textOf(past)
	for _, want := range []string{"down", "10:00:00", "lasted 1h0m0s", "eu-west, us-east", "trigger (critical)", "resolve (critical)", "status 503"} {
		if !strings.Contains(text, want) {
			t.Errorf("incident history %q lacks %q", text, want)
		}
	}
	secret, err := html.Parse(bytes.NewReader(getBody(t, base+"/status?check=secret")))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := dayBars(t, secret, "secret"); c[89] != "down" {
		t.Errorf("the private check's bars %v", c[86:])
	}
	if p := textOf(findFirst(secret, hasClass("past"))); !strings.Contains(p, "lasted 1h0m0s") || strings.Contains(p, "internal") || strings.Contains(p, "503") {
		t.Errorf("the private check's incident history shows %q", p)
	}
}

// /status.json?check=ID carries the 90 days and the incident history;
// the whole document carries every check's uptime only.
func TestStatusJSONHistory(t *testing.T) {
	_, base := historyPage(t)
	var one status.Status
	if err := json.Unmarshal(getBody(t, base+"/status.json?check=web"), &one); err != nil {
		t.Fatal(err)
	}
	cs := one.Checks[0]
	if len(cs.Days) != 90 || cs.Days[89].Down != 3600 || cs.Days[89].Worst != "DOWN" || cs.Days[89].Probes != 864 {
		t.Fatalf("days: %d, the outage day %+v", len(cs.Days), cs.Days[len(cs.Days)-1])
	}
	if len(cs.History) != 1 || len(cs.History[0].Timeline) != 2 || cs.Uptime == nil || cs.Uptime.Day == nil {
		t.Fatalf("history %+v uptime %+v", cs.History, cs.Uptime)
	}
	var all status.Status
	if err := json.Unmarshal(getBody(t, base+"/status.json"), &all); err != nil {
		t.Fatal(err)
	}
	for _, c := range all.Checks {
		if c.Uptime == nil || len(c.Days) != 0 || len(c.History) != 0 {
			t.Errorf("%s in the whole document: uptime %v, %d days, %d incidents", c.ID, c.Uptime, len(c.Days), len(c.History))
		}
	}
	var secret status.Status
	if err := json.Unmarshal(getBody(t, base+"/status.json?check=secret"), &secret); err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(secret.Checks[0].History); bytes.Contains(b, []byte("internal")) || bytes.Contains(b, []byte("503")) {
		t.Errorf("the private check's history shows its evidence: %s", b)
	}
}

// The check's page with its history renders in a real headless browser
// on a phone-sized window: 90 bars, the incident timeline, no script.
func TestStatusHistoryInChromium(t *testing.T) {
	bin := findChromium(t)
	_, base := historyPage(t)
	url := base + "/status?check=web"
	dom := runChromium(t, bin, "--dump-dom", url)
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		t.Fatal(err)
	}
	if classes, _ := dayBars(t, doc, "web"); len(classes) != 90 || classes[89] != "down" {
		t.Errorf("rendered bars %d, outage day %q", len(classes), classes[89])
	}
	if tl := findFirst(doc, func(n *html.Node) bool { return n.Data == "ol" && attr(n, "class") == "timeline" }); tl == nil || strings.Count(textOf(tl), "(critical)") != 2 {
		t.Errorf("rendered timeline %q", textOf(tl))
	}
	shot := filepath.Join(t.TempDir(), "history.png")
	runChromium(t, bin, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", chromiumWidth, chromiumHeight), url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != chromiumWidth {
		t.Fatalf("screenshot: %v", err)
	}
	if keep := os.Getenv("STATUS_HISTORY_SCREENSHOT"); keep != "" {
		os.WriteFile(keep, b, 0o644)
	}
}

// The status page and /status.json are gzipped for a client that accepts
// it: 90 bars a check are mostly the same few strings.
func TestStatusAnswersAreGzipped(t *testing.T) {
	_, base := historyPage(t)
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, path := range []string{"/status", "/status?check=web", "/status.json", "/status.json?check=web"} {
		get := func(enc string) (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			resp, err := raw.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}
		plainResp, plain := get("")
		zipped, gz := get("br, gzip;q=0.8")
		refused, _ := get("gzip;q=0")
		if plainResp.Header.Get("Content-Encoding") != "" || refused.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzipped for a client that did not take it", path)
		}
		if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Content-Length") != strconv.Itoa(len(gz)) {
			t.Fatalf("%s: Content-Encoding %q, Content-Length %s for %d bytes", path, zipped.Header.Get("Content-Encoding"), zipped.Header.Get("Content-Length"), len(gz))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		unzipped, _ := io.ReadAll(zr)
		if !bytes.Equal(unzipped, plain) {
			t.Errorf("%s: the gzipped answer is not the plain one", path)
		}
		t.Logf("%s: %d bytes, %d gzipped", path, len(plain), len(gz))
	}
}
