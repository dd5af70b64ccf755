package checks

import (
	"crypto/tls"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func literal(v string) scalar { return scalar{Value: v, Show: strconv.Quote(v)} }

func TestQuorumNeed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		total int
		want  int
	}{
		{"1", 3, 1},
		{"2", 3, 2},
		{"5", 3, 5}, // more than live: the evaluator reports UNKNOWN
		{"majority", 1, 1},
		{"majority", 2, 2},
		{"majority", 3, 2},
		{"majority", 4, 3},
		{"majority", 5, 3},
		{"majority", 0, 1},
		{"all", 1, 1},
		{"all", 4, 4},
		{"all", 0, 1},
		{"1/2", 4, 2},
		{"1/2", 3, 2},
		{"2/3", 3, 2},
		{"2/3", 4, 3},
		{"2/3", 6, 4},
		{"1/3", 1, 1},
		{"3/3", 5, 5},
		{"1/100", 3, 1},
		{"2/3", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.in+"/"+strconv.Itoa(tt.total), func(t *testing.T) {
			t.Parallel()
			var q Quorum
			if err := q.decodeScalar(literal(tt.in)); err != nil {
				t.Fatalf("decode %q: %v", tt.in, err)
			}
			if got := q.Need(tt.total); got != tt.want {
				t.Errorf("Quorum(%s).Need(%d) = %d, want %d", tt.in, tt.total, got, tt.want)
			}
			if q.String() != tt.in {
				t.Errorf("String() = %q, want %q", q.String(), tt.in)
			}
		})
	}
	if got := (Quorum{}).Need(3); got != 2 {
		t.Errorf("zero Quorum.Need(3) = %d, want majority 2", got)
	}
	if !(Quorum{}).IsZero() || Majority.IsZero() {
		t.Errorf("IsZero wrong")
	}
}

func TestQuorumDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"0":          `"0" must be at least 1`,
		"-2":         `"-2" must be at least 1`,
		"most":       `"most" is not a quorum: use an integer, majority, all, or a fraction such as 2/3`,
		"1.5":        `"1.5" is not a quorum: use an integer, majority, all, or a fraction such as 2/3`,
		"3/2":        `"3/2" is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3`,
		"0/3":        `"0/3" is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3`,
		"1/0":        `"1/0" is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3`,
		"a/b":        `"a/b" is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3`,
		"2/3/4":      `"2/3/4" is not a valid fraction: want N/M with 1 <= N <= M, such as 2/3`,
		"1/10000":    `"1/10000": the denominator of a fraction must be at most 1000`,
		"Majority":   `"Majority" is not a quorum: use an integer, majority, all, or a fraction such as 2/3`,
		"":           `"" is not a quorum: use an integer, majority, all, or a fraction such as 2/3`,
		"2 out of 3": `"2 out of 3" is not a quorum: use an integer, majority, all, or a fraction such as 2/3`,
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			var q Quorum
			err := q.decodeScalar(literal(in))
			if err == nil {
				t.Fatalf("decode %q = %v, want an error", in, q)
			}
			if err.Error() != want {
				t.Errorf("decode %q: %v\nwant %s", in, err, want)
			}
		})
	}
}

// TestQuorumFractionLarge guards ceil(total*n/m) against overflow.
func TestQuorumFractionLarge(t *testing.T) {
	t.Parallel()
	var q Quorum
	if err := q.decodeScalar(literal("999/1000")); err != nil {
		t.Fatal(err)
	}
	if got := q.Need(10); got != 10 {
		t.Errorf("999/1000 of 10 = %d, want 10", got)
	}
	if err := q.decodeScalar(literal("9223372036854775807/9223372036854775807")); err == nil {
		if got := q.Need(3); got != 3 {
			t.Errorf("huge fraction accepted and Need(3) = %d, want 3", got)
		}
	}
}

func TestStatusSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml   string
		want   StatusSet
		in     []int
		out    []int
		String string
	}{
		{"200", StatusSet{{200, 200}}, []int{200}, []int{199, 201, 204}, "200"},
		{`"2xx"`, StatusSet{{200, 299}}, []int{200, 204, 299}, []int{199, 300, 404}, "2xx"},
		{"2XX", StatusSet{{200, 299}}, []int{250}, []int{300}, "2xx"},
		{`"200-299"`, StatusSet{{200, 299}}, []int{200, 299}, []int{300}, "2xx"},
		{"200 - 204", StatusSet{{200, 204}}, []int{204}, []int{205}, "200-204"},
		{"[200, 3xx, 404-410]", StatusSet{{200, 200}, {300, 399}, {404, 410}}, []int{200, 302, 404, 410}, []int{201, 411, 500}, "200, 3xx, 404-410"},
		{"[5xx]", StatusSet{{500, 599}}, []int{503}, []int{200}, "5xx"},
		{"100", StatusSet{{100, 100}}, []int{100}, nil, "100"},
		{"599", StatusSet{{599, 599}}, []int{599}, nil, "599"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			t.Parallel()
			cfg := mustLoad(t, "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      expect:\n        status: "+tt.yaml+"\n", nil)
			got := cfg.Checks[0].HTTP.Expect.Status
			if !slices.Equal(got, tt.want) {
				t.Fatalf("status: %s = %v, want %v", tt.yaml, got, tt.want)
			}
			for _, c := range tt.in {
				if !got.Contains(c) {
					t.Errorf("%v does not contain %d", got, c)
				}
			}
			for _, c := range tt.out {
				if got.Contains(c) {
					t.Errorf("%v contains %d", got, c)
				}
			}
			if got.String() != tt.String {
				t.Errorf("String() = %q, want %q", got.String(), tt.String)
			}
		})
	}
}

func TestParseStatusRangeErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "99", "600", "0", "6xx", "0xx", "2x", "2xxx", "x2x", "200-", "-200", "300-200", "200-600", "abc", "2 00", "200-299-300"} {
		if r, err := parseStatusRange(in); err == nil {
			t.Errorf("parseStatusRange(%q) = %v, want an error", in, r)
		}
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Size
	}{
		{"0", 0},
		{"1", 1},
		{"1048576", 1 << 20},
		{"10B", 10},
		{"1KB", 1000},
		{"1KiB", 1024},
		{"64KiB", 64 << 10},
		{"1MB", 1_000_000},
		{"1MiB", 1 << 20},
		{"2 MiB", 2 << 20},
		{" 3GiB ", 3 << 30},
		{"1GB", 1_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var z Size
			if err := z.decodeScalar(literal(tt.in)); err != nil {
				t.Fatalf("decode %q: %v", tt.in, err)
			}
			if z != tt.want {
				t.Errorf("decode %q = %d, want %d", tt.in, z, tt.want)
			}
		})
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "1 mb", "1TiB", "ten", "1e6", "9223372036854775807KiB", "0x10"} {
		t.Run("bad/"+in, func(t *testing.T) {
			t.Parallel()
			var z Size
			err := z.decodeScalar(literal(in))
			if err == nil {
				t.Fatalf("decode %q = %d, want an error", in, z)
			}
			if want := strconv.Quote(in) + " is not a size: use bytes or a unit, such as 1MiB or 512KiB"; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

func TestTLSVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]TLSVersion{
		"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13,
		"TLS1.2": tls.VersionTLS12, "tls1.3": tls.VersionTLS13, "13": tls.VersionTLS13,
	} {
		var v TLSVersion
		if err := v.decodeScalar(literal(in)); err != nil || v != want {
			t.Errorf("decode %q = %v, %v; want %v", in, v, err, want)
		}
	}
	for _, in := range []string{"", "1.4", "SSL3", "2", "1.20"} {
		var v TLSVersion
		if err := v.decodeScalar(literal(in)); err == nil {
			t.Errorf("decode %q = %v, want an error", in, v)
		}
	}
	if TLSVersion(0).String() != "" || TLSVersion(tls.VersionTLS13).String() != "1.3" {
		t.Errorf("String() = %q, %q", TLSVersion(0).String(), TLSVersion(tls.VersionTLS13).String())
	}
}

func TestJSONPath(t *testing.T) {
	t.Parallel()
	doc := fuzzJSONDoc(t)
	tests := []struct {
		path string
		want any
	}{
		{"$", nil}, // the whole document; checked separately
		{"$.status", "ok"},
		{"$.version", float64(3)},
		{"$.items[0].name", "a"},
		{"$.items[1].tags[1]", "y"},
		{"$['odd.key']", true},
		{`$["with space"]`, nil},
		{" $.status ", "ok"},
		{"$.items[ 1 ].name", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			p, err := ParseJSONPath(tt.path)
			if err != nil {
				t.Fatalf("ParseJSONPath(%q): %v", tt.path, err)
			}
			if p.String() != tt.path || p.IsZero() {
				t.Errorf("String() = %q, IsZero = %v", p.String(), p.IsZero())
			}
			got, err := p.Eval(doc)
			if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if tt.path == "$" {
				if _, ok := got.(map[string]any); !ok {
					t.Errorf("$ = %T, want the document", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("Eval = %#v, want %#v", got, tt.want)
			}
		})
	}

	evalErrors := map[string]string{
		"$.missing":         `no value: no key "missing"`,
		"$.items.name":      "no value: step 2 wants an object, found an array",
		"$[0]":              "no value: step 1 wants an array, found an object",
		"$.items[9]":        "no value: index 9 out of range (length 2)",
		"$.status.x":        "no value: step 2 reaches a string",
		`$["with space"].x`: "no value: step 2 reaches a null",
	}
	for path, want := range evalErrors {
		p, err := ParseJSONPath(path)
		if err != nil {
			t.Fatalf("ParseJSONPath(%q): %v", path, err)
		}
		_, err = p.Eval(doc)
		if !errors.Is(err, ErrNoValue) || err.Error() != want {
			t.Errorf("Eval(%s) = %v, want %s", path, err, want)
		}
	}

	parseErrors := map[string]string{
		"":                             "must start with $",
		"status":                       "must start with $",
		"$.":                           "empty name after '.'",
		"$..a":                         "empty name after '.'",
		"$[0":                          "missing ']'",
		"$[-1]":                        "[-1] is neither a quoted name nor an index >= 0",
		"$[x]":                         "[x] is neither a quoted name nor an index >= 0",
		"$a":                           `unexpected 'a': steps are .name, ['name'] or [index]`,
		"$" + strings.Repeat(".a", 65): "more than 64 steps",
	}
	for path, want := range parseErrors {
		_, err := ParseJSONPath(path)
		if err == nil || err.Error() != want {
			t.Errorf("ParseJSONPath(%q) error = %v, want %s", path, err, want)
		}
	}
}

func TestJSONEqual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want any
		eq        bool
	}{
		{nil, nil, true},
		{"x", nil, false},
		{true, true, true},
		{"true", true, false},
		{float64(200), float64(200), true},
		{float64(200), "200", true},
		{true, "true", true},
		{"ok", "ok", true},
		{"ok", "OK", false},
		{float64(1.5), "1.5", true},
		{map[string]any{}, "x", false},
		{float64(1), true, false},
	}
	for _, tt := range tests {
		if got := JSONEqual(tt.got, tt.want); got != tt.eq {
			t.Errorf("JSONEqual(%#v, %#v) = %v, want %v", tt.got, tt.want, got, tt.eq)
		}
	}
	if got := FormatJSONValue(map[string]any{"a": 1.0}); got != "an object with 1 keys" {
		t.Errorf("FormatJSONValue(object) = %q", got)
	}
	if got := FormatJSONValue(strings.Repeat("x", 100)); len(got) != 83 || !strings.HasSuffix(got, "...") {
		t.Errorf("FormatJSONValue(long) = %q", got)
	}
}
