package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpResults are n realistic results of an HTTP check, one in ten failing.
func httpResults(n int) []Result {
	rs := make([]Result, n)
	for i := range rs {
		ok := i%10 != 0
		r := Result{
			V: 1, Check: "web", Type: "http", Region: "us-east", Agent: "a", Seq: uint64(i + 1),
			Time: t0.Add(time.Duration(i) * time.Second), OK: ok, Duration: 0.183,
			Phases: Phases{Resolve: 0.004, Connect: 0.021, TLS: 0.043, Processing: 0.101, Transfer: 0.014},
			Observed: Observed{
				ResolvedIPs:   []string{"203.0.113.10", "203.0.113.11"},
				ConnectedAddr: "203.0.113.10:443",
				StatusCode:    200,
				HTTPVersion:   "HTTP/2.0",
				BodyBytes:     18234,
				Headers:       map[string]string{"X-Served-By": "web-3"},
				TLS:           &TLSObservation{Version: "TLS 1.3", ServerName: "www.example.com", NotAfter: t0.Add(60 * 24 * time.Hour), Subject: "CN=www.example.com", Issuer: "CN=R11,O=Let's Encrypt,C=US"},
			},
		}
		if !ok {
			r.Reason = "status 503, want 200"
			r.Observed.StatusCode = 503
		}
		rs[i] = r
	}
	return rs
}

// fill sets every field reachable from v to a non-zero value, two
// elements per slice and map, so that a field added to the wire types is
// in the JSON and the fast decoder must know it.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d<&é", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint64, reflect.Uint32:
		v.SetUint(uint64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(t0.Add(time.Duration(*n) * time.Millisecond)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic(fmt.Sprintf("fill: no rule for %s", v.Type()))
	}
}

func TestFastDecoderCoversWireTypes(t *testing.T) {
	var b Batch
	n := 0
	fill(reflect.ValueOf(&b).Elem(), &n)
	body := mustJSON(t, b)
	got, ok := NewDecoder().decode(body)
	if !ok {
		t.Fatalf("the fast decoder gave up on a batch with every field set; a field was probably added to Batch or Result: teach fastjson.go\n%s", body)
	}
	want, err := decodeStrict(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast decode differs from encoding/json:\n got %+v\nwant %+v", got, want)
	}
}

// Anything off the fast path is decoded by encoding/json, with its
// semantics.
func TestDecodeBatchFallsBack(t *testing.T) {
	tests := []struct {
		name, body string
		check      func(Batch) bool
	}{
		{"key in another case", `{"V":1,"results":[{"Check":"web","OK":true}]}`,
			func(b Batch) bool { return b.V == 1 && b.Results[0].Check == "web" && b.Results[0].OK }},
		{"null", `{"v":1,"agent":null,"results":[{"observed":{"tls":null}}]}`,
			func(b Batch) bool { return b.V == 1 && b.Results[0].Observed.TLS == nil }},
		{"null series value", `{"v":1,"results":[{"observed":{"value":null}}]}`,
			func(b Batch) bool { return b.V == 1 && b.Results[0].Observed.Value == nil }},
		{"series value out of range", `{"results":[{"observed":{"value":1e400}}]}`, nil},
		{"duplicate key", `{"v":2,"v":1}`, func(b Batch) bool { return b.V == 1 }},
		{"lone surrogate", `{"agent":"a\ud800b"}`, func(b Batch) bool { return b.Agent == "a\uFFFDb" }},
		{"invalid UTF-8", "{\"agent\":\"a\xffb\"}", func(b Batch) bool { return b.Agent == "a\uFFFDb" }},
		{"integer with exponent", `{"v":1e0}`, nil}, // encoding/json refuses it too
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder()
			if _, ok := d.decode([]byte(tc.body)); ok {
				t.Fatal("on the fast path; the test needs another input")
			}
			b, err := d.Decode([]byte(tc.body))
			if tc.check == nil {
				if err == nil {
					t.Fatalf("accepted: %+v", b)
				}
				return
			}
			if err != nil || !tc.check(b) {
				t.Fatalf("Decode = %+v, %v", b, err)
			}
		})
	}
}

