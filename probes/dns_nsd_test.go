//go:build linux

package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"
	"github.com/outposthq/outpost/probes/wire"
)

// TestDNSAgainstNSD runs dns checks against a real authoritative server,
// NSD, serving testdata/nsd/outpost.test.zone: the test servers of
// dnsserver_test.go are written by us and share our reading of the RFCs;
// nsd does not. It is skipped where nsd is not installed, except in CI,
// which must install it (apt-get install nsd). Linux only: it relies on
// Pdeathsig so that nsd cannot outlive a crashed test binary.
func TestDNSAgainstNSD(t *testing.T) {
	addr := startNSD(t)
	_, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		name   string
		body   string
		reason string // "" to pass
		check  func(t *testing.T, r wire.Result)
	}{
		{
			name: "www is the web tier, authoritatively",
			body: "name: www.outpost.test\nexpect: {answers: [" + webLB + "], authoritative: true, forbid: [" + apiLB + "]}",
			check: func(t *testing.T, r wire.Result) {
				o := r.Observed.DNS[0]
				if o.Rcode != "NOERROR" || !o.Authoritative || o.Transport != "udp" || o.MinTTL != 300 || len(o.CNAMEs) != 0 {
					t.Errorf("observation = %+v", o)
				}
			},
		},
		{
			name:   "api's name does not serve the web tier",
			body:   "name: api.outpost.test\nexpect: {answers: [" + webLB + "], forbid: [" + apiLB + "]}",
			reason: fmt.Sprintf("A api.outpost.test @%s = [%s], want [%s]; %s is forbidden", addr, apiLB, webLB, apiLB),
		},
		{
			name: "missing name is NXDOMAIN",
			body: "name: missing.outpost.test\nexpect: {rcode: NXDOMAIN, authoritative: true}",
		},
		{
			name:   "missing name fails when an answer is expected",
			body:   "name: missing.outpost.test\nexpect: {answers: [" + webLB + "]}",
			reason: fmt.Sprintf("A missing.outpost.test @%s: rcode NXDOMAIN, want NOERROR", addr),
		},
		{
			name:   "name without records of the type",
			body:   "name: api.outpost.test\ntype: AAAA",
			reason: fmt.Sprintf("AAAA api.outpost.test @%s = [], want at least one AAAA record", addr),
		},
		{
			name: "cname chain",
			body: "name: Shop.Outpost.Test.\nexpect: {answers: [" + webLB + "], cname: www.outpost.test}",
			check: func(t *testing.T, r wire.Result) {
				o := r.Observed.DNS[0]
				if got := strings.Join(o.CNAMEs, " -> "); got != "shop-edge.outpost.test -> www.outpost.test" {
					t.Errorf("CNAME chain = %q", got)
				}
				// MinTTL is of the answer records; the chain's 60s is not counted.
				if o.MinTTL != 300 {
					t.Errorf("MinTTL = %d, want www's 300", o.MinTTL)
				}
			},
		},
		{
			name:   "cname chain ends elsewhere",
			body:   "name: shop.outpost.test\nexpect: {cname: api.outpost.test}",
			reason: "CNAME chain ends at www.outpost.test, want api.outpost.test",
		},
		{
			name: "cname asked for directly",
			body: "name: shop.outpost.test\ntype: CNAME\nexpect: {answers: [SHOP-EDGE.outpost.test.]}",
		},
		{
			name: "mx normalised",
			body: "name: outpost.test\ntype: MX\nexpect: {answers: ['20 MX2.outpost.test', '10 mail.outpost.test.']}",
			check: func(t *testing.T, r wire.Result) {
				if got := strings.Join(r.Observed.DNS[0].Answers, ", "); got != "10 mail.outpost.test, 20 mx2.outpost.test" {
					t.Errorf("MX answers = %q", got)
				}
			},
		},
		{
			name:   "mx preference differs",
			body:   "name: outpost.test\ntype: MX\nexpect: {contains: ['20 mail.outpost.test']}",
			reason: "want it to include [20 mail.outpost.test]",
		},
		{
			name: "txt strings joined",
			body: "name: outpost.test\ntype: TXT\nexpect: {answers: ['v=spf1 include:_spf.outpost.test ~all']}",
		},
		{
			name: "txt with escaped quotes",
			body: `name: quoted.outpost.test` + "\ntype: TXT\nexpect: {answers: ['say \"hi\"; done']}",
		},
		{
			name: "dkim key longer than one string",
			body: "name: sel._domainkey.outpost.test\ntype: TXT\nexpect: {answers: ['v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA']}",
		},
		{
			name: "txt in utf-8",
			body: "name: utf8.outpost.test\ntype: TXT\nexpect: {answers: [café]}",
		},
		{
			name: "txt too big for udp comes over tcp",
			body: "name: big.outpost.test\ntype: TXT\nexpect: {contains: [30-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]}",
			check: func(t *testing.T, r wire.Result) {
				if o := r.Observed.DNS[0]; o.Transport != "tcp" || len(o.Answers) != 30 {
					t.Errorf("transport %q with %d answers, want tcp with 30", o.Transport, len(o.Answers))
				}
			},
		},
		{
			name: "tcp transport",
			body: "name: www.outpost.test\ntransport: tcp\nexpect: {answers: [" + webLB + "]}",
			check: func(t *testing.T, r wire.Result) {
				if o := r.Observed.DNS[0]; o.Transport != "tcp" {
					t.Errorf("transport = %q, want tcp", o.Transport)
				}
			},
		},
		{
			name: "aaaa canonical",
			body: "name: v6.outpost.test\ntype: AAAA\nexpect: {answers: ['2001:DB8::1']}",
		},
		{
			name: "srv",
			body: "name: _sip._tcp.outpost.test\ntype: SRV\nexpect: {answers: ['10 60 5060 sip.outpost.test']}",
		},
		{
			name: "caa",
			body: "name: outpost.test\ntype: CAA\nexpect: {answers: ['0 issue \"letsencrypt.org\"']}",
		},
		{
			name: "ns",
			body: "name: outpost.test\ntype: NS\nexpect: {answers: [ns1.outpost.test]}",
		},
		{
			name: "soa names only",
			body: "name: outpost.test\ntype: SOA\nexpect: {answers: ['ns1.outpost.test. hostmaster.outpost.test.']}",
		},
		{
			// nsd answers out-of-zone questions with REFUSED.
			name:   "name outside the zone",
			body:   "name: www.example.test",
			reason: fmt.Sprintf("A www.example.test @%s: rcode REFUSED, want NOERROR", addr),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dnsCheck(t, fmt.Sprintf("resolvers: ['%s']\n%s", addr, tc.body), Options{})
			if tc.reason == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.reason)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}

	// nsd is also the "recursive" resolver the zone's NS set is found
	// through: its NS answer carries ns1.outpost.test's glue, 127.0.0.1,
	// which is nsd again, on authoritative_port.
	t.Run("authoritative walk", func(t *testing.T) {
		body := fmt.Sprintf("name: www.outpost.test\nresolvers: ['%s', authoritative]\nauthoritative_port: %s\nexpect: {answers: [%s], authoritative: true, forbid: [%s]}", addr, port, webLB, apiLB)
		r := dnsCheck(t, body, Options{})
		wantOK(t, r)
		if n := len(r.Observed.DNS); n != 2 {
			t.Fatalf("%d observations, want nsd as resolver and as ns1: %+v", n, r.Observed.DNS)
		}
		if o := r.Observed.DNS[1]; o.Resolver != "authoritative" || o.NS != "ns1.outpost.test" || o.Server != addr || !o.Authoritative {
			t.Errorf("name server observation = %+v", o)
		}
	})
}

