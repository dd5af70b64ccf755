package decide

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/outposthq/outpost/probes/wire"
)

const cmpYAML = `version: 1
regions: [us-east, eu-west, ap-south]
checks:
  - id: www-a-record
    dns:
      name: www.example.com
      type: A
      resolvers: [system, authoritative]
      expect:
        answers: [203.0.113.10]
        forbid: [203.0.113.20]
  - id: www-a-paged
    on_disagreement: page
    dns: {name: www.example.com, resolvers: [system], expect: {answers: [203.0.113.10]}}
  - id: www-a-ignored
    on_disagreement: ignore
    dns: {name: www.example.com, resolvers: [system], expect: {answers: [203.0.113.10]}}
  - id: www-a-public
    dns: {name: www.example.com, resolvers: [system]}
  - id: www-a-geo
    dns: {name: www.example.com, resolvers: [system, authoritative], expect: {forbid: [203.0.113.20]}}
  - id: web-home
    http:
      url: https://www.example.com/
      expect:
        status: [200]
        headers: {X-Served-By: "^web-"}
        addresses: [203.0.113.10/32]
  - id: web-pool
    http: {url: "https://www.example.com/", expect: {addresses: [203.0.113.0/28]}}
  - id: web-anywhere
    http: {url: "https://www.example.com/"}
`

// cmpResolver is each region's system resolver.
var cmpResolver = map[string]string{"us-east": "10.1.0.2:53", "eu-west": "10.2.0.2:53", "ap-south": "10.3.0.2:53"}

// cmpAnswer is what one DNS server answered: "" for no answer (a timeout),
// "NXDOMAIN", or space-separated A records.
type cmpAnswer = string

// cmpDNS builds the result a dns probe in region reports: the system
// resolver answered sys; ns1 and ns2 of example.net (authoritative)
// answered auth1 and auth2 ("-" leaves authoritative out). The reason is
// what the probe writes against expect answers [203.0.113.10] and forbid
// [203.0.113.20].
func cmpDNS(check, region string, sys, auth1, auth2 cmpAnswer) *wire.Result {
	r := &wire.Result{V: wire.WireVersion, Check: check, Type: "dns", Region: region, Agent: region + "-1", Time: dcT0, Duration: 0.04}
	add := func(resolver, server, ns string, ans cmpAnswer) {
		o := wire.DNSObservation{Resolver: resolver, Server: server, NS: ns, Transport: "udp", Answers: []string{}, RTT: 0.01}
		switch ans {
		case "":
			o.Error = "timed out"
		case "NXDOMAIN":
			o.Rcode = "NXDOMAIN"
		default:
			o.Rcode, o.MinTTL, o.Answers = "NOERROR", 300, strings.Fields(ans)
			o.Authoritative = ns != ""
		}
		r.Observed.DNS = append(r.Observed.DNS, o)
	}
	add("system", cmpResolver[region], "", sys)
	if auth1 != "-" {
		add("authoritative", "192.0.2.53:53", "ns1.example.net", auth1)
		add("authoritative", "198.51.100.53:53", "ns2.example.net", auth2)
	}
	var failures []string
	for _, o := range r.Observed.DNS {
		who := "A www.example.com @system(" + strings.TrimSuffix(o.Server, ":53") + ")"
		if o.NS != "" {
			who = "A www.example.com @" + o.NS + "(" + strings.TrimSuffix(o.Server, ":53") + ")"
		}
		got := "[" + strings.Join(o.Answers, " ") + "]"
		switch {
		case o.Error != "":
			failures = append(failures, who+": "+o.Error)
		case o.Rcode != "NOERROR":
			failures = append(failures, who+": rcode "+o.Rcode+", want NOERROR")
		case got != "[203.0.113.10]":
			failures = append(failures, who+" = "+got+", want [203.0.113.10]")
			if slices.Contains(o.Answers, "203.0.113.20") {
				failures = append(failures, "203.0.113.20 is forbidden")
			}
		}
	}
	r.OK = len(failures) == 0
	r.Reason = strings.Join(failures, "; ")
	if r.OK {
		r.Reason = "A www.example.com = [203.0.113.10] from " + fmt.Sprint(len(r.Observed.DNS)) + " server(s)"
	}
	return r
}

