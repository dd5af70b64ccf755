package probes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Bounds that keep a hostile or broken server from costing unbounded work.
const (
	dnsUDPSize       = 1232 // the EDNS0 buffer size of DNS flag day 2020
	maxCNAMEChain    = 16
	maxAnswers       = 64   // answers kept per server
	maxAnswerText    = 1024 // bytes of one answer kept: a 4096-bit DKIM key fits, a huge TXT record does not
	maxAuthServers   = 8
	maxZoneWalkSteps = 10
)

// dnsServer is one server a dns check asks.
type dnsServer struct {
	resolver string // the configured entry it came from
	addr     string // ip:port
	ns       string // name server name, for authoritative servers
	rd       bool   // recursion desired
	err      string // why the server cannot be asked, if it cannot
}

// display names the server in reasons: "192.0.2.53", "127.0.0.1:5300",
// "ns1.example.com(192.0.2.1)".
func (s dnsServer) display() string {
	addr := s.addr
	if h, p, err := net.SplitHostPort(addr); err == nil && p == "53" {
		addr = h
	}
	switch {
	case s.ns != "":
		return strings.TrimSuffix(s.ns, ".") + "(" + addr + ")"
	case s.resolver == checks.ResolverSystem:
		return "system(" + addr + ")"
	}
	return addr
}

// label names the server in metrics and disagreement reports.
func (s dnsServer) label() string {
	if s.ns != "" {
		return strings.TrimSuffix(s.ns, ".")
	}
	return s.resolver
}

// exchange asks srv the question, retrying on silence within ctx and
// falling back to TCP when a UDP answer is truncated.
func (p *dnsProbe) exchange(ctx context.Context, srv dnsServer, qname string, qtype uint16) (*dns.Msg, string, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = srv.rd
	m.SetEdns0(dnsUDPSize, false)
	transport := p.spec.Transport
	attempts := p.spec.Retries + 1
	var lastErr error
	for i := 0; i < attempts; i++ {
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(p.check.Timeout)
		}
		per := time.Until(deadline) / time.Duration(attempts-i)
		if per <= 0 {
			break
		}
		resp, rtt, err := exchangeOnce(ctx, m, transport, srv.addr, per)
		if err == nil && resp.Truncated && transport == "udp" {
			// The answer did not fit: ask again over TCP, once, without
			// spending a retry.
			transport = "tcp"
			resp, rtt, err = exchangeOnce(ctx, m, transport, srv.addr, per)
		}
		if err == nil {
			if problem := questionMismatch(resp, qname, qtype); problem != "" {
				return nil, transport, rtt, errors.New(problem)
			}
			return resp, transport, rtt, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	if lastErr == nil {
		lastErr = context.DeadlineExceeded
	}
	return nil, transport, 0, lastErr
}

// errForeignIDs is a UDP exchange that timed out after ignoring replies
// whose id did not match the query.
type errForeignIDs struct {
	n   int
	err error
}

func (e *errForeignIDs) Error() string {
	return fmt.Sprintf("%v; ignored %d response(s) whose id did not match the query (spoofed or confused server)", e.err, e.n)
}
func (e *errForeignIDs) Unwrap() error { return e.err }

var udpBufPool = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

// exchangeOnce sends m and waits for its reply. Over UDP it reads the
// replies itself: a reply with a foreign id is ignored, as a resolver must
// (it may be a spoofing attempt), but counted so the reason can say so; a
// reply with our id that does not parse is reported at once.
func exchangeOnce(ctx context.Context, m *dns.Msg, transport, addr string, timeout time.Duration) (*dns.Msg, time.Duration, error) {
	if transport != "udp" {
		c := &dns.Client{Net: transport, Timeout: timeout}
		return c.ExchangeContext(ctx, m, addr)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetDeadline(deadline)
	query, err := m.Pack()
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if _, err := conn.Write(query); err != nil {
		return nil, 0, err
	}
	bp := udpBufPool.Get().(*[]byte)
	defer udpBufPool.Put(bp)
	buf := *bp
	foreign := 0
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if foreign > 0 {
				err = &errForeignIDs{n: foreign, err: err}
			}
			return nil, 0, err
		}
		if n < 2 || binary.BigEndian.Uint16(buf) != m.Id {
			foreign++
			continue
		}
		rtt := time.Since(start)
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			return nil, rtt, &errMalformed{msg: strings.TrimPrefix(err.Error(), "dns: ")}
		}
		return r, rtt, nil
	}
}

