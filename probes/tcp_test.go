package probes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// startNetServer serves handle on every connection to a listener on
// 127.0.0.1:0 (tls.Listen or net.Listen, already listening when given) and
// returns its address. Cleanup closes the listener and open connections and
// waits for every handler, so that leak checks see a quiet process.
func startNetServer(t *testing.T, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// listenTCP listens on loopback; Listen returning means the port accepts.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln := listenTCP(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hostsResolver resolves names from a fixed table, so that tests can probe
// host names while every packet stays on 127.0.0.1.
type hostsResolver map[string][]netip.Addr

func (h hostsResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := h[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loopbackHosts = hostsResolver{"outpost.test": {netip.MustParseAddr("127.0.0.1")}}

// loadNetCheck loads one check through checks.LoadBytes, so that defaults
// and validation apply exactly as they do for users.
func loadNetCheck(t *testing.T, yaml string) *checks.Check {
	t.Helper()
	cfg, err := checks.LoadBytes("test.yaml", []byte("version: 1\nchecks:\n"+yaml),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("load:\n%s\nerror: %v", yaml, err)
	}
	return cfg.Checks[0]
}

func runNetProbe(t *testing.T, ctx context.Context, yaml string, opts Options) wire.Result {
	t.Helper()
	p, err := New(loadNetCheck(t, yaml), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p.Probe(ctx)
}

// Handlers for the TCP test servers.
var (
	// redisLike answers "PING\r\n" with "+PONG\r\n" and anything else with
	// an error, so a test proves Send went out byte for byte.
	redisLike = func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		if line == "PING\r\n" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown\r\n")
		}
		io.Copy(io.Discard, c)
	}
	// echoFirstRead answers with what one read received, quoted, so a
	// test sees the exact bytes of Send, line ending included.
	echoFirstRead = func(c net.Conn) {
		buf := make([]byte, 256)
		n, _ := c.Read(buf)
		fmt.Fprintf(c, "+GOT %q\r\n", buf[:n])
		io.Copy(io.Discard, c)
	}
	silent   = func(c net.Conn) { io.Copy(io.Discard, c) }
	hangUp   = func(net.Conn) {}
	greeting = func(text string) func(net.Conn) {
		return func(c net.Conn) { io.WriteString(c, text); io.Copy(io.Discard, c) }
	}
)

func TestTCPProbe(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after the servers stop

	redis := startNetServer(t, listenTCP(t), redisLike)
	echo := startNetServer(t, listenTCP(t), echoFirstRead)
	quiet := startNetServer(t, listenTCP(t), silent)
	closing := startNetServer(t, listenTCP(t), hangUp)
	ssh := startNetServer(t, listenTCP(t), greeting("SSH-2.0-OpenSSH_9.6\r\n"))
	leaky := startNetServer(t, listenTCP(t), greeting("+OK token=s3cret\r\n"))
	flood := startNetServer(t, listenTCP(t), greeting(strings.Repeat("a", 70<<10)))
	refused := closedAddr(t)
	_, redisPort, _ := net.SplitHostPort(redis)

	tests := []struct {
		name       string
		timeout    string
		spec       string // the tcp: block, as a YAML flow mapping
		redact     func(string) string
		wantOK     bool
		wantReason string // exact
		wantLine   string
	}{
		{name: "connect", spec: "{address: " + redis + "}", wantOK: true,
			wantReason: "connected to " + redis},
		{name: "connection refused", spec: "{address: " + refused + "}",
			wantReason: "connect " + refused + ": connection refused"},
		{name: "send and line matches", spec: `{address: ` + redis + `, send: "PING\r\n", expect: {line: '^\+PONG$'}}`, wantOK: true,
			wantReason: "connected to " + redis + ", line matched", wantLine: "+PONG"},
		{name: "send is written verbatim", spec: `{address: ` + echo + `, send: "AUTH x", expect: {line: .}}`, wantOK: true,
			wantReason: "connected to " + echo + ", line matched", wantLine: `+GOT "AUTH x"`},
		{name: "line does not match", spec: `{address: ` + redis + `, send: "HELLO\r\n", expect: {line: '^\+PONG'}}`,
			wantReason: `line "-ERR unknown" does not match ^\+PONG`, wantLine: "-ERR unknown"},
		{name: "banner without send", spec: `{address: ` + ssh + `, expect: {line: '^SSH-2\.0-'}}`, wantOK: true,
			wantReason: "connected to " + ssh + ", line matched", wantLine: "SSH-2.0-OpenSSH_9.6"},
		{name: "server never writes", timeout: "200ms", spec: `{address: ` + quiet + `, send: "PING\r\n", expect: {line: PONG}}`,
			wantReason: "timed out after 200ms waiting for a line"},
		{name: "server hangs up", spec: `{address: ` + closing + `, expect: {line: PONG}}`,
			wantReason: "connection closed before a line was received"},
		{name: "no newline within 64 KiB", spec: `{address: ` + flood + `, expect: {line: a}}`,
			wantReason: "no line ending within the first 64 KiB the server sent"},
		{name: "address outside expected prefixes", spec: `{address: ` + redis + `, expect: {addresses: [10.0.0.0/8, 192.0.2.1/32]}}`,
			wantReason: "connected to 127.0.0.1, want an address in [10.0.0.0/8 192.0.2.1/32]"},
		{name: "slower than max_latency", spec: `{address: ` + redis + `, expect: {max_latency: 1ns}}`,
			wantReason: "want at most 1ns"},
		{name: "host name resolved", spec: "{address: outpost.test:" + redisPort + "}", wantOK: true,
			wantReason: "connected to " + redis},
		{name: "host name not found", spec: "{address: nowhere.test:" + redisPort + "}",
			wantReason: "resolve nowhere.test: no such host"},
		{name: "secret in line is redacted", spec: `{address: ` + leaky + `, expect: {line: '^-'}}`,
			redact:     func(s string) string { return strings.ReplaceAll(s, "s3cret", "<redacted>") },
			wantReason: `line "+OK token=<redacted>" does not match ^-`, wantLine: "+OK token=<redacted>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == "" {
				timeout = "5s"
			}
			yaml := fmt.Sprintf("  - id: tcp-test\n    timeout: %s\n    tcp: %s\n", timeout, tc.spec)
			r := runNetProbe(t, context.Background(), yaml, Options{Region: "lab", Resolver: loopbackHosts, Redact: tc.redact})

			if r.OK != tc.wantOK {
				t.Errorf("OK = %v, want %v (reason %q)", r.OK, tc.wantOK, r.Reason)
			}
			if strings.HasPrefix(tc.wantReason, "want at most") {
				if !strings.HasSuffix(r.Reason, tc.wantReason) {
					t.Errorf("reason = %q, want it to end with %q", r.Reason, tc.wantReason)
				}
			} else if r.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", r.Reason, tc.wantReason)
			}
			if r.Observed.Line != tc.wantLine {
				t.Errorf("Observed.Line = %q, want %q", r.Observed.Line, tc.wantLine)
			}
			if r.Check != "tcp-test" || r.Type != "tcp" || r.Region != "lab" || r.V != wire.WireVersion {
				t.Errorf("result header = %+v", r)
			}
			if tc.name == "connection refused" || strings.HasPrefix(tc.name, "host name not") {
				return
			}
			if r.Observed.ConnectedAddr == "" || !slices.Equal(r.Observed.ResolvedIPs, []string{"127.0.0.1"}) {
				t.Errorf("Observed = %+v, want the connected address and resolved IPs", r.Observed)
			}
			if r.Phases.Connect <= 0 {
				t.Errorf("Phases.Connect = %v, want it timed", r.Phases.Connect)
			}
		})
	}
}