const (
	web = "203.0.113.10"
	api = "203.0.113.20"
)

func TestCompareDNS(t *testing.T) {
	_, cs := dcLoad(t, cmpYAML)
	type regional = map[string]*wire.Result
	tests := []struct {
		name     string
		check    string
		last     regional
		route    string // "" for no finding
		summary  string
		regions  string
		evidence map[string]string
	}{
		{"every region agrees", "www-a-record", regional{
			"us-east":  cmpDNS("www-a-record", "us-east", web, web, web),
			"eu-west":  cmpDNS("www-a-record", "eu-west", web, web, web),
			"ap-south": cmpDNS("www-a-record", "ap-south", web, web, web),
		}, "", "", "", nil},
		{"every region agrees on a wrong answer: DOWN's business, not a disagreement", "www-a-record", regional{
			"us-east": cmpDNS("www-a-record", "us-east", api, api, api),
			"eu-west": cmpDNS("www-a-record", "eu-west", api, api, api),
		}, "", "", "", nil},
		{"one resolver, one region differs", "www-a-public", regional{
			"us-east":  cmpDNS("www-a-public", "us-east", web, "-", "-"),
			"eu-west":  cmpDNS("www-a-public", "eu-west", web, "-", "-"),
			"ap-south": cmpDNS("www-a-public", "ap-south", "198.51.100.7", "-", "-"),
		}, "warning", "www.example.com A: eu-west,us-east=[203.0.113.10] ap-south=[198.51.100.7]", "ap-south",
			map[string]string{"us-east": "system(10.1.0.2:53)=[203.0.113.10]", "eu-west": "system(10.2.0.2:53)=[203.0.113.10]", "ap-south": "system(10.3.0.2:53)=[198.51.100.7]"}},
		{"one region's resolver serves a stale record; authoritative joins the comparison", "www-a-record", regional{
			"us-east":  cmpDNS("www-a-record", "us-east", api, web, web),
			"eu-west":  cmpDNS("www-a-record", "eu-west", web, web, web),
			"ap-south": cmpDNS("www-a-record", "ap-south", web, web, web),
		}, "warning", "www.example.com A via system: authoritative,ap-south,eu-west=[203.0.113.10] us-east=[203.0.113.20]", "us-east", nil},
		{"a single region is held to the authoritative answer", "www-a-geo", regional{
			"us-east": cmpDNS("www-a-geo", "us-east", "198.51.100.7", web, web),
		}, "warning", "www.example.com A via system: authoritative=[203.0.113.10] us-east=[198.51.100.7]", "us-east", nil},
		{"authoritative servers disagree with each other", "www-a-record", regional{
			"us-east": cmpDNS("www-a-record", "us-east", web, web, api),
			"eu-west": cmpDNS("www-a-record", "eu-west", web, web, api),
		}, "warning", "www.example.com A via authoritative: eu-west/ns1.example.net,us-east/ns1.example.net=[203.0.113.10] eu-west/ns2.example.net,us-east/ns2.example.net=[203.0.113.20]", "eu-west,us-east",
			map[string]string{
				"us-east": "authoritative(ns1.example.net)=[203.0.113.10]; authoritative(ns2.example.net)=[203.0.113.20]",
				"eu-west": "authoritative(ns1.example.net)=[203.0.113.10]; authoritative(ns2.example.net)=[203.0.113.20]",
			}},
		{"NXDOMAIN in one region", "www-a-public", regional{
			"us-east":  cmpDNS("www-a-public", "us-east", web, "-", "-"),
			"eu-west":  cmpDNS("www-a-public", "eu-west", web, "-", "-"),
			"ap-south": cmpDNS("www-a-public", "ap-south", "NXDOMAIN", "-", "-"),
		}, "warning", "www.example.com A: eu-west,us-east=[203.0.113.10] ap-south=NXDOMAIN", "ap-south", nil},
		{"a server without an answer is left out", "www-a-public", regional{
			"us-east":  cmpDNS("www-a-public", "us-east", web, "-", "-"),
			"eu-west":  cmpDNS("www-a-public", "eu-west", web, "-", "-"),
			"ap-south": cmpDNS("www-a-public", "ap-south", "", "-", "-"),
		}, "", "", "", nil},
		{"two regions split evenly: both are named", "www-a-public", regional{
			"us-east": cmpDNS("www-a-public", "us-east", web, "-", "-"),
			"eu-west": cmpDNS("www-a-public", "eu-west", "198.51.100.7", "-", "-"),
		}, "warning", "www.example.com A: eu-west=[198.51.100.7] us-east=[203.0.113.10]", "eu-west,us-east", nil},
		{"a forbidden answer is never the reference, even in the majority", "www-a-geo", regional{
			"us-east":  cmpDNS("www-a-geo", "us-east", api, api, api),
			"eu-west":  cmpDNS("www-a-geo", "eu-west", api, api, api),
			"ap-south": cmpDNS("www-a-geo", "ap-south", web, web, web),
		}, "warning", "www.example.com A via system, authoritative: ap-south=[203.0.113.10] eu-west,us-east=[203.0.113.20]", "eu-west,us-east", nil},
		{"on_disagreement page routes to critical", "www-a-paged", regional{
			"us-east": cmpDNS("www-a-paged", "us-east", web, "-", "-"),
			"eu-west": cmpDNS("www-a-paged", "eu-west", api, "-", "-"),
		}, "critical", "www.example.com A: us-east=[203.0.113.10] eu-west=[203.0.113.20]", "eu-west", nil},
		{"on_disagreement ignore finds nothing", "www-a-ignored", regional{
			"us-east": cmpDNS("www-a-ignored", "us-east", web, "-", "-"),
			"eu-west": cmpDNS("www-a-ignored", "eu-west", api, "-", "-"),
		}, "", "", "", nil},
		{"a nil result is skipped", "www-a-public", regional{
			"us-east": cmpDNS("www-a-public", "us-east", web, "-", "-"),
			"eu-west": nil,
		}, "", "", "", nil},
		{"not a dns check", "web-home", regional{
			"us-east": dcResult("web-home", "us-east", true, "status 200"),
		}, "", "", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := CompareDNS(cs[tc.check], tc.last)
			cmpCheckFinding(t, f, tc.route, tc.summary, tc.regions, tc.evidence)
		})
	}
}

