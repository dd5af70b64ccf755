package probes

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/outposthq/outpost/probes/wire"
	"go.uber.org/goleak"
)

// dnsCheck runs a dns check written as the body of "dns:" once.
func dnsCheck(t *testing.T, body string, opts Options) wire.Result {
	t.Helper()
	return probeOnce(t, "- id: d\n  interval: 30s\n  timeout: 8s\n  dns:\n"+indent(body, "    "), nil, opts)
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}

const (
	webLB = "203.0.113.10"
	apiLB = "198.51.100.7"
)

// TestDNSStaleFailoverPointsWebAtAPI is SCENARIOS.md row 5: a resolver still
// serves a stale failover answer that sends www to the API tier's load
// balancer. The check fails naming the resolver and the forbidden address,
// and passes once the resolver is fixed.
func TestDNSStaleFailoverPointsWebAtAPI(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	auth := newZone("example.test.", true,
		"example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300",
		"www.example.test. 300 IN A "+webLB,
		"api.example.test. 300 IN A "+apiLB)
	authAddr := startDNS(t, "127.0.0.1", "0", auth)
	stale := newZone("example.test.", false, "www.example.test. 60 IN A "+apiLB)
	staleAddr := startDNS(t, "127.0.0.1", "0", stale)

	body := fmt.Sprintf(`name: www.example.test
type: A
resolvers: ["%s", "%s"]
expect:
  answers: [%s]
  forbid: [%s]
`, staleAddr, authAddr, webLB, apiLB)
	r := dnsCheck(t, body, Options{})
	want := fmt.Sprintf("A www.example.test @%s = [%s], want [%s]; %s is forbidden", staleAddr, apiLB, webLB, apiLB)
	wantFail(t, r, want)
	wantFail(t, r, fmt.Sprintf("resolvers disagree: %s=[%s] %s=[%s]", staleAddr, apiLB, authAddr, webLB))
	if len(r.Observed.DNS) != 2 {
		t.Fatalf("observations = %+v, want one per resolver", r.Observed.DNS)
	}
	o := r.Observed.DNS[0]
	if o.Server != staleAddr || o.Rcode != "NOERROR" || len(o.Answers) != 1 || o.Answers[0] != apiLB || o.MinTTL != 60 || o.Authoritative || o.Transport != "udp" || o.RTT <= 0 {
		t.Errorf("stale observation = %+v", o)
	}
	if !r.Observed.DNS[1].Authoritative {
		t.Errorf("authoritative observation lacks AA: %+v", r.Observed.DNS[1])
	}

	stale.set("www.example.test. 60 IN A " + webLB) // the cache expires
	r = dnsCheck(t, body, Options{})
	wantOK(t, r)
}

