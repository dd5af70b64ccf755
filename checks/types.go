package checks

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Quorum says how many of a check's live regions must agree before the check
// is DOWN: a count, "majority", "all", or a fraction such as "2/3".
type Quorum struct {
	kind quorumKind
	n, m int
}

type quorumKind uint8

const (
	quorumUnset quorumKind = iota
	quorumCount
	quorumMajority
	quorumAll
	quorumFraction
)

// maxQuorumDenominator bounds M in a fraction N/M.
const maxQuorumDenominator = 1000

// Majority is the default quorum: more than half of the live regions.
var Majority = Quorum{kind: quorumMajority}

// IsZero reports whether the quorum was not set.
func (q Quorum) IsZero() bool { return q.kind == quorumUnset }

// Need returns how many of total regions must agree, always at least 1.
func (q Quorum) Need(total int) int {
	var need int
	switch q.kind {
	case quorumCount:
		need = q.n
	case quorumAll:
		need = total
	case quorumFraction:
		need = (total*q.n + q.m - 1) / q.m // ceil(total * n/m)
	default:
		need = total/2 + 1
	}
	return max(need, 1)
}

// Fixed returns the count for a quorum written as an integer.
func (q Quorum) Fixed() (int, bool) { return q.n, q.kind == quorumCount }

func (q Quorum) String() string {
	switch q.kind {
	case quorumCount:
		return strconv.Itoa(q.n)
	case quorumAll:
		return "all"
	case quorumFraction:
		return fmt.Sprintf("%d/%d", q.n, q.m)
	}
	return "majority"
}

func (q *Quorum) decodeScalar(s scalar) error {
	v := strings.TrimSpace(s.Value)
	switch v {
	case "majority":
		*q = Quorum{kind: quorumMajority}
		return nil
	case "all":
		*q = Quorum{kind: quorumAll}
		return nil
	}
	if num, den, ok := strings.Cut(v, "/"); ok {
		n, err1 := strconv.Atoi(num)
		m, err2 := strconv.Atoi(den)
		if err1 != nil || err2 != nil || n < 1 || m < 1 || n > m {
			return fmt.Errorf("%s is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3", s.Show)
		}
		if m > maxQuorumDenominator {
			// Need computes total*n, which must not overflow.
			return fmt.Errorf("%s: the denominator of a fraction must be at most %d", s.Show, maxQuorumDenominator)
		}
		*q = Quorum{kind: quorumFraction, n: n, m: m}
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%s is not a quorum: use an integer, majority, all, or a fraction such as 2/3", s.Show)
	}
	if n < 1 {
		return fmt.Errorf("%s must be at least 1", s.Show)
	}
	*q = Quorum{kind: quorumCount, n: n}
	return nil
}

// Size is a number of bytes, written as an integer or with a unit
// (B, KB, MB, GB, KiB, MiB, GiB).
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

func (z *Size) decodeScalar(s scalar) error {
	v := strings.TrimSpace(s.Value)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%s is not a size: use bytes or a unit, such as 1MiB or 512KiB", s.Show)
	}
	*z = Size(n * mult)
	return nil
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

