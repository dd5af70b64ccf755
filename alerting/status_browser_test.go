//go:build unix

package alerting

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// chromiumWidth is the viewport of the browser test: a large phone.
const (
	chromiumWidth   = 412
	chromiumHeight  = 900
	chromiumTimeout = 60 * time.Second
)

// findChromium returns the path of a Chromium-compatible browser. Without
// one the browser test is skipped locally and fails on CI (CI set).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium on PATH: install it to run the status page browser test (Debian/Ubuntu: apt-get install -y chromium fonts-dejavu-core)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI must run this test")
	}
	t.Skip(msg)
	return ""
}

// runChromium runs headless chromium with args after the common flags,
// in its own process group, and returns its standard output. Chromium's
// helper processes are killed with it when the test ends or times out.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	t.Cleanup(cancel)
	common := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
		"--no-first-run", "--no-default-browser-check", "--no-pings", "--no-proxy-server",
		"--disable-quic", "--hide-scrollbars", "--mute-audio", "--force-device-scale-factor=1",
		// No name is resolved: even with the flags above Chromium looks up
		// Google update and account hosts at start; the page is on an IP.
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(common, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	kill := func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group we started
		}
	}
	cmd.Cancel = func() error { kill(); return nil }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	kill() // helpers that outlived the browser
	if ctx.Err() != nil {
		t.Fatalf("chromium %s: no answer within %s; stderr:\n%s", strings.Join(args, " "), chromiumTimeout, stderr.String())
	}
	if err != nil {
		t.Fatalf("chromium %s: %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestStatusPageInChromium renders the status page in a real headless
// browser on a phone-sized window: the rendered text must show every check
// with its state and every region with its liveness, and the screenshot
// must be a PNG of the requested width. STATUS_PAGE_SCREENSHOT names a
// file to keep a copy of the screenshot in.
func TestStatusPageInChromium(t *testing.T) {
	bin := findChromium(t)
	f := statusScenario(t)
	srv := httptest.NewServer(f.ev.StatusPage()) // on 127.0.0.1
	t.Cleanup(srv.Close)
	url := srv.URL + "/status"

	t.Run("rendered text", func(t *testing.T) {
		dom := runChromium(t, bin, "--dump-dom", url)
		doc, err := html.Parse(bytes.NewReader(dom))
		if err != nil {
			t.Fatalf("parsing the dumped DOM: %v", err)
		}
		main := findFirst(doc, func(n *html.Node) bool { return n.Data == "main" })
		if main == nil {
			t.Fatalf("the dumped DOM has no <main>; chromium printed:\n%s", dom)
		}
		for id, want := range statusScenarioChecks {
			if got := checkState(main, id); got != want {
				t.Errorf("check %s renders as %q, want %q", id, got, want)
			}
		}
		got := regionLiveness(main)
		for region, want := range statusScenarioRegions {
			if got[region] != want {
				t.Errorf("region %s renders as %q, want %q (all: %v)", region, got[region], want, got)
			}
		}
		if banner := textOf(findFirst(main, hasClass("banner"))); !strings.Contains(banner, "2 checks DOWN") {
			t.Errorf("banner renders as %q", banner)
		}
		if findFirst(doc, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "script" }) != nil {
			t.Error("the rendered DOM has a script")
		}
	})
	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(t.TempDir(), "status.png")
		runChromium(t, bin, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", chromiumWidth, chromiumHeight), url)
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if w := img.Bounds().Dx(); w != chromiumWidth {
			t.Errorf("screenshot is %d pixels wide, want %d", w, chromiumWidth)
		}
		if keep := os.Getenv("STATUS_PAGE_SCREENSHOT"); keep != "" {
			if err := os.WriteFile(keep, b, 0o644); err != nil {
				t.Errorf("keeping the screenshot: %v", err)
			}
		}
	})
}
