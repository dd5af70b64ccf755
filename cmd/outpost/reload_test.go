package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRunReloadsWithoutLosingState reloads a real "outpost run" process
// (evaluator, outbox and prober in one) on POST /-/reload and on SIGHUP:
// a removed check's open incident is resolved at PagerDuty, an added one
// is probed and shown, a kept one is not paged again, and a configuration
// that does not load is refused with the running one still in force and
// outpost_config_last_reload_successful 0.
func TestRunReloadsWithoutLosingState(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a process")
	}
	pd := &pdEvents{}
	pdSrv := httptest.NewServer(pd)
	t.Cleanup(pdSrv.Close)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(up.Close)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "outpost.yaml")
	head := fmt.Sprintf(`reporting: {heartbeat: 1s, stale_after: 5s}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: %q}}
checks:
  - {id: web, interval: 1s, timeout: 500ms, http: {url: %q}}
`, pdSrv.URL, up.URL)
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(head + fmt.Sprintf("  - {id: api-port, interval: 1s, timeout: 500ms, tcp: {address: %q}}\n", deadAddr))

	cmd := exec.Command(os.Args[0], "run", "-c", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), selfRunEnv+"=1", "PD_KEY=reload0test0routing0key000000001")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var (
		mu   sync.Mutex
		logs []string
	)
	listening := make(chan string, 1)
	listenRE := regexp.MustCompile(`msg="outpost running" listen=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				listening <- m[1]
			}
			mu.Lock()
			logs = append(logs, line)
			mu.Unlock()
		}
	}()
	logged := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range logs {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}
	var base string
	select {
	case base = <-listening:
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not start")
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	reload := func() (int, string) {
		t.Helper()
		resp, err := http.Post(base+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metric := func(name string) string {
		for _, line := range strings.Split(get("/metrics"), "\n") {
			if strings.HasPrefix(line, name+" ") {
				return strings.TrimPrefix(line, name+" ")
			}
		}
		return ""
	}

	waitUntil(t, "api-port paged", 30*time.Second, func() bool { return len(pd.actions()) >= 1 })
	trigger := pd.actions()[0]
	if !strings.HasPrefix(trigger, "trigger ") {
		t.Fatalf("first event %q, want a trigger", trigger)
	}
	if got := metric("outpost_config_last_reload_successful"); got != "1" {
		t.Errorf("outpost_config_last_reload_successful at the start = %q, want 1", got)
	}

	// api-port goes, added comes, web stays.
	write(head + fmt.Sprintf("  - {id: added, interval: 1s, timeout: 500ms, tcp: {address: %q}}\n", strings.TrimPrefix(up.URL, "http://")))
	if code, body := reload(); code != http.StatusOK || strings.TrimSpace(body) != "reloaded" {
		t.Fatalf("POST /-/reload: %d %q", code, body)
	}
	waitUntil(t, "api-port's incident resolved", 30*time.Second, func() bool { return len(pd.actions()) >= 2 })
	if got := pd.actions(); len(got) != 2 || got[1] != "resolve "+strings.TrimPrefix(trigger, "trigger ") {
		t.Fatalf("events %v, want the trigger and its resolve", got)
	}
	waitUntil(t, "added probed and shown", 30*time.Second, func() bool {
		s := get("/status.json?check=added")
		return strings.Contains(s, `"added"`) && strings.Contains(s, `"OK"`)
	})
	if s := get("/status.json"); strings.Contains(s, "api-port") {
		t.Errorf("/status.json still shows the removed check: %.300s", s)
	}

	// A file that does not load: refused on SIGHUP and on POST, the
	// running configuration stays.
	write(head + "  - {id: broken, tcp: {}}\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the SIGHUP reload refused", 30*time.Second, func() bool { return metric("outpost_config_last_reload_successful") == "0" })
	if !logged("reload failed; keeping the running configuration") {
		t.Error("the refused reload was not logged")
	}
	if code, body := reload(); code != http.StatusInternalServerError || !strings.Contains(body, "broken") {
		t.Errorf("POST /-/reload of a bad file: %d %q, want 500 naming the check", code, body)
	}
	if s := get("/status.json?check=added"); !strings.Contains(s, `"added"`) {
		t.Errorf("the running configuration is gone after a refused reload: %.300s", s)
	}
	if got := pd.actions(); len(got) != 2 {
		t.Errorf("events after the refused reloads: %v", got)
	}
	if len(pd.bad) > 0 {
		t.Errorf("invalid events: %v", pd.bad)
	}
}

// Only loopback callers, or clients with a certificate the server
// verified, may reload.
func TestMayReload(t *testing.T) {
	for _, tc := range []struct {
		remote   string
		verified bool
		want     bool
	}{
		{"127.0.0.1:5000", false, true},
		{"[::1]:5000", false, true},
		{"192.0.2.7:5000", false, false},
		{"[2001:db8::1]:5000", false, false},
		{"192.0.2.7:5000", true, true},
		{"garbage", false, false},
	} {
		req := httptest.NewRequest(http.MethodPost, "/-/reload", nil)
		req.RemoteAddr = tc.remote
		if tc.verified {
			req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
		}
		if got := mayReload(req); got != tc.want {
			t.Errorf("%s verified=%v: %v, want %v", tc.remote, tc.verified, got, tc.want)
		}
	}
}