func TestDNSExpectations(t *testing.T) {
	z := newZone("example.test.", true,
		"www.example.test. 300 IN CNAME web.cdn.test.",
		"web.cdn.test. 60 IN CNAME edge.cdn.test.",
		"edge.cdn.test. 20 IN A 192.0.2.1",
		"edge.cdn.test. 20 IN A 192.0.2.2",
		"v6.example.test. 300 IN AAAA 2001:db8:0:0::1",
		"example.test. 300 IN MX 10 Mail.Example.Test.",
		"example.test. 300 IN TXT \"v=spf1 \" \"include:_spf.example.test ~all\"",
		"_sip._tcp.example.test. 300 IN SRV 10 60 5060 sip.example.test.",
		"example.test. 300 IN CAA 0 issue \"letsencrypt.org\"",
		"example.test. 300 IN NS ns1.example.test.",
		"example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2026112101 7200 3600 1209600 300",
		"10.2.0.192.in-addr.arpa. 300 IN PTR www.example.test.")
	addr := startDNS(t, "127.0.0.1", "0", z)
	tests := []struct {
		name, body, reason string
	}{
		{"cname chain", "name: www.example.test\nexpect: {answers: [192.0.2.2, 192.0.2.1], cname: edge.cdn.test.}", ""},
		{"cname wrong end", "name: www.example.test\nexpect: {cname: other.cdn.test}", "CNAME chain ends at edge.cdn.test, want other.cdn.test"},
		{"contains", "name: www.example.test\nexpect: {contains: [192.0.2.1]}", ""},
		{"contains missing", "name: www.example.test\nexpect: {contains: [192.0.2.9]}", "want it to include [192.0.2.9]"},
		{"ttl bounds", "name: www.example.test\nexpect: {min_ttl: 60}", "TTL 20 is below min_ttl 60"},
		{"ttl max", "name: www.example.test\nexpect: {max_ttl: 10s}", "TTL 20 is above max_ttl 10"},
		{"aaaa normalised", "name: v6.example.test\ntype: AAAA\nexpect: {answers: ['2001:DB8::0:1']}", ""},
		{"mx normalised", "name: example.test\ntype: MX\nexpect: {answers: ['10 mail.example.test.']}", ""},
		{"txt joined", "name: example.test\ntype: TXT\nexpect: {answers: ['v=spf1 include:_spf.example.test ~all']}", ""},
		{"srv", "name: _sip._tcp.example.test\ntype: SRV\nexpect: {answers: ['10 60 5060 sip.example.test']}", ""},
		{"caa", "name: example.test\ntype: CAA\nexpect: {answers: ['0 issue letsencrypt.org']}", ""},
		{"soa names only", "name: example.test\ntype: SOA\nexpect: {answers: ['ns1.example.test hostmaster.example.test']}", ""},
		{"ptr from an address", "name: 192.0.2.10\ntype: PTR\nexpect: {answers: [www.example.test]}", ""},
		{"authoritative", "name: v6.example.test\ntype: AAAA\nexpect: {authoritative: true}", ""},
		{"nxdomain expected", "name: gone.example.test\nexpect: {rcode: NXDOMAIN}", ""},
		{"nxdomain unexpected", "name: gone.example.test", "rcode NXDOMAIN, want NOERROR"},
		{"no records of the type", "name: v6.example.test\ntype: A", "= [], want at least one A record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dnsCheck(t, fmt.Sprintf("resolvers: ['%s']\n%s", addr, tc.body), Options{})
			if tc.reason == "" {
				wantOK(t, r)
			} else {
				wantFail(t, r, tc.reason)
			}
		})
	}
	t.Run("chain observed", func(t *testing.T) {
		r := dnsCheck(t, fmt.Sprintf("resolvers: ['%s']\nname: www.example.test", addr), Options{})
		wantOK(t, r)
		if got := strings.Join(r.Observed.DNS[0].CNAMEs, " "); got != "web.cdn.test edge.cdn.test" {
			t.Errorf("cname chain = %q", got)
		}
	})
}

func TestDNSDisagreementAndConsistentFalse(t *testing.T) {
	a := startDNS(t, "127.0.0.1", "0", newZone("example.test.", false, "www.example.test. 60 IN A 192.0.2.1"))
	b := startDNS(t, "127.0.0.1", "0", newZone("example.test.", false, "www.example.test. 60 IN A 192.0.2.2"))
	body := fmt.Sprintf("name: www.example.test\nresolvers: ['%s', '%s']\n", a, b)
	r := dnsCheck(t, body, Options{})
	wantFail(t, r, fmt.Sprintf("resolvers disagree: %s=[192.0.2.1] %s=[192.0.2.2]", a, b))
	r = dnsCheck(t, body+"expect: {consistent: false}\n", Options{})
	wantOK(t, r)
}

func TestDNSTruncationFallsBackToTCP(t *testing.T) {
	var recs []string
	for i := 1; i <= 40; i++ {
		recs = append(recs, fmt.Sprintf("big.example.test. 60 IN A 192.0.2.%d", i))
	}
	z := newZone("example.test.", true, recs...)
	z.tcOver = 10
	addr := startDNS(t, "127.0.0.1", "0", z)
	r := dnsCheck(t, fmt.Sprintf("name: big.example.test\nresolvers: ['%s']\nexpect: {contains: [192.0.2.40]}", addr), Options{})
	wantOK(t, r)
	if o := r.Observed.DNS[0]; o.Transport != "tcp" || len(o.Answers) != 40 {
		t.Errorf("transport %q with %d answers, want tcp with 40", o.Transport, len(o.Answers))
	}
}

func TestDNSServerThatNeverAnswers(t *testing.T) {
	addr := rawUDP(t, func([]byte) []byte { return nil })
	r := probeOnce(t, fmt.Sprintf("- id: d\n  interval: 2s\n  timeout: 300ms\n  dns: {name: www.example.test, resolvers: ['%s'], retries: 1}\n", addr), nil, Options{})
	wantFail(t, r, fmt.Sprintf("A www.example.test @%s: no answer within 300ms", addr))
}

