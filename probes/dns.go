package probes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// dnsProbe runs a dns check: the same question to every configured server,
// each answer judged against the expectations and against the others.
type dnsProbe struct {
	base
	spec   *checks.DNSSpec
	expect *checks.DNSExpect
	qname  string
	qtype  uint16
	typ    string
}

func newDNS(c *checks.Check, opts Options) (Prober, error) {
	d := c.DNS
	p := &dnsProbe{base: base{check: c, opts: opts}, spec: d, expect: d.Expect, typ: d.Type}
	if p.expect == nil {
		p.expect = &checks.DNSExpect{Rcode: "NOERROR"}
	}
	// Answers are kept clipped (clipAnswer); clip what is expected the
	// same way, or a longer record could never match. A copy: the spec is
	// shared.
	e := *p.expect
	e.Answers, e.Contains, e.Forbid = clipAnswers(e.Answers), clipAnswers(e.Contains), clipAnswers(e.Forbid)
	p.expect = &e
	qt, ok := dns.StringToType[d.Type]
	if !ok {
		return nil, fmt.Errorf("dns: unsupported type %q", d.Type)
	}
	p.qtype = qt
	p.qname = dns.Fqdn(strings.ToLower(d.Name))
	if d.Type == "PTR" {
		if arpa, err := dns.ReverseAddr(d.Name); err == nil {
			p.qname = arpa
		}
	}
	if _, ok := dns.IsDomainName(p.qname); !ok {
		return nil, fmt.Errorf("dns: %q is not a domain name", d.Name)
	}
	return p, nil
}

// Probe asks every server and judges the answers.
func (p *dnsProbe) Probe(ctx context.Context) wire.Result {
	r, began := p.start()
	ctx, cancel := context.WithTimeout(ctx, p.check.Timeout)
	defer cancel()

	servers, setupErrs := p.servers(ctx)
	obs := make([]wire.DNSObservation, len(servers))
	if len(servers) == 1 {
		// The common case: no goroutine hand-off, which costs more CPU
		// than the query itself.
		obs[0] = p.ask(ctx, servers[0])
	} else {
		var wg sync.WaitGroup
		for i, srv := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				obs[i] = p.ask(ctx, srv)
			}()
		}
		wg.Wait()
	}
	obs = append(setupErrs, obs...)
	r.Phases.Resolve = time.Since(began).Seconds()
	r.Observed.DNS = obs

	var failures []string
	for i := range obs {
		failures = append(failures, p.judge(&obs[i])...)
	}
	if p.expect.IsConsistent() {
		if msg := disagreement(obs); msg != "" {
			failures = append(failures, msg)
		}
	}
	return p.finish(&r, began, failures, p.summary(obs))
}

// servers lists who to ask. Servers that cannot be asked at all come back
// as observations carrying the error.
func (p *dnsProbe) servers(ctx context.Context) ([]dnsServer, []wire.DNSObservation) {
	var out []dnsServer
	var failed []wire.DNSObservation
	var walkVia *dnsServer
	for _, entry := range p.spec.Resolvers {
		var srv dnsServer
		var err error
		switch entry {
		case checks.ResolverAuthoritative:
			continue
		case checks.ResolverSystem:
			srv, err = p.systemServer()
		default:
			srv, err = p.explicitServer(ctx, entry)
		}
		if err != nil {
			failed = append(failed, wire.DNSObservation{Resolver: entry, Error: err.Error()})
			continue
		}
		out = append(out, srv)
		if walkVia == nil {
			walkVia = &srv
		}
	}
	if slices.Contains(p.spec.Resolvers, checks.ResolverAuthoritative) {
		if walkVia == nil {
			// Only "authoritative" is listed: find the zone through the
			// system resolver.
			srv, err := p.systemServer()
			if err != nil {
				failed = append(failed, wire.DNSObservation{Resolver: checks.ResolverAuthoritative, Error: err.Error()})
				return out, failed
			}
			walkVia = &srv
		}
		auth, err := p.authoritativeServers(ctx, *walkVia)
		if err != nil {
			failed = append(failed, wire.DNSObservation{Resolver: checks.ResolverAuthoritative, Error: err.Error()})
		}
		out = append(out, auth...)
	}
	return out, failed
}

// ask queries one server and records what it answered.
func (p *dnsProbe) ask(ctx context.Context, srv dnsServer) wire.DNSObservation {
	o := wire.DNSObservation{Resolver: srv.resolver, Server: srv.addr, NS: trimDot(srv.ns), Answers: []string{}}
	if srv.err != "" {
		o.Error = srv.err
		return o
	}
	resp, transport, rtt, err := p.exchange(ctx, srv, p.qname, p.qtype)
	o.Transport = transport
	o.RTT = rtt.Seconds()
	if err != nil {
		o.Error = describeDNSErr(err, p.check.Timeout)
		return o
	}
	o.Rcode = dns.RcodeToString[resp.Rcode]
	o.Authoritative = resp.Authoritative
	x := extract(resp, p.qname, p.qtype)
	o.Answers = x.answers
	o.MinTTL = x.minTTL
	o.CNAMEs = trimDots(x.chain)
	if x.problem != "" {
		o.Error = x.problem
	}
	return o
}

