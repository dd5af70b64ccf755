package checks

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DNS record types a dns check may query.
var DNSTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "SOA", "PTR"}

// dnsClasses are the classes a dns check may ask for (in any case), and
// dnsTransports the transports, the default first.
var (
	dnsClasses    = []string{"IN"}
	dnsTransports = []string{"udp", "tcp"}
)

// Special entries of DNSSpec.Resolvers.
const (
	// ResolverSystem is the first nameserver of /etc/resolv.conf.
	ResolverSystem = "system"
	// ResolverAuthoritative is every server of the zone's NS set, found by
	// asking a recursive resolver, queried without recursion.
	ResolverAuthoritative = "authoritative"
)

// DNSSpec is a DNS record-correctness check: it asks each resolver for one
// name and type and compares the answers with what is expected, with what
// is forbidden, and with each other.
type DNSSpec struct {
	Name string `yaml:"name"`
	// Type is the record type, A by default.
	Type string `yaml:"type"`
	// Class is IN, the only class supported; written for clarity.
	Class string `yaml:"class"`
	// Resolvers are "system", "authoritative" or "host[:port]"; by default
	// the system resolver.
	Resolvers []string `yaml:"resolvers"`
	// Transport is udp (with a TCP retry when the answer is truncated) or tcp.
	Transport string `yaml:"transport"`
	// Retries is how many times a query that gets no answer is sent again
	// within the check's timeout; default 2.
	Retries int `yaml:"retries"`
	// Recursion sets the RD bit for non-authoritative resolvers; default true.
	Recursion *bool `yaml:"recursion"`
	// AuthoritativePort is the port authoritative servers are asked on;
	// default 53.
	AuthoritativePort int        `yaml:"authoritative_port"`
	Expect            *DNSExpect `yaml:"expect"`
	Src               Source
}

// DNSExpect is what every resolver's answer must satisfy. Values are written
// in presentation form and compared after normalisation (NormalizeRecord).
type DNSExpect struct {
	// Answers is the exact set of answers.
	Answers []string `yaml:"answers"`
	// Contains must all be among the answers.
	Contains []string `yaml:"contains"`
	// Forbid must not be among the answers: the other tier's load balancer.
	Forbid []string `yaml:"forbid"`
	// Rcode is the response code; NOERROR by default.
	Rcode string `yaml:"rcode"`
	// MinTTL and MaxTTL bound the lowest TTL of the answer records.
	MinTTL TTL `yaml:"min_ttl"`
	MaxTTL TTL `yaml:"max_ttl"`
	// CNAME is the name the CNAME chain must end at.
	CNAME string `yaml:"cname"`
	// Authoritative requires the AA bit.
	Authoritative bool `yaml:"authoritative"`
	// Consistent requires every resolver to return the same answers;
	// default true.
	Consistent *bool `yaml:"consistent"`
	Src        Source
}

// IsConsistent reports whether resolvers must agree.
func (e *DNSExpect) IsConsistent() bool { return e == nil || e.Consistent == nil || *e.Consistent }

// TTL is a time to live in seconds, written as an integer or a duration.
type TTL uint32

func (t *TTL) decodeScalar(s scalar) error {
	v := strings.TrimSpace(s.Value)
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		*t = TTL(n)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > (1<<31-1)*time.Second {
		return fmt.Errorf("%s is not a TTL: use seconds (300) or a duration (5m)", s.Show)
	}
	*t = TTL(d / time.Second)
	return nil
}