// nsdPath finds the nsd binary. Where it is missing the test is skipped,
// but not in CI: a skipped end-to-end test there would hide that nothing
// was checked against a real server.
func nsdPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nsd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nsd"); serr == nil {
			return "/usr/sbin/nsd"
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("nsd not found (%v): CI must install nsd (apt-get install nsd)", err)
		}
		t.Skipf("nsd not found (%v); install it (apt-get install nsd) to run the DNS test against a real server", err)
	}
	return path
}

// nsdConfig is what testdata/nsd/nsd.conf.tmpl is filled with.
type nsdConfig struct {
	Dir  string
	Port int
}

// startNSD runs nsd in the foreground on 127.0.0.1 and returns its
// "ip:port" once it answers for outpost.test. It is stopped, with every
// process it forked, when the test ends.
func startNSD(t *testing.T) string {
	t.Helper()
	bin := nsdPath(t)
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "nsd", "nsd.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	zone, err := os.ReadFile(filepath.Join("testdata", "nsd", "outpost.test.zone"))
	if err != nil {
		t.Fatal(err)
	}
	// The free port is found by binding and closing it; another process
	// may take it before nsd binds, so a bind failure is tried again.
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "outpost.test.zone"), zone, 0o644); err != nil {
			t.Fatal(err)
		}
		port := freePort(t)
		var conf bytes.Buffer
		if err := tmpl.Execute(&conf, nsdConfig{Dir: dir, Port: port}); err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, "nsd.conf")
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		checkNSDConf(t, bin, confPath)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ok, log := runNSD(t, bin, dir, confPath, addr)
		if ok {
			return addr
		}
		lastLog = log
		if !strings.Contains(log, "in use") {
			break
		}
	}
	t.Fatalf("nsd did not start:\n%s", lastLog)
	return ""
}