// TestDNSHostileAnswers feeds the probe answers a broken or malicious server
// could send. Each must fail with a clear reason, in bounded time, without
// a panic.
func TestDNSHostileAnswers(t *testing.T) {
	reply := func(mutate func(q, r *dns.Msg) []byte) string {
		return rawUDP(t, func(b []byte) []byte {
			q := new(dns.Msg)
			if q.Unpack(b) != nil {
				return nil
			}
			r := new(dns.Msg)
			r.SetReply(q)
			return mutate(q, r)
		})
	}
	pack := func(m *dns.Msg) []byte { b, _ := m.Pack(); return b }
	rr := func(s string) dns.RR { x, _ := dns.NewRR(s); return x }

	tests := []struct {
		name   string
		addr   string
		reason string
	}{
		{"mismatched id", reply(func(q, r *dns.Msg) []byte {
			r.Id = q.Id + 1
			r.Answer = []dns.RR{rr("www.example.test. 60 IN A 192.0.2.1")}
			return pack(r)
		}), "ignored 1 response(s) whose id did not match the query"},
		{"garbage bytes", reply(func(q, r *dns.Msg) []byte {
			b := pack(r)
			return append(b[:2], 0x81, 0x80, 0, 1, 0, 9, 0, 0, 0, 0, 0xde, 0xad) // 9 answers that are not there
		}), "malformed response"},
		{"answer for another name", reply(func(q, r *dns.Msg) []byte {
			r.Answer = []dns.RR{rr("evil.example.test. 60 IN A 192.0.2.66")}
			return pack(r)
		}), "the answer holds records for evil.example.test., not for the name asked"},
		{"question swapped", reply(func(q, r *dns.Msg) []byte {
			r.Question[0].Name = "other.example.test."
			return pack(r)
		}), "response answers other.example.test. A, not the question asked"},
		{"cname loop", reply(func(q, r *dns.Msg) []byte {
			r.Answer = []dns.RR{rr("www.example.test. 60 IN CNAME a.example.test."), rr("a.example.test. 60 IN CNAME www.example.test.")}
			return pack(r)
		}), "CNAME loop: www.example.test -> a.example.test -> www.example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Long enough that a loaded machine answers in time; the
			// cases that ignore a response wait it out.
			r := probeOnce(t, fmt.Sprintf("- id: d\n  interval: 5s\n  timeout: 2s\n  dns: {name: www.example.test, resolvers: ['%s'], retries: 0}\n", tc.addr), nil, Options{})
			wantFail(t, r, tc.reason)
		})
	}
}

func TestDNSEnormousTXTIsBounded(t *testing.T) {
	chunk := strings.Repeat("x", 250)
	var txt []string
	for i := 0; i < 200; i++ { // ~50 KB of TXT data: only fits over TCP
		txt = append(txt, `"`+chunk+`"`)
	}
	z := newZone("example.test.", true, "huge.example.test. 60 IN TXT "+strings.Join(txt, " "))
	z.tcOver = 0
	addr := startDNS(t, "127.0.0.1", "0", z)
	r := dnsCheck(t, fmt.Sprintf("name: huge.example.test\ntype: TXT\nresolvers: ['%s']\nexpect: {answers: [small]}", addr), Options{})
	if r.OK {
		t.Fatal("want failure")
	}
	if len(r.Observed.DNS[0].Answers) != 1 {
		t.Fatalf("observation = %.300v, want the one TXT answer", r.Observed.DNS[0])
	}
	if got := len(r.Observed.DNS[0].Answers[0]); got > maxAnswerText {
		t.Errorf("kept %d bytes of one answer, want at most %d", got, maxAnswerText)
	}
	if len(r.Reason) > wire.MaxReasonBytes {
		t.Errorf("reason is %d bytes, want at most %d", len(r.Reason), wire.MaxReasonBytes)
	}
}