// serverOf rebuilds the server of an observation, for its display name.
func serverOf(o *wire.DNSObservation) dnsServer {
	return dnsServer{resolver: o.Resolver, addr: o.Server, ns: o.NS}
}

// judge returns every expectation one server's answer fails.
func (p *dnsProbe) judge(o *wire.DNSObservation) []string {
	e := p.expect
	who := fmt.Sprintf("%s %s @%s", p.typ, trimDot(p.qname), serverOf(o).display())
	if o.Server == "" {
		who = fmt.Sprintf("%s %s @%s", p.typ, trimDot(p.qname), o.Resolver)
	}
	if o.Error != "" && o.Rcode == "" {
		return []string{who + ": " + o.Error}
	}
	if o.Rcode != e.Rcode {
		return []string{fmt.Sprintf("%s: rcode %s, want %s", who, o.Rcode, e.Rcode)}
	}
	if e.Rcode != "NOERROR" {
		return nil // NXDOMAIN (or another code) was expected and came
	}
	var f []string
	got := "[" + strings.Join(o.Answers, " ") + "]"
	if len(o.CNAMEs) > 0 {
		got += " via CNAME " + strings.Join(o.CNAMEs, " -> ")
	}
	switch {
	case o.Error != "":
		f = append(f, fmt.Sprintf("%s = %s: %s", who, got, o.Error))
	case len(e.Answers) > 0 && !slices.Equal(o.Answers, sortedCopy(e.Answers)):
		f = append(f, fmt.Sprintf("%s = %s, want [%s]", who, got, strings.Join(sortedCopy(e.Answers), " ")))
	case len(e.Contains) > 0 && !containsAll(o.Answers, e.Contains):
		f = append(f, fmt.Sprintf("%s = %s, want it to include [%s]", who, got, strings.Join(e.Contains, " ")))
	case len(e.Answers) == 0 && len(o.Answers) == 0 && e.CNAME == "":
		f = append(f, fmt.Sprintf("%s = [], want at least one %s record", who, p.typ))
	}
	for _, bad := range e.Forbid {
		if slices.Contains(o.Answers, bad) {
			if len(f) == 0 {
				f = append(f, fmt.Sprintf("%s = %s", who, got))
			}
			f = append(f, bad+" is forbidden")
		}
	}
	if len(o.Answers) > 0 {
		if e.Src.Has("min_ttl") && o.MinTTL < uint32(e.MinTTL) {
			f = append(f, fmt.Sprintf("%s: TTL %d is below min_ttl %d", who, o.MinTTL, e.MinTTL))
		}
		if e.Src.Has("max_ttl") && o.MinTTL > uint32(e.MaxTTL) {
			f = append(f, fmt.Sprintf("%s: TTL %d is above max_ttl %d", who, o.MinTTL, e.MaxTTL))
		}
	}
	if e.CNAME != "" {
		end := ""
		if len(o.CNAMEs) > 0 {
			end = o.CNAMEs[len(o.CNAMEs)-1]
		}
		if p.qtype == dns.TypeCNAME && len(o.Answers) > 0 {
			end = o.Answers[0]
		}
		switch {
		case end == "":
			f = append(f, fmt.Sprintf("%s: no CNAME, want one ending at %s", who, e.CNAME))
		case end != e.CNAME:
			f = append(f, fmt.Sprintf("%s: CNAME chain ends at %s, want %s", who, end, e.CNAME))
		}
	}
	if e.Authoritative && !o.Authoritative {
		f = append(f, fmt.Sprintf("%s: answer is not authoritative (AA bit unset)", who))
	}
	return f
}

// disagreement reports servers that answered successfully but differently.
func disagreement(obs []wire.DNSObservation) string {
	groups := map[string][]string{}
	var order []string
	for i := range obs {
		o := &obs[i]
		if o.Error != "" || o.Rcode == "" {
			continue
		}
		key := o.Rcode + " [" + strings.Join(o.Answers, " ") + "]"
		if o.Rcode == "NOERROR" {
			key = "[" + strings.Join(o.Answers, " ") + "]"
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], serverOf(o).label())
	}
	if len(groups) < 2 {
		return ""
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = strings.Join(groups[k], ",") + "=" + k
	}
	return "resolvers disagree: " + strings.Join(parts, " ")
}

func (p *dnsProbe) summary(obs []wire.DNSObservation) string {
	if len(obs) == 0 {
		return ""
	}
	o := obs[0]
	if o.Rcode != "NOERROR" {
		return fmt.Sprintf("%s %s: %s from %d server(s)", p.typ, trimDot(p.qname), o.Rcode, len(obs))
	}
	return fmt.Sprintf("%s %s = [%s] from %d server(s)", p.typ, trimDot(p.qname), strings.Join(o.Answers, " "), len(obs))
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return slices.Compact(c)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