// checkNSDConf has nsd-checkconf, when installed next to nsd, read the
// generated configuration, so that a broken template is reported as such.
func checkNSDConf(t *testing.T, nsd, conf string) {
	t.Helper()
	bin := filepath.Join(filepath.Dir(nsd), "nsd-checkconf")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("nsd-checkconf"); err != nil {
			return
		}
	}
	if out, err := exec.Command(bin, conf).CombinedOutput(); err != nil {
		t.Fatalf("nsd-checkconf %s: %v\n%s", conf, err, out)
	}
}

// runNSD starts nsd and waits until it answers a SOA query, at most 10s.
// It reports false with nsd's log if nsd exited or never answered; either
// way nsd is stopped when the test ends.
func runNSD(t *testing.T, bin, dir, conf, addr string) (bool, string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "nsd.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	// nsd forks a main and a server process, which shut down when the
	// process started here dies. Its own group lets the cleanup find and
	// kill them should they not; Pdeathsig kills nsd should the test
	// binary die without running its cleanups (a -timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// SIGTERM is nsd's orderly shutdown, which stops its children; os.Kill
	// follows if it takes longer than WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nsd: %v", err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				t.Errorf("nsd (pid %d) did not exit", pgid)
			}
		}
		stopGroup(t, pgid)
	})

	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("outpost.test.", dns.TypeSOA)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, _, err := c.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			return true, ""
		}
		select {
		case err := <-exited:
			stopped = true
			return false, fmt.Sprintf("nsd exited (%v) before answering\n%s", err, nsdLog(dir))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false, fmt.Sprintf("nsd did not answer SOA outpost.test. on %s within 10s\n%s", addr, nsdLog(dir))
		}
	}
}

// stopGroup kills whatever is left of nsd's process group and waits until
// it is gone, so that no test leaves nsd running.
func stopGroup(t *testing.T, pgid int) {
	t.Helper()
	if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
	t.Errorf("processes of nsd's group %d are still running", pgid)
}

// nsdLog returns what nsd wrote to its log file and to stdout/stderr.
func nsdLog(dir string) string {
	var b strings.Builder
	for _, name := range []string{"nsd.log", "nsd.out"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintf(&b, "--- %s: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "--- %s:\n%s", name, data)
	}
	return b.String()
}

// freePort returns a port of 127.0.0.1 free for both UDP and TCP when it
// was checked.
func freePort(t *testing.T) int {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return 0
}
