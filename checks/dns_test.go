package checks

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, in string
		want    string // when err is ""
		err     string // a part of the error
	}{
		// Addresses: canonical text, the family must match the type.
		{typ: "A", in: "203.0.113.10", want: "203.0.113.10"},
		{typ: "A", in: "  203.0.113.10\t", want: "203.0.113.10"},
		{typ: "A", in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{typ: "A", in: "banana", err: `"banana" is not an IPv4 address`},
		{typ: "A", in: "2001:db8::1", err: `"2001:db8::1" is not an IPv4 address`},
		{typ: "A", in: "192.0.2.256", err: "is not an IPv4 address"},
		{typ: "A", in: "192.0.2.01", err: "is not an IPv4 address"},
		{typ: "A", in: "192.0.2.0/24", err: "is not an IPv4 address"},
		{typ: "A", in: "", err: `"" is not an IPv4 address`},
		{typ: "AAAA", in: "2001:db8::1", want: "2001:db8::1"},
		{typ: "AAAA", in: "2001:DB8::1", want: "2001:db8::1"},
		{typ: "AAAA", in: "2001:0DB8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1"},
		{typ: "AAAA", in: "2001:db8:0:0:1:0:0:1", want: "2001:db8::1:0:0:1"},
		{typ: "AAAA", in: "2001:db8:0:1:0:0:0:0", want: "2001:db8:0:1::"},
		{typ: "AAAA", in: "0:0:0:0:0:0:0:1", want: "::1"},
		{typ: "AAAA", in: "192.0.2.1", err: `"192.0.2.1" is not an IPv6 address`},
		{typ: "AAAA", in: "2001:db8::g", err: "is not an IPv6 address"},

		// Names: lower case, no trailing dot.
		{typ: "CNAME", in: "Edge.CDN.Test.", want: "edge.cdn.test"},
		{typ: "CNAME", in: "edge.cdn.test", want: "edge.cdn.test"},
		{typ: "CNAME", in: " edge.cdn.test. ", want: "edge.cdn.test"},
		{typ: "NS", in: "NS1.Example.Test.", want: "ns1.example.test"},
		{typ: "NS", in: ".", want: "."},
		{typ: "PTR", in: "WWW.example.test.", want: "www.example.test"},
		{typ: "PTR", in: "_sip._tcp.example.test", want: "_sip._tcp.example.test"},
		{typ: "CNAME", in: "a..b", err: `"a..b" is not a domain name: labels are 1 to 63 characters`},
		{typ: "CNAME", in: strings.Repeat("a", 64) + ".test", err: "labels are 1 to 63 characters"},
		{typ: "CNAME", in: strings.Repeat("abcdefghi.", 26), err: "is longer than 253 characters"},
		{typ: "NS", in: "ns 1.example.test", err: `is not a domain name: it contains ' '`},
		{typ: "PTR", in: `www"example.test`, err: `it contains '"'`},
		{typ: "PTR", in: "ünïcode.test", err: `it contains 'ü'`},

		// MX and SRV: numbers without leading zeros, names normalised.
		{typ: "MX", in: "10 Mail.Example.Test.", want: "10 mail.example.test"},
		{typ: "MX", in: "010   mail.example.test", want: "10 mail.example.test"},
		{typ: "MX", in: "0 .", want: "0 ."},
		{typ: "MX", in: "mail.example.test", err: `want PREFERENCE HOST, such as "10 mail.example.com"`},
		{typ: "MX", in: "10 mail.example.test extra", err: "want PREFERENCE HOST"},
		{typ: "MX", in: "70000 mail.example.test", err: `preference "70000" is not a number from 0 to 65535`},
		{typ: "MX", in: "-1 mail.example.test", err: `preference "-1" is not a number`},
		{typ: "MX", in: "10 mail..example.test", err: "is not a domain name"},
		{typ: "SRV", in: "10 60 5060 SIP.example.test.", want: "10 60 5060 sip.example.test"},
		{typ: "SRV", in: "0 0 0 .", want: "0 0 0 ."},
		{typ: "SRV", in: "010 060 05060 sip.example.test", want: "10 60 5060 sip.example.test"},
		{typ: "SRV", in: "10 60 sip.example.test", err: "want PRIORITY WEIGHT PORT TARGET"},
		{typ: "SRV", in: "10 60 99999 sip.example.test", err: `"99999" is not a number from 0 to 65535`},
		{typ: "SRV", in: "10 x 5060 sip.example.test", err: `"x" is not a number`},

		// TXT: the character-strings joined into one quoted string, so
		// that however the data is written it normalises the same, and
		// again to itself; bare text is taken as it is, spaces included.
		{typ: "TXT", in: `"v=spf1 -all"`, want: `"v=spf1 -all"`},
		{typ: "TXT", in: "v=spf1 -all", want: `"v=spf1 -all"`},
		{typ: "TXT", in: `"v=spf1 " "include:_spf.example.test ~all"`, want: `"v=spf1 include:_spf.example.test ~all"`},
		{typ: "TXT", in: " \"a\"\t\"b\" ", want: `"ab"`},
		{typ: "TXT", in: `"say \"hi\""`, want: `"say \"hi\""`},
		{typ: "TXT", in: `say "hi"`, want: `"say \"hi\""`},
		{typ: "TXT", in: `"\"quoted\""`, want: `"\"quoted\""`},
		{typ: "TXT", in: `"back\\slash"`, want: `"back\\slash"`},
		{typ: "TXT", in: `" padded "`, want: `" padded "`},
		{typ: "TXT", in: " padded ", want: `" padded "`},
		{typ: "TXT", in: `""`, want: `""`},
		{typ: "TXT", in: "", want: `""`},
		{typ: "TXT", in: `"caf\195\169"`, want: `"café"`},
		{typ: "TXT", in: "café", want: `"café"`},
		{typ: "TXT", in: `"tab\009here"`, want: `"tab\009here"`},
		{typ: "TXT", in: "tab\there", want: `"tab\009here"`},
		{typ: "TXT", in: `"\255\000"`, want: `"\255\000"`},
		{typ: "TXT", in: `"\\065"`, want: `"\\065"`},
		{typ: "CAA", in: `0 issue " padded"`, want: `0 issue " padded"`},
		{typ: "CAA", in: `0 issue "caf\195\169"`, want: "0 issue café"},

		// CAA: flags as a number, the tag in lower case, the value unquoted.
		{typ: "CAA", in: `0 issue "letsencrypt.org"`, want: "0 issue letsencrypt.org"},
		{typ: "CAA", in: "0 issue letsencrypt.org", want: "0 issue letsencrypt.org"},
		{typ: "CAA", in: `128 ISSUEWILD ";"`, want: "128 issuewild ;"},
		{typ: "CAA", in: `0 iodef "mailto:security@example.test"`, want: "0 iodef mailto:security@example.test"},
		{typ: "CAA", in: `0 issue ""`, want: "0 issue"},
		{typ: "CAA", in: `128 28 "x"`, want: "128 28 x"},
		{typ: "CAA", in: "0", err: "want FLAGS TAG VALUE"},
		{typ: "CAA", in: `256 issue "x"`, err: `flags "256" is not a number from 0 to 255`},
		{typ: "CAA", in: `-1 issue "x"`, err: `flags "-1" is not a number from 0 to 255`},

		// SOA: the two names only; the serial and timers change.
		{typ: "SOA", in: "NS1.example.test. Hostmaster.Example.Test. 2026112101 7200 3600 1209600 300", want: "ns1.example.test hostmaster.example.test"},
		{typ: "SOA", in: "ns1.example.test hostmaster.example.test", want: "ns1.example.test hostmaster.example.test"},
		{typ: "SOA", in: "ns1.example.test.", err: "want at least MNAME RNAME"},
		{typ: "SOA", in: "ns1..example.test hostmaster.example.test", err: "is not a domain name"},

		{typ: "HINFO", in: "PC Linux", err: `unsupported record type "HINFO"`},
		{typ: "a", in: "192.0.2.1", err: `unsupported record type "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.typ+" "+tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeRecord(tc.typ, tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("NormalizeRecord(%s, %q) = %q, %v; want an error containing %q", tc.typ, tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeRecord(%s, %q) = %q, %v; want %q", tc.typ, tc.in, got, err, tc.want)
			}
		})
	}
}

// TestNormalizeRecordTypesCovered keeps the table above honest: every type
// a check may ask for normalises something.
func TestNormalizeRecordTypesCovered(t *testing.T) {
	t.Parallel()
	sample := map[string]string{
		"A": "192.0.2.1", "AAAA": "2001:db8::1", "CNAME": "a.test", "MX": "10 a.test", "TXT": "x",
		"NS": "a.test", "SRV": "1 2 3 a.test", "CAA": "0 issue x", "SOA": "a.test b.test", "PTR": "a.test",
	}
	for _, typ := range DNSTypes {
		text, ok := sample[typ]
		if !ok {
			t.Errorf("no sample for DNS type %s", typ)
			continue
		}
		if _, err := NormalizeRecord(typ, text); err != nil {
			t.Errorf("NormalizeRecord(%s, %q): %v", typ, text, err)
		}
	}
}

func TestDNSDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `checks:
  - id: plain
    dns: {name: www.example.com}
  - id: expect
    dns:
      name: www.example.com
      expect: {answers: [203.0.113.10]}
`, nil)
	c := cfg.Checks[0]
	if c.Type() != "dns" {
		t.Fatalf("Type() = %q, want dns", c.Type())
	}
	d := c.DNS
	if d.Name != "www.example.com" || d.Type != "A" || d.Transport != "udp" || d.Retries != 2 || d.AuthoritativePort != 53 {
		t.Errorf("defaults: name %q type %q transport %q retries %d authoritative_port %d; want www.example.com A udp 2 53",
			d.Name, d.Type, d.Transport, d.Retries, d.AuthoritativePort)
	}
	if !slices.Equal(d.Resolvers, []string{ResolverSystem}) {
		t.Errorf("resolvers = %q, want [system]", d.Resolvers)
	}
	if d.Recursion != nil {
		t.Errorf("recursion = %v, want unset (which means true)", *d.Recursion)
	}
	if d.Expect != nil || !d.Expect.IsConsistent() {
		t.Errorf("expect = %+v, want nil, which is consistent", d.Expect)
	}

	e := cfg.Checks[1].DNS.Expect
	if e.Rcode != "NOERROR" {
		t.Errorf("rcode = %q, want NOERROR", e.Rcode)
	}
	if e.Consistent != nil || !e.IsConsistent() {
		t.Errorf("consistent = %v, IsConsistent() = %v; want unset and true", e.Consistent, e.IsConsistent())
	}
	if e.Authoritative || e.MinTTL != 0 || e.MaxTTL != 0 || e.CNAME != "" {
		t.Errorf("expect = %+v, want no authoritative, TTL or CNAME expectation", e)
	}
}

func TestDNSExplicitValues(t *testing.T) {
	t.Parallel()
	cfg := mustLoad(t, `checks:
  - id: d
    dns:
      name: Example.COM.
      type: mx
      class: in
      resolvers: ["1.1.1.1", "[2606:4700:4700::1111]:53", "dns.example.net:5353", authoritative]
      transport: tcp
      retries: 0
      recursion: false
      authoritative_port: 5300
      expect:
        answers: ["10 Mail.Example.COM."]
        forbid: ["20 backup.example.com"]
        rcode: noerror
        min_ttl: 1m
        max_ttl: 3600
        cname: Edge.CDN.Example.NET.
        authoritative: true
        consistent: false
`, nil)
	d := cfg.Checks[0].DNS
	if d.Type != "MX" || d.Transport != "tcp" || d.Retries != 0 || d.AuthoritativePort != 5300 || d.Recursion == nil || *d.Recursion {
		t.Errorf("spec = %+v", d)
	}
	if want := []string{"1.1.1.1", "[2606:4700:4700::1111]:53", "dns.example.net:5353", ResolverAuthoritative}; !slices.Equal(d.Resolvers, want) {
		t.Errorf("resolvers = %q, want %q", d.Resolvers, want)
	}
	e := d.Expect
	if !slices.Equal(e.Answers, []string{"10 mail.example.com"}) || !slices.Equal(e.Forbid, []string{"20 backup.example.com"}) {
		t.Errorf("answers %q forbid %q: want them normalised", e.Answers, e.Forbid)
	}
	if e.Rcode != "NOERROR" || e.MinTTL != 60 || e.MaxTTL != 3600 || e.CNAME != "edge.cdn.example.net" || !e.Authoritative || e.IsConsistent() {
		t.Errorf("expect = %+v", e)
	}
}