func cmpCheckFinding(t *testing.T, f *Finding, route, summary, regions string, evidence map[string]string) {
	t.Helper()
	if route == "" {
		if f != nil {
			t.Fatalf("finding %+v, want none", f)
		}
		return
	}
	if f == nil {
		t.Fatalf("no finding, want %q", summary)
	}
	if f.Kind != IncidentDisagreement || f.Route != route || f.Summary != summary || strings.Join(f.Regions, ",") != regions {
		t.Errorf("finding kind %s route %s regions %v\n summary %q\nwant route %s regions %s\n summary %q", f.Kind, f.Route, f.Regions, f.Summary, route, regions, summary)
	}
	if evidence != nil && !maps.Equal(f.Evidence, evidence) {
		t.Errorf("evidence %q\nwant %q", f.Evidence, evidence)
	}
}

// cmpHTTP is an HTTP result from region that connected to addr and was
// answered by the tier servedBy.
func cmpHTTP(check, region, addr, servedBy string) *wire.Result {
	ok := strings.HasPrefix(servedBy, "web-")
	r := dcResult(check, region, ok, "status 200")
	if !ok {
		r.Reason = `header X-Served-By "` + servedBy + `" does not match ^web-; connected to ` + addr + ", want one of [203.0.113.10/32]"
	}
	host, _, _ := strings.Cut(addr, ":")
	r.Observed.ConnectedAddr = addr
	r.Observed.ResolvedIPs = []string{host}
	r.Observed.StatusCode = 200
	r.Observed.Headers = map[string]string{"X-Served-By": servedBy}
	return r
}

