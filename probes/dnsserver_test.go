package probes

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// zone is a small in-memory DNS data set for test servers. It is safe to
// change while a server answers from it.
type zone struct {
	mu     sync.Mutex
	origin string // e.g. "example.test."
	rrs    map[string][]dns.RR
	auth   bool // set AA on answers
	rcode  int  // forced rcode, when not 0
	tcOver int  // truncate UDP answers with more than this many records (0: never)
}

func newZone(origin string, auth bool, records ...string) *zone {
	z := &zone{origin: origin, auth: auth}
	z.set(records...)
	return z
}

// set replaces the zone's records, given in zone-file syntax.
func (z *zone) set(records ...string) {
	m := map[string][]dns.RR{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		k := strings.ToLower(rr.Header().Name) + "/" + dns.TypeToString[rr.Header().Rrtype]
		m[k] = append(m[k], rr)
	}
	z.mu.Lock()
	z.rrs = m
	z.mu.Unlock()
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = z.auth
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	exists := false
	for depth := 0; depth < 8; depth++ {
		if rrs, ok := z.rrs[name+"/"+dns.TypeToString[q.Qtype]]; ok {
			resp.Answer = append(resp.Answer, rrs...)
			exists = true
			break
		}
		cn, ok := z.rrs[name+"/CNAME"]
		if !ok {
			break
		}
		exists = true
		resp.Answer = append(resp.Answer, cn...)
		name = strings.ToLower(cn[0].(*dns.CNAME).Target)
	}
	if !exists {
		for k := range z.rrs {
			if strings.HasPrefix(k, name+"/") {
				exists = true
			}
		}
	}
	if q.Qtype == dns.TypeNS {
		for _, rr := range resp.Answer {
			if ns, ok := rr.(*dns.NS); ok {
				resp.Extra = append(resp.Extra, z.rrs[strings.ToLower(ns.Ns)+"/A"]...)
			}
		}
	}
	switch {
	case z.rcode != 0:
		resp.Rcode = z.rcode
		resp.Answer = nil
	case !exists && dns.IsSubDomain(z.origin, q.Name):
		resp.Rcode = dns.RcodeNameError
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp && z.tcOver > 0 && len(resp.Answer) > z.tcOver {
		resp.Answer = nil
		resp.Truncated = true
	}
	w.WriteMsg(resp)
}

// startDNS serves h over UDP and TCP on one port of ip (a 127/8 address)
// and returns "ip:port" once both are accepting. port 0 picks a free one.
func startDNS(t *testing.T, ip string, port string, h dns.Handler) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			if port != "0" {
				t.Fatalf("listen tcp %s: %v", addr, err)
			}
			continue // the TCP side of a random UDP port was taken
		}
		mux := dns.NewServeMux()
		mux.Handle(".", h)
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: mux}, {Listener: ln, Handler: mux}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			go srv.ActivateAndServe()
			<-started
			t.Cleanup(func() { srv.Shutdown() })
		}
		return addr
	}
	t.Fatal("no free port for UDP and TCP")
	return ""
}

// rawUDP serves crafted bytes: reply gets each query and returns the
// datagram to send back (nil: stay silent).
func rawUDP(t *testing.T, reply func(query []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(append([]byte(nil), buf[:n]...)); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func listenUDP53(ip string) (net.PacketConn, error) { return net.ListenPacket("udp", ip+":53") }