func TestDecodeBatchBoundsMemory(t *testing.T) {
	many := func(prefix, elem string, n int) []byte {
		return []byte(prefix + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + "]}]}")
	}
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"results", []byte(`{"results":[` + strings.TrimSuffix(strings.Repeat("{},", 1001), ",") + `]}`), "more than 1000 results"},
		{"nested objects", many(`{"results":[{"observed":{"dns":[`, "{}", maxBatchObjects), "more than 65536 JSON objects"},
		{"nulls off the fast path", many(`{"results":[{"observed":{"DNS":[`, "null", maxBatchObjects), "more than 65536 JSON objects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.body) > MaxBatchBytes {
				t.Fatalf("body of %d bytes would not get this far", len(tc.body))
			}
			_, err := NewDecoder().Decode(tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFastDecoderInterns(t *testing.T) {
	failed := Result{V: 1, Check: "web", Region: "us-east", Time: t0, Reason: "status 503, want 200", Duration: 0.05}
	body := mustJSON(t, Batch{V: 1, Agent: "a1", Region: "us-east", Seq: 1, Created: t0, Results: []Result{failed, failed}})
	b, ok := NewDecoder().decode(body)
	if !ok {
		t.Fatal("not on the fast path")
	}
	r0, r1 := b.Results[0].Reason, b.Results[1].Reason
	if r0 != "status 503, want 200" || unsafe.StringData(r0) != unsafe.StringData(r1) {
		t.Errorf("equal short strings of one batch are not shared: %q %q", r0, r1)
	}
}

// checkLimits checks the invariants of the wire limits on data, decoded
// the way an evaluator does: an error quotes at most a short prefix of the
// input, and once Bound has run every string is within its limit.
func checkLimits(t *testing.T, data []byte) {
	t.Helper()
	b, err := NewDecoder().Decode(data)
	if err != nil {
		if n := len(err.Error()); n > maxErrorBytes {
			t.Fatalf("error of %d bytes for %d bytes of input: %.200s", n, len(data), err)
		}
		return
	}
	for i := range b.Results {
		r := &b.Results[i]
		Check(r)              // must not panic
		CheckTime(r.Time, t0) // nor this
		Bound(r)
		if msg := overLimit(r); msg != "" {
			t.Fatalf("after Bound, results[%d].%s", i, msg)
		}
		if again := Bound(r); again {
			t.Fatalf("Bound cut results[%d] twice", i)
		}
	}
}

// overLimit names a string of r over its limit.
func overLimit(r *Result) string {
	type field struct {
		name string
		s    string
		max  int
	}
	o := &r.Observed
	fs := []field{{"reason", r.Reason, MaxReasonBytes}, {"connected_addr", o.ConnectedAddr, MaxNameBytes},
		{"http_version", o.HTTPVersion, MaxNameBytes}, {"line", o.Line, MaxTextBytes}}
	for _, s := range o.ResolvedIPs {
		fs = append(fs, field{"resolved_ips[]", s, MaxNameBytes})
	}
	for k, v := range o.Headers {
		fs = append(fs, field{"headers key", k, MaxNameBytes}, field{"headers value", v, MaxTextBytes})
	}
	if tl := o.TLS; tl != nil {
		fs = append(fs, field{"tls.version", tl.Version, MaxNameBytes}, field{"tls.server_name", tl.ServerName, MaxNameBytes},
			field{"tls.subject", tl.Subject, MaxTextBytes}, field{"tls.issuer", tl.Issuer, MaxTextBytes})
	}
	for _, st := range o.Steps {
		fs = append(fs, field{"steps[].name", st.Name, MaxNameBytes}, field{"steps[].reason", st.Reason, MaxTextBytes})
	}
	for _, d := range o.DNS {
		fs = append(fs, field{"dns[].resolver", d.Resolver, MaxNameBytes}, field{"dns[].server", d.Server, MaxNameBytes},
			field{"dns[].ns", d.NS, MaxNameBytes}, field{"dns[].transport", d.Transport, MaxNameBytes},
			field{"dns[].rcode", d.Rcode, MaxNameBytes}, field{"dns[].error", d.Error, MaxTextBytes})
		for _, a := range d.Answers {
			fs = append(fs, field{"dns[].answers[]", a, MaxTextBytes})
		}
		for _, c := range d.CNAMEs {
			fs = append(fs, field{"dns[].cnames[]", c, MaxTextBytes})
		}
	}
	for _, f := range fs {
		if len(f.s) > f.max {
			return fmt.Sprintf("%s is %d bytes, over %d", f.name, len(f.s), f.max)
		}
	}
	if n := ObservedBytes(o); n > 0 && Check(r) == "" && n > MaxObservedBytes {
		return fmt.Sprintf("observed is %d bytes and Check let it through", n)
	}
	return ""
}

// FuzzFastDecoder checks that the fast decoder never accepts what
// encoding/json refuses, nor decodes anything differently.
func FuzzFastDecoder(f *testing.F) {
	var full Batch
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n)
	seeds := []string{
		string(mustJSON(f, full)),
		string(mustJSON(f, Batch{V: 1, Agent: "a", Region: "r", Seq: 1, Results: httpResults(3)})),
		`{}`, `{"results":[]}`, `{"results":null}`, `{"v":-0}`, `{"v":01}`, `{"v":1.0}`, `{"v":1e3}`,
		`{"seq":18446744073709551615}`, `{"seq":18446744073709551616}`, `{"seq":-1}`,
		`{"agent":"\u00e9\ud83d\ude00\n\"\\\/"}`, `{"agent":"\ud83d"}`, `{"agent":"\ud83d\u0041"}`,
		`{"created":"2030-01-02T12:00:00.123+02:00"}`, `{"created":"2030-01-02 12:00:00Z"}`,
		`{"results":[{"duration_seconds":1e400}]}`, `{"results":[{"duration_seconds":-1.5E-3}]}`,
		`{"results":[{"observed":{"value":123.4}}]}`, `{"results":[{"observed":{"value":-0}}]}`,
		`{"results":[{"observed":{"value":null}}]}`, `{"results":[{"observed":{"value":1e400}}]}`,
		`{"results":[{"observed":{"headers":{"A":"1","A":"2"},"dns":[{"min_ttl":4294967296}]}}]}`,
		` {"v":1} `, `{"v":1}x`, `{"v" : 1 , "agent" : "a" }`, "{\"agent\":\"\t\"}",
		// Hostile values: the limits of limits.go are invariants (see
		// checkLimits); larger ones are under testdata/fuzz.
		`{"seq":` + strings.Repeat("9", 300) + `}`,
		`{"results":[{"reason":"` + strings.Repeat("é", 600) + `"}]}`,
		`{"results":[{"time":"1976-01-01T00:00:00Z","observed":{"headers":{"` + strings.Repeat("h", 300) + `":"v"}}}]}`,
		`{"results":[{"observed":{"dns":[{"answers":["` + strings.Repeat("a", 1100) + `"],"cnames":[]}]}}]}`,
		`{"results":[{"observed":{"tls":{"subject":"` + strings.Repeat("s", 1100) + `"}}}]}`,
		`{"unknown` + strings.Repeat("k", 200) + `":1}`, `{"created":"` + strings.Repeat("2", 200) + `"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLimits(t, data)
		got, ok := NewDecoder().decode(data)
		if !ok {
			return
		}
		want, err := decodeStrict(data)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast decode of %q differs:\n got %#v\nwant %#v", data, got, want)
		}
	})
}