func TestCompareAddresses(t *testing.T) {
	_, cs := dcLoad(t, cmpYAML)
	type regional = map[string]*wire.Result
	tests := []struct {
		name     string
		check    string
		last     regional
		route    string
		summary  string
		regions  string
		evidence map[string]string
	}{
		{"every region reached the web tier", "web-home", regional{
			"us-east":  cmpHTTP("web-home", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west":  cmpHTTP("web-home", "eu-west", "203.0.113.10:443", "web-1"),
			"ap-south": cmpHTTP("web-home", "ap-south", "203.0.113.10:443", "web-2"),
		}, "", "", "", nil},
		{"one region reached the API load balancer", "web-home", regional{
			"us-east":  cmpHTTP("web-home", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west":  cmpHTTP("web-home", "eu-west", "203.0.113.10:443", "web-1"),
			"ap-south": cmpHTTP("web-home", "ap-south", "203.0.113.20:443", "api-7"),
		}, "warning", "www.example.com connected to eu-west,us-east=203.0.113.10 ap-south=203.0.113.20 (want 203.0.113.10/32)", "ap-south",
			map[string]string{
				"us-east":  "connected 203.0.113.10:443, resolved [203.0.113.10], X-Served-By: web-3",
				"eu-west":  "connected 203.0.113.10:443, resolved [203.0.113.10], X-Served-By: web-1",
				"ap-south": "connected 203.0.113.20:443 (not expected), resolved [203.0.113.20], X-Served-By: api-7",
			}},
		{"every region reached the same wrong address: DOWN's business", "web-home", regional{
			"us-east": cmpHTTP("web-home", "us-east", "203.0.113.20:443", "api-7"),
			"eu-west": cmpHTTP("web-home", "eu-west", "203.0.113.20:443", "api-7"),
		}, "", "", "", nil},
		{"different addresses, all expected", "web-pool", regional{
			"us-east": cmpHTTP("web-pool", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west": cmpHTTP("web-pool", "eu-west", "203.0.113.11:443", "web-1"),
		}, "", "", "", nil},
		{"different addresses, one outside the pool", "web-pool", regional{
			"us-east": cmpHTTP("web-pool", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west": cmpHTTP("web-pool", "eu-west", "[2001:db8::20]:443", "api-1"),
		}, "warning", "www.example.com connected to eu-west=2001:db8::20 us-east=203.0.113.10 (want 203.0.113.0/28)", "eu-west", nil},
		{"an IPv4-mapped address is compared as IPv4", "web-pool", regional{
			"us-east": cmpHTTP("web-pool", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west": cmpHTTP("web-pool", "eu-west", "[::ffff:203.0.113.11]:443", "web-1"),
		}, "", "", "", nil},
		{"a region that connected nowhere is left out", "web-home", regional{
			"us-east": cmpHTTP("web-home", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west": dcResult("web-home", "eu-west", false, "connection refused"),
		}, "", "", "", nil},
		{"no expect.addresses", "web-anywhere", regional{
			"us-east": cmpHTTP("web-anywhere", "us-east", "203.0.113.10:443", "web-3"),
			"eu-west": cmpHTTP("web-anywhere", "eu-west", "203.0.113.20:443", "api-7"),
		}, "", "", "", nil},
	}
	tests[6].last["eu-west"].Observed.ConnectedAddr = ""
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := CompareAddresses(cs[tc.check], tc.last)
			cmpCheckFinding(t, f, tc.route, tc.summary, tc.regions, tc.evidence)
		})
	}
}

// TestScenarioWebNameOnAPILoadBalancer is SCENARIOS row 5: a DNS
// provider's stale failover config points the web hostname at the API
// load balancer. GeoDNS answers by the asker's region, so the system
// resolver and the authoritative servers agree within a region. In two of
// three regions the check fails on the forbidden answer: a quorum, DOWN,
// and a page. In one region only: DEGRADED plus a disagreement finding,
// both on the warning route, and no page.
func TestScenarioWebNameOnAPILoadBalancer(t *testing.T) {
	cfg, cs := dcLoad(t, cmpYAML)
	c := cs["www-a-record"]
	tests := []struct {
		name    string
		wrong   []string
		state   CheckState
		finding string
		odd     string
		events  []string // "action kind route"
	}{
		{"two of three regions on the API LB pages", []string{"us-east", "eu-west"}, StateDown,
			"www.example.com A via system, authoritative: ap-south=[203.0.113.10] eu-west,us-east=[203.0.113.20]", "eu-west,us-east",
			[]string{"trigger down critical", "trigger disagreement warning"}},
		// The disagreement warns at once; DEGRADED, once it has lasted an
		// interval (see TestStepLifecycle).
		{"one region on the API LB warns", []string{"ap-south"}, StateDegraded,
			"www.example.com A via system, authoritative: eu-west,us-east=[203.0.113.10] ap-south=[203.0.113.20]", "ap-south",
			[]string{"trigger disagreement warning"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := map[string]RegionInput{}
			for _, region := range cfg.Regions {
				ans := web
				if slices.Contains(tc.wrong, region) {
					ans = api
				}
				// Two probes in a row saw the same: failure consecutive 2.
				last := cmpDNS(c.ID, region, ans, ans, ans)
				w := Window{Check: c.ID, Region: region, Last: last, Samples: []Sample{
					{Time: dcT0, OK: true, Reason: "A www.example.com = [203.0.113.10] from 3 server(s)"},
					{Time: dcT0.Add(c.Interval), OK: last.OK, Reason: last.Reason},
					{Time: dcT0.Add(2 * c.Interval), OK: last.OK, Reason: last.Reason},
				}}
				failing, why := RegionHealth(w, c.Failure, c.Recovery, false)
				in[region] = RegionInput{Live: true, Failing: failing, Why: why, Last: w.Last}
			}
			d := Decide(c, in)
			if d.State != tc.state {
				t.Fatalf("state %s, want %s: %s", d.State, tc.state, d.Summary)
			}
			if d.Disagreement == nil {
				t.Fatalf("no disagreement finding")
			}
			if d.Disagreement.Summary != tc.finding || strings.Join(d.Disagreement.Regions, ",") != tc.odd {
				t.Errorf("finding %q regions %v\nwant %q regions %s", d.Disagreement.Summary, d.Disagreement.Regions, tc.finding, tc.odd)
			}
			wrong := slices.Sorted(slices.Values(tc.wrong))
			want := fmt.Sprintf("www-a-record %s", tc.state)
			if !strings.HasPrefix(d.Summary, want) || !strings.Contains(d.Summary, wrong[0]+" A www.example.com @system(") || !strings.Contains(d.Summary, "203.0.113.20 is forbidden") {
				t.Errorf("summary %q does not say who saw the forbidden answer", d.Summary)
			}
			_, events := Step(IncidentState{}, d, c, cfg.Maintenance, dcT0.Add(2*c.Interval))
			if got := dcEventList(events); !slices.Equal(got, tc.events) {
				t.Errorf("events %q, want %q", got, tc.events)
			}
			for _, ev := range events {
				if ev.Kind == IncidentDisagreement && (ev.Finding == nil || ev.Finding.Evidence[wrong[0]] == "") {
					t.Errorf("disagreement event without evidence for %s: %+v", wrong[0], ev.Finding)
				}
			}
		})
	}
}