// errMalformed is a reply to our query that does not parse.
type errMalformed struct{ msg string }

func (e *errMalformed) Error() string { return "malformed response: " + e.msg }

// retryable reports whether another try may get an answer: silence and
// spoofed or confused replies, not a refused connection.
func retryable(err error) bool {
	var foreign *errForeignIDs
	return isTimeout(err) || errors.Is(err, dns.ErrId) || errors.As(err, &foreign)
}

// questionMismatch checks that a response answers the question asked.
func questionMismatch(resp *dns.Msg, qname string, qtype uint16) string {
	if len(resp.Question) != 1 {
		return fmt.Sprintf("response carries %d questions, want the 1 asked", len(resp.Question))
	}
	q := resp.Question[0]
	if !strings.EqualFold(q.Name, qname) || q.Qtype != qtype {
		return fmt.Sprintf("response answers %s %s, not the question asked", sanitize(q.Name), dns.TypeToString[q.Qtype])
	}
	return ""
}

// describeDNSErr explains a failed exchange.
func describeDNSErr(err error, timeout time.Duration) string {
	var foreign *errForeignIDs
	var malformed *errMalformed
	switch {
	case errors.As(err, &foreign):
		return fmt.Sprintf("no answer within %s; ignored %d response(s) whose id did not match the query (spoofed or confused server)", timeout, foreign.n)
	case errors.As(err, &malformed):
		return "malformed response: " + malformed.msg
	case errors.Is(err, dns.ErrId):
		return "response id does not match the query (spoofed or confused server)"
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var de *dns.Error
	if errors.As(err, &de) || strings.HasPrefix(err.Error(), "dns: ") {
		return "malformed response: " + strings.TrimPrefix(err.Error(), "dns: ")
	}
	return describeNetErr(err)
}

// extracted is what a response says about the question.
type extracted struct {
	answers []string
	minTTL  uint32
	chain   []string
	problem string
}

// extract follows the CNAME chain from qname through the answer section and
// collects the records of qtype at its end, normalised.
func extract(resp *dns.Msg, qname string, qtype uint16) extracted {
	var x extracted
	name := strings.ToLower(qname)
	seen := map[string]bool{name: true}
	typ := dns.TypeToString[qtype]
	first := true
	for {
		next := ""
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			switch {
			case h.Rrtype == qtype:
				if len(x.answers) >= maxAnswers {
					x.problem = fmt.Sprintf("more than %d answer records; the rest were ignored", maxAnswers)
					continue
				}
				x.answers = append(x.answers, normalizeRR(typ, rr))
				if first || h.Ttl < x.minTTL {
					x.minTTL, first = h.Ttl, false
				}
			case h.Rrtype == dns.TypeCNAME && qtype != dns.TypeCNAME:
				next = strings.ToLower(rr.(*dns.CNAME).Target)
			}
		}
		if len(x.answers) > 0 || next == "" {
			break
		}
		if seen[next] {
			x.problem = "CNAME loop: " + strings.Join(append(append([]string{trimDot(qname)}, trimDots(x.chain)...), trimDot(next)), " -> ")
			break
		}
		if len(x.chain) == maxCNAMEChain {
			x.problem = fmt.Sprintf("CNAME chain longer than %d", maxCNAMEChain)
			break
		}
		x.chain = append(x.chain, next)
		seen[next] = true
		name = next
	}
	if len(x.answers) == 0 && x.problem == "" && len(x.chain) == 0 {
		for _, rr := range resp.Answer {
			if !seen[strings.ToLower(rr.Header().Name)] {
				x.problem = fmt.Sprintf("the answer holds records for %s, not for the name asked", sanitize(rr.Header().Name))
				break
			}
		}
	}
	slices.Sort(x.answers)
	x.answers = slices.Compact(x.answers)
	return x
}

// normalizeRR renders a record's data in the normalised form expectations
// are written in, truncated so a huge record cannot bloat results.
func normalizeRR(typ string, rr dns.RR) string {
	text := strings.TrimPrefix(rr.String(), rr.Header().String())
	n, err := checks.NormalizeRecord(typ, text)
	if err != nil {
		n = sanitize(text)
	}
	return clipAnswer(n)
}

// clipAnswer bounds one answer to maxAnswerText bytes (wire.Clip).
func clipAnswer(n string) string { return wire.Clip(n, maxAnswerText) }

func clipAnswers(list []string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = clipAnswer(v)
	}
	return out
}