// TestTCPProbeCanceled shows that cancelling the caller's context ends a
// probe blocked on a silent server, instead of waiting out its hour-long
// timeout.
func TestTCPProbeCanceled(t *testing.T) {
	received := make(chan struct{})
	addr := startNetServer(t, listenTCP(t), func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			close(received)
		}
		io.Copy(io.Discard, c)
	})
	yaml := "  - id: cancel\n    timeout: 1h\n    interval: 2h\n    tcp: {address: " + addr + `, send: "PING\n", expect: {line: PONG}}` + "\n"
	p, err := New(loadNetCheck(t, yaml), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan wire.Result, 1)
	go func() { done <- p.Probe(ctx) }()
	<-received // the probe has sent and is waiting for the reply
	cancel()
	select {
	case r := <-done:
		if r.OK || r.Reason != "canceled while waiting for a line" {
			t.Fatalf("got OK=%v reason %q, want a cancellation", r.OK, r.Reason)
		}
	case <-time.After(30 * time.Second): // a liveness bound, not a measurement
		t.Fatal("probe still blocked 30s after its context was canceled")
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name, sent string
		want       string
		wantErr    error
	}{
		{name: "crlf", sent: "+PONG\r\nmore\r\n", want: "+PONG"},
		{name: "lf", sent: "220 ready\n", want: "220 ready"},
		{name: "closed without newline", sent: "bye", want: "bye"},
		{name: "nothing", sent: "", wantErr: io.EOF},
		{name: "exactly the cap", sent: strings.Repeat("x", 15) + "\n", want: strings.Repeat("x", 15)},
		{name: "over the cap", sent: strings.Repeat("x", 16) + "\n", wantErr: errLineTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			t.Cleanup(func() { client.Close() })
			go func() { io.WriteString(server, tc.sent); server.Close() }()
			got, err := readLine(client, 16)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("readLine = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