// TestDNSAuthoritativeWalk finds the zone's name servers through a resolver
// and asks each without recursion; one of them serves stale data.
func TestDNSAuthoritativeWalk(t *testing.T) {
	good := newZone("example.test.", true, "www.example.test. 300 IN A "+webLB)
	ns1 := startDNS(t, "127.0.0.1", "0", good)
	_, port, _ := strings.Cut(ns1, ":")
	stale := newZone("example.test.", true, "www.example.test. 300 IN A "+apiLB)
	ns2 := startDNS(t, "127.0.0.2", port, stale)

	recursive := newZone("test.", false,
		"example.test. 300 IN NS ns1.example.test.",
		"example.test. 300 IN NS ns2.example.test.",
		"ns1.example.test. 300 IN A 127.0.0.1",
		"ns2.example.test. 300 IN A 127.0.0.2",
		"www.example.test. 300 IN A "+webLB)
	rec := startDNS(t, "127.0.0.1", "0", recursive)

	body := fmt.Sprintf("name: www.example.test\nresolvers: ['%s', authoritative]\nauthoritative_port: %s\nexpect: {answers: [%s], forbid: [%s]}\n", rec, port, webLB, apiLB)
	r := dnsCheck(t, body, Options{})
	wantFail(t, r, fmt.Sprintf("A www.example.test @ns2.example.test(%s) = [%s], want [%s]; %s is forbidden", ns2, apiLB, webLB, apiLB))
	if n := len(r.Observed.DNS); n != 3 {
		t.Fatalf("%d observations, want the resolver and two name servers: %+v", n, r.Observed.DNS)
	}
	for _, o := range r.Observed.DNS[1:] {
		if o.Resolver != "authoritative" || o.NS == "" || !o.Authoritative {
			t.Errorf("name server observation = %+v", o)
		}
	}
	stale.set("www.example.test. 300 IN A " + webLB)
	wantOK(t, dnsCheck(t, body, Options{}))
}

func TestDNSSystemResolverFromResolvConf(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# no servers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := dnsCheck(t, "name: www.example.test", Options{ResolvConf: conf})
	wantFail(t, r, "system resolver: no nameserver in "+conf)

	// resolv.conf cannot name a port, so the system test needs port 53 on
	// a loopback address of its own.
	z := newZone("example.test.", false, "www.example.test. 60 IN A 192.0.2.1")
	if ln, err := listenUDP53("127.0.0.3"); err != nil {
		t.Skipf("cannot bind 127.0.0.3:53 (%v); the rest of the system resolver path is covered above", err)
	} else {
		ln.Close()
	}
	startDNS(t, "127.0.0.3", "53", z)
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = dnsCheck(t, "name: www.example.test\nexpect: {answers: [192.0.2.1]}", Options{ResolvConf: conf})
	wantOK(t, r)
	if o := r.Observed.DNS[0]; o.Resolver != "system" || o.Server != "127.0.0.3:53" {
		t.Errorf("observation = %+v", o)
	}
}

func TestDNSProbeRespectsContext(t *testing.T) {
	addr := rawUDP(t, func([]byte) []byte { return nil })
	_, c := loadOne(t, fmt.Sprintf("- id: d\n  dns: {name: www.example.test, resolvers: ['%s']}\n", addr), nil)
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := p.Probe(ctx); r.OK {
		t.Fatal("a cancelled probe passed")
	}
}

// TestHTTPResolverOption resolves an HTTP check's host through a named DNS
// server and reports what it resolved and where it connected.
func TestHTTPResolverOption(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi") }))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	z := newZone("example.test.", true, "www.example.test. 60 IN A 127.0.0.1", "www.example.test. 60 IN A 127.0.0.9")
	dnsAddr := startDNS(t, "127.0.0.1", "0", z)

	cfg := fmt.Sprintf("- id: h\n  http: {url: 'http://www.example.test:%s/', resolver: '%s', expect: {addresses: [127.0.0.1/32]}}\n", port, dnsAddr)
	r := probeOnce(t, cfg, nil, Options{})
	wantOK(t, r)
	if got := strings.Join(r.Observed.ResolvedIPs, " "); got != "127.0.0.1 127.0.0.9" && got != "127.0.0.9 127.0.0.1" {
		t.Errorf("resolved = %q, want both addresses the server gave", got)
	}
	if r.Observed.ConnectedAddr != "127.0.0.1:"+port && r.Observed.ConnectedAddr != "127.0.0.9:"+port {
		t.Errorf("connected = %q", r.Observed.ConnectedAddr)
	}
	if r.Phases.Resolve <= 0 {
		t.Errorf("resolve phase = %v, want the lookup timed", r.Phases.Resolve)
	}

	z.set() // the name disappears
	r = probeOnce(t, cfg, nil, Options{})
	wantFail(t, r, "resolve www.example.test: no such host")
}