// NormalizeRecord returns the canonical text of one record's data of type
// typ, so that answers compare equal however they were written: lower-case
// names without the trailing dot, canonical IPv6, TXT as one quoted string,
// MX and SRV fields in order, SOA reduced to its two names (its serial
// changes). Normalising a normalised text gives it back unchanged.
func NormalizeRecord(typ, text string) (string, error) {
	if typ == "TXT" {
		// TXT data is text: spaces are part of it. Written quoted, its
		// character-strings are joined; written bare, it is taken as is.
		// The result is always one quoted string, so normalising twice
		// gives the same text however many quotes the data holds.
		if t := strings.TrimSpace(text); strings.HasPrefix(t, `"`) {
			text = unquoteTXT(t)
		}
		return quoteTXT(text), nil
	}
	text = strings.TrimSpace(text)
	f := strings.Fields(text)
	switch typ {
	case "A", "AAAA":
		a, err := netip.ParseAddr(text)
		if err != nil || (typ == "A") != a.Unmap().Is4() {
			return "", fmt.Errorf("%q is not an IPv%s address", text, map[bool]string{true: "4", false: "6"}[typ == "A"])
		}
		return a.Unmap().String(), nil
	case "CNAME", "NS", "PTR":
		return normalizeName(text)
	case "MX":
		if len(f) != 2 {
			return "", fmt.Errorf("%q: want PREFERENCE HOST, such as \"10 mail.example.com\"", text)
		}
		pref, err := strconv.ParseUint(f[0], 10, 16)
		if err != nil {
			return "", fmt.Errorf("%q: preference %q is not a number from 0 to 65535", text, f[0])
		}
		host, err := normalizeName(f[1])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s", pref, host), nil
	case "SRV":
		if len(f) != 4 {
			return "", fmt.Errorf("%q: want PRIORITY WEIGHT PORT TARGET", text)
		}
		var n [3]uint64
		for i := range 3 {
			v, err := strconv.ParseUint(f[i], 10, 16)
			if err != nil {
				return "", fmt.Errorf("%q: %q is not a number from 0 to 65535", text, f[i])
			}
			n[i] = v
		}
		host, err := normalizeName(f[3])
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %d %d %s", n[0], n[1], n[2], host), nil
	case "CAA":
		if len(f) < 2 {
			return "", fmt.Errorf("%q: want FLAGS TAG VALUE, such as `0 issue \"letsencrypt.org\"`", text)
		}
		flags, err := strconv.ParseUint(f[0], 10, 8)
		if err != nil {
			return "", fmt.Errorf("%q: flags %q is not a number from 0 to 255", text, f[0])
		}
		// The value is what follows the tag field, not a search for the
		// tag's text, which may also occur inside the flags.
		rest := strings.TrimLeft(strings.TrimPrefix(text, f[0]), " \t")
		value := unquoteTXT(strings.TrimSpace(strings.TrimPrefix(rest, f[1])))
		if q := quoteTXT(value); q != `"`+value+`"` || strings.TrimSpace(value) != value {
			value = q // written bare, it would not read back the same
		}
		return strings.TrimSpace(fmt.Sprintf("%d %s %s", flags, strings.ToLower(f[1]), value)), nil
	case "SOA":
		if len(f) < 2 {
			return "", fmt.Errorf("%q: want at least MNAME RNAME", text)
		}
		m, err := normalizeName(f[0])
		if err != nil {
			return "", err
		}
		r, err := normalizeName(f[1])
		if err != nil {
			return "", err
		}
		return m + " " + r, nil
	}
	return "", fmt.Errorf("unsupported record type %q", typ)
}

// unquoteTXT joins the character-strings of a TXT record, written quoted or
// not, into the one text they stand for.
func unquoteTXT(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	var b strings.Builder
	for rest := s; rest != ""; {
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, `"`) {
			b.WriteString(rest)
			break
		}
		i := 1
		for ; i < len(rest); i++ {
			if rest[i] == '\\' && i+3 < len(rest) && isDigits(rest[i+1:i+4]) {
				// \DDD: how servers print a byte outside printable ASCII.
				if n, _ := strconv.Atoi(rest[i+1 : i+4]); n <= 255 {
					b.WriteByte(byte(n))
					i += 3
					continue
				}
			}
			if rest[i] == '\\' && i+1 < len(rest) {
				b.WriteByte(rest[i+1])
				i++
				continue
			}
			if rest[i] == '"' {
				break
			}
			b.WriteByte(rest[i])
		}
		if i >= len(rest) {
			break
		}
		rest = rest[i+1:]
	}
	return b.String()
}

// quoteTXT writes text as one zone-file character-string that unquoteTXT
// reads back unchanged: printable UTF-8 as it is, " and \ escaped, any
// other byte as \DDD, so that answers stay readable, valid UTF-8 text.
func quoteTXT(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(s[i])
		case r == utf8.RuneError && size == 1, !unicode.IsPrint(r):
			for _, c := range []byte(s[i : i+size]) {
				fmt.Fprintf(&b, "\\%03d", c)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normalizeName lower-cases a domain name and drops its trailing dot.
func normalizeName(s string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if n == "" {
		return ".", nil
	}
	if len(n) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", s)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%q is not a domain name: labels are 1 to 63 characters", s)
		}
		for _, r := range label {
			if r <= ' ' || r == '"' || r == '\\' || r > '~' {
				return "", fmt.Errorf("%q is not a domain name: it contains %q", s, r)
			}
		}
	}
	return n, nil
}

// Rcodes are the response codes an expectation may name.
var Rcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}