func (r StatusRange) String() string {
	switch {
	case r.Lo == r.Hi:
		return strconv.Itoa(r.Lo)
	case r.Lo%100 == 0 && r.Hi == r.Lo+99:
		return fmt.Sprintf("%dxx", r.Lo/100)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// StatusSet is the set of acceptable HTTP status codes: a code, or a list of
// codes, classes ("2xx") and ranges ("200-299").
type StatusSet []StatusRange

// Contains reports whether code is in the set.
func (set StatusSet) Contains(code int) bool {
	for _, r := range set {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

func (set StatusSet) String() string {
	parts := make([]string, len(set))
	for i, r := range set {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}

func (set *StatusSet) decodeNode(d *decoder, n *yaml.Node, path string) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			d.errAt(n, path, "the list of statuses is empty")
			return
		}
	}
	for i, item := range items {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := d.scalar(item, p, "a status code, class (2xx) or range (200-299)")
		if !ok {
			continue
		}
		r, err := parseStatusRange(s.Value)
		if err != nil {
			d.errAt(item, p, "%s is not a status code, class (2xx) or range (200-299)", s.Show)
			continue
		}
		*set = append(*set, r)
	}
}

func parseStatusRange(v string) (StatusRange, error) {
	valid := func(c int) bool { return c >= 100 && c <= 599 }
	v = strings.TrimSpace(v)
	if len(v) == 3 && strings.HasSuffix(strings.ToLower(v), "xx") && v[0] >= '1' && v[0] <= '5' {
		lo := int(v[0]-'0') * 100
		return StatusRange{lo, lo + 99}, nil
	}
	if a, b, ok := strings.Cut(v, "-"); ok {
		lo, err1 := strconv.Atoi(strings.TrimSpace(a))
		hi, err2 := strconv.Atoi(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !valid(lo) || !valid(hi) || lo > hi {
			return StatusRange{}, fmt.Errorf("bad range")
		}
		return StatusRange{lo, hi}, nil
	}
	c, err := strconv.Atoi(v)
	if err != nil || !valid(c) {
		return StatusRange{}, fmt.Errorf("bad code")
	}
	return StatusRange{c, c}, nil
}

// Secret is a credential. It must be written as an ${ENV} reference, and it
// prints, marshals and logs as "<secret>" so that it cannot leak by accident.
// A secret whose variable is unset is Missing: that is an error only for
// the processes that need it (see Needs).
type Secret struct {
	value string
	// missing is the error an unset variable makes, for a process that
	// needs this secret; nil when the secret was resolved.
	missing *Error
}

// NewSecret wraps a value that came from elsewhere than a config file.
func NewSecret(v string) Secret { return Secret{value: v} }

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return s.value }

// IsZero reports whether the secret is empty. A Missing secret is not: its
// value is unknown here, not empty.
func (s Secret) IsZero() bool { return s.value == "" && s.missing == nil }

// Missing reports whether the secret's environment variable was unset when
// the configuration was loaded, so that Value is empty. Load fails on such
// a secret; LoadFor only when the process needs it.
func (s Secret) Missing() bool { return s.missing != nil }

func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "<secret>"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// Format keeps every verb from printing the value: without it, %d or %t
// would print the struct's fields.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	fmt.Fprint(f, s.String())
}

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON keeps encoding/json from printing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *Secret) decodeScalar(sc scalar) error {
	if !sc.FromEnv {
		return fmt.Errorf("a secret must come from the environment, written as ${NAME}; a literal value here would end up in version control")
	}
	s.value = sc.Value
	return nil
}

// TLSVersion is a TLS protocol version written as "1.0", "1.1", "1.2" or "1.3".
type TLSVersion uint16

// tlsVersionNames are the spellings of each TLS version, after an
// optional "tls" prefix in any case.
var tlsVersionNames = map[string]uint16{
	"1.0": tls.VersionTLS10, "10": tls.VersionTLS10,
	"1.1": tls.VersionTLS11, "11": tls.VersionTLS11,
	"1.2": tls.VersionTLS12, "12": tls.VersionTLS12,
	"1.3": tls.VersionTLS13, "13": tls.VersionTLS13,
}

func (v *TLSVersion) decodeScalar(s scalar) error {
	n, ok := tlsVersionNames[strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s.Value)), "tls")]
	if !ok {
		return fmt.Errorf("%s is not a TLS version: use 1.0, 1.1, 1.2 or 1.3", s.Show)
	}
	*v = TLSVersion(n)
	return nil
}

func (v TLSVersion) String() string {
	if v == 0 {
		return ""
	}
	return strings.TrimPrefix(tls.VersionName(uint16(v)), "TLS ")
}