// sanitize keeps hostile bytes out of reasons.
func sanitize(s string) string {
	q := strconv.Quote(s)
	return wire.Clip(q[1:len(q)-1], maxAnswerText)
}

func trimDot(s string) string { return strings.TrimSuffix(s, ".") }

func trimDots(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = trimDot(v)
	}
	return out
}

// systemServer reads the first nameserver of the resolv.conf file.
func (p *dnsProbe) systemServer() (dnsServer, error) {
	cc, err := dns.ClientConfigFromFile(p.opts.ResolvConf)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return dnsServer{}, fmt.Errorf("system resolver: read %s: %v", p.opts.ResolvConf, err)
	}
	if len(cc.Servers) == 0 {
		return dnsServer{}, fmt.Errorf("system resolver: no nameserver in %s", p.opts.ResolvConf)
	}
	return dnsServer{resolver: checks.ResolverSystem, addr: net.JoinHostPort(cc.Servers[0], cc.Port), rd: p.recursion()}, nil
}

func (p *dnsProbe) recursion() bool { return p.spec.Recursion == nil || *p.spec.Recursion }

// explicitServer turns a configured "host[:port]" into a server.
func (p *dnsProbe) explicitServer(ctx context.Context, entry string) (dnsServer, error) {
	host, port, err := net.SplitHostPort(entry)
	if err != nil {
		host, port = entry, "53"
	}
	if _, err := netip.ParseAddr(host); err != nil {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(addrs) == 0 {
			return dnsServer{}, fmt.Errorf("resolve resolver %s: %s", host, describeNetErr(err))
		}
		host = addrs[0].Unmap().String()
	}
	return dnsServer{resolver: entry, addr: net.JoinHostPort(host, port), rd: p.recursion()}, nil
}

// authoritativeServers finds the zone of the queried name by asking via for
// NS records of the name and then of each parent, and returns its name
// servers, to be asked without recursion.
func (p *dnsProbe) authoritativeServers(ctx context.Context, via dnsServer) ([]dnsServer, error) {
	via.rd = true
	zone, nsNames, glue := "", []string(nil), map[string][]string{}
	labels := dns.SplitDomainName(p.qname)
	for i := 0; i < len(labels) && i < maxZoneWalkSteps; i++ {
		candidate := dns.Fqdn(strings.Join(labels[i:], "."))
		resp, _, _, err := p.exchange(ctx, via, candidate, dns.TypeNS)
		if err != nil {
			return nil, fmt.Errorf("find the zone of %s via %s: %s", trimDot(p.qname), via.display(), describeDNSErr(err, p.check.Timeout))
		}
		for _, rr := range resp.Answer {
			if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(ns.Hdr.Name, candidate) {
				nsNames = append(nsNames, strings.ToLower(ns.Ns))
			}
		}
		if len(nsNames) > 0 {
			zone = candidate
			for _, rr := range resp.Extra {
				switch a := rr.(type) {
				case *dns.A:
					glue[strings.ToLower(a.Hdr.Name)] = append(glue[strings.ToLower(a.Hdr.Name)], a.A.String())
				case *dns.AAAA:
					glue[strings.ToLower(a.Hdr.Name)] = append(glue[strings.ToLower(a.Hdr.Name)], a.AAAA.String())
				}
			}
			break
		}
	}
	if zone == "" {
		return nil, fmt.Errorf("no NS records found for %s or its parents via %s", trimDot(p.qname), via.display())
	}
	slices.Sort(nsNames)
	nsNames = slices.Compact(nsNames)
	if len(nsNames) > maxAuthServers {
		nsNames = nsNames[:maxAuthServers]
	}
	port := strconv.Itoa(p.spec.AuthoritativePort)
	var out []dnsServer
	for _, ns := range nsNames {
		ips := glue[ns]
		if len(ips) == 0 {
			resp, _, _, err := p.exchange(ctx, via, ns, dns.TypeA)
			if err == nil {
				ips = extract(resp, ns, dns.TypeA).answers
			}
		}
		if len(ips) == 0 {
			out = append(out, dnsServer{resolver: checks.ResolverAuthoritative, ns: ns, err: fmt.Sprintf("name server %s has no address", trimDot(ns))})
			continue
		}
		out = append(out, dnsServer{resolver: checks.ResolverAuthoritative, ns: ns, addr: net.JoinHostPort(ips[0], port)})
	}
	return out, nil
}