func validateDNS(c *Check, id string, errs *errorList) {
	d := c.DNS
	add := func(key, format string, args ...any) { errs.add(d.Src.At(key), id, format, args...) }
	if d.Name == "" {
		add("name", "dns.name is required")
	} else if _, err := normalizeName(d.Name); err != nil {
		if a, aerr := netip.ParseAddr(d.Name); aerr != nil || (d.Type != "PTR" && a.IsValid()) {
			add("name", "dns.name: %v", err)
		}
	}
	d.Type = strings.ToUpper(d.Type)
	if d.Type == "" {
		d.Type = "A"
	} else if !slices.Contains(DNSTypes, d.Type) {
		add("type", "dns.type %q: use one of %s", d.Type, strings.Join(DNSTypes, ", "))
		return
	}
	if d.Class != "" && !slices.ContainsFunc(dnsClasses, func(c string) bool { return strings.EqualFold(d.Class, c) }) {
		add("class", "dns.class %q: only IN is supported", d.Class)
	}
	switch {
	case d.Transport == "":
		d.Transport = dnsTransports[0]
	case slices.Contains(dnsTransports, d.Transport):
	default:
		add("transport", "dns.transport %q: use udp or tcp", d.Transport)
	}
	if !d.Src.Has("retries") {
		d.Retries = 2
	} else if d.Retries < 0 || d.Retries > 10 {
		add("retries", "dns.retries %d must be between 0 and 10", d.Retries)
	}
	if !d.Src.Has("authoritative_port") {
		d.AuthoritativePort = 53
	} else if d.AuthoritativePort < 1 || d.AuthoritativePort > 65535 {
		add("authoritative_port", "dns.authoritative_port %d must be between 1 and 65535", d.AuthoritativePort)
	}
	if len(d.Resolvers) == 0 {
		if d.Src.Has("resolvers") {
			add("resolvers", "dns.resolvers is empty; leave it out to use the system resolver")
		}
		d.Resolvers = []string{ResolverSystem}
	}
	seen := map[string]bool{}
	for i, r := range d.Resolvers {
		key := fmt.Sprintf("resolvers[%d]", i)
		switch {
		case seen[r]:
			add(key, "resolver %q is listed twice", r)
		case r == ResolverSystem, r == ResolverAuthoritative:
		default:
			host, port, err := net.SplitHostPort(r)
			if err != nil {
				host, port = r, "53"
			}
			if host == "" || !validPort(port) || strings.ContainsAny(host, " /") {
				add(key, "resolver %q: use system, authoritative, or host[:port] of a DNS server", r)
			}
		}
		seen[r] = true
	}
	e := d.Expect
	if e == nil {
		return
	}
	ex := func(key, format string, args ...any) { errs.add(e.Src.At(key), id, format, args...) }
	norm := func(list []string, key string) []string {
		out := make([]string, 0, len(list))
		for i, v := range list {
			n, err := NormalizeRecord(d.Type, v)
			if err != nil {
				ex(fmt.Sprintf("%s[%d]", key, i), "expect.%s: %v", key, err)
				continue
			}
			out = append(out, n)
		}
		return out
	}
	if e.Src.Has("answers") && len(e.Answers) == 0 {
		ex("answers", "expect.answers is empty; to expect a name not to exist, set rcode: NXDOMAIN")
	}
	e.Answers = norm(e.Answers, "answers")
	e.Contains = norm(e.Contains, "contains")
	e.Forbid = norm(e.Forbid, "forbid")
	for _, f := range e.Forbid {
		if slices.Contains(e.Answers, f) || slices.Contains(e.Contains, f) {
			ex("forbid", "expect.forbid: %s is also expected", f)
		}
	}
	e.Rcode = strings.ToUpper(e.Rcode)
	if e.Rcode == "" {
		e.Rcode = "NOERROR"
	} else if !slices.Contains(Rcodes, e.Rcode) {
		ex("rcode", "expect.rcode %q: use one of %s", e.Rcode, strings.Join(Rcodes, ", "))
	}
	if e.Src.Has("min_ttl") && e.Src.Has("max_ttl") && e.MinTTL > e.MaxTTL {
		ex("max_ttl", "expect.max_ttl %d is below min_ttl %d", e.MaxTTL, e.MinTTL)
	}
	if e.CNAME != "" {
		n, err := normalizeName(e.CNAME)
		if err != nil {
			ex("cname", "expect.cname: %v", err)
		}
		e.CNAME = n
	}
	if e.Authoritative && !slices.Contains(d.Resolvers, ResolverAuthoritative) && d.Recursion == nil {
		// Asking a recursive resolver for an authoritative answer is a
		// config mistake only when none of the servers can give one; leave
		// explicit servers alone, they may be the authoritative ones.
		if slices.Equal(d.Resolvers, []string{ResolverSystem}) {
			ex("authoritative", "expect.authoritative needs an authoritative server: add resolvers: [authoritative] or the server's address")
		}
	}
}
