package decide

import (
	"cmp"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Finding is something the regions' results show together that no single
// result does: regions that see different DNS answers, or that reach
// different addresses. It holds copies only.
type Finding struct {
	// Kind is IncidentDisagreement.
	Kind IncidentKind `json:"kind"`
	// Route is checks.RouteCritical for on_disagreement: page and
	// checks.RouteWarning for warn.
	Route string `json:"route"`
	// Summary is one line of at most 1024 bytes, such as
	// "www.example.com A: eu-west,us-east=[203.0.113.10] ap-south=[198.51.100.7]".
	Summary string `json:"summary"`
	// Evidence says, for every region compared, what it saw.
	Evidence map[string]string `json:"evidence"`
	// Regions are the regions that differ from the reference, sorted: for
	// DNS, the expected answers, else the authoritative answer, else the
	// answer most regions agree on without a forbidden record; for
	// addresses, expect.addresses. Every region compared when no reference
	// stands out.
	Regions []string `json:"regions"`
}

// disagreementRoute maps a check's on_disagreement to a route; ok is false
// for ignore.
func disagreementRoute(c *checks.Check) (route string, ok bool) {
	switch c.OnDisagreement {
	case checks.DisagreementIgnore:
		return "", false
	case checks.DisagreementPage:
		return checks.RouteCritical, true
	}
	return checks.RouteWarning, true
}

// CompareDNS compares the DNS answers of a dns check's latest results,
// last (by region; pass the live regions only, nil entries are skipped).
// For each entry of the check's resolvers list it groups the regions by
// answer set (rcode and sorted answers); servers that gave no usable
// answer are left out, as their own probe failed already. When every
// authoritative server in every region gives the same answer, that answer
// joins every other entry's comparison (labelled "authoritative"), so a
// single region whose resolver is served a stale or wrong record is found
// even with nothing else to compare it with. The regions named odd
// (Finding.Regions) are those away from the expected answers when some
// region got them, else from the authoritative answer, else from the
// answer most regions share that holds no forbidden record.
//
// It returns nil when the answers agree, when c is not a dns check, and
// when c.OnDisagreement is ignore. It is a pure function of its arguments.
func CompareDNS(c *checks.Check, last map[string]*wire.Result) *Finding {
	if c == nil || c.DNS == nil {
		return nil
	}
	route, ok := disagreementRoute(c)
	if !ok {
		return nil
	}
	regions := presentRegions(last)
	if len(regions) == 0 {
		return nil
	}
	entries := slices.Clone(c.DNS.Resolvers)
	var extra []string
	for _, r := range regions {
		for _, o := range last[r].Observed.DNS {
			if !slices.Contains(entries, o.Resolver) && !slices.Contains(extra, o.Resolver) {
				extra = append(extra, o.Resolver)
			}
		}
	}
	slices.Sort(extra)
	entries = append(entries, extra...)

	// The reference: one answer from every authoritative server.
	ref, refAnswers, conflict := "", []string(nil), false
	for _, r := range regions {
		for _, o := range last[r].Observed.DNS {
			if o.Resolver != checks.ResolverAuthoritative || !usable(&o) {
				continue
			}
			switch k := answerKey(&o); {
			case ref == "":
				ref, refAnswers = k, o.Answers
			case ref != k:
				conflict = true
			}
		}
	}
	if conflict {
		ref, refAnswers = "", nil // the servers disagree: no reference
	}

	expect, forbid := "", []string(nil)
	if e := c.DNS.Expect; e != nil {
		if len(e.Answers) > 0 {
			want := slices.Clone(e.Answers)
			slices.Sort(want)
			expect = "[" + strings.Join(slices.Compact(want), " ") + "]"
			if e.Rcode != "" && e.Rcode != "NOERROR" {
				expect = "" // answers under another rcode: no clean reference
			}
		}
		forbid = e.Forbid
	}
	name := strings.TrimSuffix(c.DNS.Name, ".") + " " + cmp.Or(c.DNS.Type, "A")
	var texts []string
	var vias [][]string // the entries of each text
	odd := map[string]bool{}
	evidence := map[string][]string{}
	for _, entry := range entries {
		g := groupDNS(entry, regions, last)
		if entry != checks.ResolverAuthoritative && ref != "" && len(g.labels) > 0 {
			g.add(ref, refAnswers, "authoritative", "")
		}
		if len(g.labels) < 2 {
			continue
		}
		refKey := g.reference(expect, ref, forbid, entry)
		for _, k := range g.keys {
			for _, r := range g.regions[k] {
				if refKey == "" || k != refKey {
					odd[r] = true
				}
			}
		}
		// Entries that split the regions alike share one line.
		text := g.format(refKey)
		if i := slices.Index(texts, text); i >= 0 {
			vias[i] = append(vias[i], entry)
		} else {
			texts, vias = append(texts, text), append(vias, []string{entry})
		}
		for _, r := range regions {
			if e := g.evidence[r]; len(e) > 0 {
				evidence[r] = append(evidence[r], e...)
			}
		}
	}
	if len(texts) == 0 {
		return nil
	}
	lines := make([]string, len(texts))
	for i, text := range texts {
		lines[i] = name + ": " + text
		if len(entries) > 1 {
			lines[i] = name + " via " + strings.Join(vias[i], ", ") + ": " + text
		}
	}
	f := &Finding{
		Kind:     IncidentDisagreement,
		Route:    route,
		Summary:  wire.Clip(strings.Join(lines, "; "), maxSummaryBytes),
		Evidence: make(map[string]string, len(evidence)),
		Regions:  slices.Sorted(maps.Keys(odd)),
	}
	for r, e := range evidence {
		f.Evidence[r] = wire.Clip(strings.Join(e, "; "), maxSummaryBytes)
	}
	return f
}

// usable reports whether a server gave an answer to compare.
func usable(o *wire.DNSObservation) bool { return o.Error == "" && o.Rcode != "" }

// answerKey renders an answer set the way the probe's own disagreement
// report does: "[a b]" for NOERROR, "NXDOMAIN" or "SERVFAIL [a]" otherwise.
func answerKey(o *wire.DNSObservation) string {
	set := "[" + strings.Join(o.Answers, " ") + "]"
	switch {
	case o.Rcode == "NOERROR":
		return set
	case len(o.Answers) == 0:
		return o.Rcode
	}
	return o.Rcode + " " + set
}

// dnsGroups groups labels (regions, or region/server when one region's
// servers of an entry disagree among themselves) by answer key.
type dnsGroups struct {
	labels   map[string][]string // key -> labels
	regions  map[string][]string // key -> regions
	answers  map[string][]string // key -> the answers it stands for
	keys     []string
	evidence map[string][]string // region -> "entry(server)=answer"
}

func (g *dnsGroups) add(key string, answers []string, label, region string) {
	if _, ok := g.labels[key]; !ok {
		g.keys = append(g.keys, key)
		g.answers[key] = answers
	}
	g.labels[key] = append(g.labels[key], label)
	if region != "" && !slices.Contains(g.regions[key], region) {
		g.regions[key] = append(g.regions[key], region)
	}
}

func groupDNS(entry string, regions []string, last map[string]*wire.Result) *dnsGroups {
	g := &dnsGroups{labels: map[string][]string{}, regions: map[string][]string{}, answers: map[string][]string{}, evidence: map[string][]string{}}
	for _, r := range regions {
		var obs []*wire.DNSObservation
		keys := map[string]bool{}
		for i := range last[r].Observed.DNS {
			o := &last[r].Observed.DNS[i]
			if o.Resolver == entry && usable(o) {
				obs = append(obs, o)
				keys[answerKey(o)] = true
			}
		}
		for _, o := range obs {
			g.evidence[r] = append(g.evidence[r], serverName(o)+"="+answerKey(o))
		}
		if len(keys) == 1 {
			g.add(answerKey(obs[0]), obs[0].Answers, r, r)
			continue
		}
		for _, o := range obs {
			g.add(answerKey(o), o.Answers, r+"/"+cmp.Or(o.NS, o.Server), r)
		}
	}
	return g
}

// serverName names the server of an observation in evidence.
func serverName(o *wire.DNSObservation) string {
	switch {
	case o.NS != "":
		return o.Resolver + "(" + o.NS + ")"
	case o.Server != "" && o.Server != o.Resolver:
		return o.Resolver + "(" + o.Server + ")"
	}
	return o.Resolver
}

// reference picks the answer the other groups of one resolver entry are
// held to: the expected answer set when some region got it, else the
// authoritative answer (for the other entries), else the answer most
// regions agree on that has no forbidden record; "" when none stands out.
func (g *dnsGroups) reference(expect, auth string, forbid []string, entry string) string {
	if _, ok := g.labels[expect]; ok && expect != "" {
		return expect
	}
	if auth != "" && entry != checks.ResolverAuthoritative {
		return auth
	}
	best, n, tie := "", 0, false
	for _, k := range g.keys {
		if slices.ContainsFunc(forbid, func(f string) bool { return slices.Contains(g.answers[k], f) }) {
			continue
		}
		switch m := len(g.regions[k]); {
		case m > n:
			best, n, tie = k, m, false
		case m == n:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// order returns the keys: the reference first, then by falling number of
// labels, then by their first label.
func (g *dnsGroups) order(ref string) []string {
	keys := slices.Clone(g.keys)
	for _, k := range keys {
		slices.SortFunc(g.labels[k], labelOrder)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if (a == ref) != (b == ref) {
			if a == ref {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(len(g.labels[b]), len(g.labels[a])); c != 0 {
			return c
		}
		return cmp.Compare(g.labels[a][0], g.labels[b][0])
	})
	return keys
}

// labelOrder sorts "authoritative" before region names.
func labelOrder(a, b string) int {
	if (a == "authoritative") != (b == "authoritative") {
		if a == "authoritative" {
			return -1
		}
		return 1
	}
	return cmp.Compare(a, b)
}

func (g *dnsGroups) format(ref string) string {
	keys := g.order(ref)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strings.Join(g.labels[k], ",") + "=" + k
	}
	return strings.Join(parts, " ")
}

// CompareAddresses compares the addresses a check's latest results
// connected to, last (by region; pass the live regions only, nil entries
// and results without a connected address are skipped). It applies to
// checks with expect.addresses (http, tcp and tls): when the regions
// reached different addresses and some reached one outside
// expect.addresses, the regions outside are the Finding's Regions. Each
// compared region's evidence names the address it reached, what the name
// resolved to there, and the response headers the check asserts (which
// tier answered).
//
// It returns nil when every region reached the same address (a check that
// fails everywhere is DOWN, not a disagreement), when every address is
// expected, when the check has no expect.addresses, and when
// c.OnDisagreement is ignore. It is a pure function of its arguments.
func CompareAddresses(c *checks.Check, last map[string]*wire.Result) *Finding {
	if c == nil {
		return nil
	}
	want, target := expectedAddresses(c)
	if len(want) == 0 {
		return nil
	}
	route, ok := disagreementRoute(c)
	if !ok {
		return nil
	}
	groups := map[string][]string{} // address -> regions
	var outside []string
	evidence := map[string]string{}
	for _, r := range presentRegions(last) {
		o := &last[r].Observed
		ip, ok := connectedIP(o.ConnectedAddr)
		if !ok {
			continue
		}
		groups[ip.String()] = append(groups[ip.String()], r)
		e := "connected " + o.ConnectedAddr
		if !slices.ContainsFunc(want, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			outside = append(outside, r)
			e += " (not expected)"
		}
		if len(o.ResolvedIPs) > 0 {
			e += ", resolved [" + strings.Join(o.ResolvedIPs, " ") + "]"
		}
		for _, h := range slices.Sorted(maps.Keys(o.Headers)) {
			e += ", " + h + ": " + o.Headers[h]
		}
		evidence[r] = wire.Clip(e, maxSummaryBytes)
	}
	if len(groups) < 2 || len(outside) == 0 {
		return nil
	}
	addrs := slices.SortedFunc(maps.Keys(groups), func(a, b string) int {
		if c := cmp.Compare(len(groups[b]), len(groups[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = strings.Join(groups[a], ",") + "=" + a
	}
	wants := make([]string, len(want))
	for i, p := range want {
		wants[i] = p.String()
	}
	summary := target + " connected to " + strings.Join(parts, " ") + " (want " + strings.Join(wants, " ") + ")"
	return &Finding{
		Kind:     IncidentDisagreement,
		Route:    route,
		Summary:  wire.Clip(summary, maxSummaryBytes),
		Evidence: evidence,
		Regions:  outside,
	}
}

// expectedAddresses returns a check's expect.addresses and the name of its
// target for a summary.
func expectedAddresses(c *checks.Check) ([]netip.Prefix, string) {
	switch {
	case c.HTTP != nil && c.HTTP.Expect != nil:
		target := c.ID
		if u, err := url.Parse(c.HTTP.URL); err == nil && u.Hostname() != "" {
			target = u.Hostname()
		}
		return c.HTTP.Expect.Addresses, target
	case c.TCP != nil && c.TCP.Expect != nil:
		return c.TCP.Expect.Addresses, c.TCP.Address
	case c.TLS != nil && c.TLS.Expect != nil:
		return c.TLS.Expect.Addresses, c.TLS.Address
	}
	return nil, ""
}

// connectedIP parses "ip:port" (or a bare IP) into an address without a
// zone.
func connectedIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// presentRegions returns the regions of last with a result, sorted.
func presentRegions(last map[string]*wire.Result) []string {
	var out []string
	for r, res := range last {
		if res != nil {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
