package alerting

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/outposthq/outpost/probes/wire"
)

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
	var b wire.Batch
	n := 0
	fill(reflect.ValueOf(&b).Elem(), &n)
	body := mustJSON(t, b)
	got, ok := newFastDecoder().decode(body)
	if !ok {
		t.Fatalf("the fast decoder gave up on a batch with every field set; a field was probably added to wire.Batch or Result: teach fastjson.go\n%s", body)
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
		check      func(wire.Batch) bool
	}{
		{"key in another case", `{"V":1,"results":[{"Check":"web","OK":true}]}`,
			func(b wire.Batch) bool { return b.V == 1 && b.Results[0].Check == "web" && b.Results[0].OK }},
		{"null", `{"v":1,"agent":null,"results":[{"observed":{"tls":null}}]}`,
			func(b wire.Batch) bool { return b.V == 1 && b.Results[0].Observed.TLS == nil }},
		{"null series value", `{"v":1,"results":[{"observed":{"value":null}}]}`,
			func(b wire.Batch) bool { return b.V == 1 && b.Results[0].Observed.Value == nil }},
		{"series value out of range", `{"results":[{"observed":{"value":1e400}}]}`, nil},
		{"duplicate key", `{"v":2,"v":1}`, func(b wire.Batch) bool { return b.V == 1 }},
		{"lone surrogate", `{"agent":"a\ud800b"}`, func(b wire.Batch) bool { return b.Agent == "a\uFFFDb" }},
		{"invalid UTF-8", "{\"agent\":\"a\xffb\"}", func(b wire.Batch) bool { return b.Agent == "a\uFFFDb" }},
		{"integer with exponent", `{"v":1e0}`, nil}, // encoding/json refuses it too
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newFastDecoder()
			if _, ok := d.decode([]byte(tc.body)); ok {
				t.Fatal("on the fast path; the test needs another input")
			}
			b, err := decodeBatch([]byte(tc.body), d)
			if tc.check == nil {
				if err == nil {
					t.Fatalf("accepted: %+v", b)
				}
				return
			}
			if err != nil || !tc.check(b) {
				t.Fatalf("decodeBatch = %+v, %v", b, err)
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
			if len(tc.body) > wire.MaxBatchBytes {
				t.Fatalf("body of %d bytes would not get this far", len(tc.body))
			}
			_, err := decodeBatch(tc.body, newFastDecoder())
			if !errors.Is(err, ErrInvalidBatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFastDecoderInterns(t *testing.T) {
	f := &fixture{t: t, cfg: loadTestConfig(t)}
	body := mustJSON(t, f.batch("us-east", 1, result("web", "us-east", false), result("web", "us-east", false)))
	b, ok := newFastDecoder().decode(body)
	if !ok {
		t.Fatal("not on the fast path")
	}
	r0, r1 := b.Results[0].Reason, b.Results[1].Reason
	if r0 != "status 503, want 200" || unsafe.StringData(r0) != unsafe.StringData(r1) {
		t.Errorf("equal short strings of one batch are not shared: %q %q", r0, r1)
	}
}

// FuzzFastDecoder checks that the fast decoder never accepts what
// encoding/json refuses, nor decodes anything differently.
func FuzzFastDecoder(f *testing.F) {
	var full wire.Batch
	n := 0
	fill(reflect.ValueOf(&full).Elem(), &n)
	seeds := []string{
		string(mustJSON(f, full)),
		string(mustJSON(f, wire.Batch{V: 1, Agent: "a", Region: "r", Seq: 1, Results: benchResults("us-east", "a")[:3]})),
		`{}`, `{"results":[]}`, `{"results":null}`, `{"v":-0}`, `{"v":01}`, `{"v":1.0}`, `{"v":1e3}`,
		`{"seq":18446744073709551615}`, `{"seq":18446744073709551616}`, `{"seq":-1}`,
		`{"agent":"\u00e9\ud83d\ude00\n\"\\\/"}`, `{"agent":"\ud83d"}`, `{"agent":"\ud83d\u0041"}`,
		`{"created":"2030-01-02T12:00:00.123+02:00"}`, `{"created":"2030-01-02 12:00:00Z"}`,
		`{"results":[{"duration_seconds":1e400}]}`, `{"results":[{"duration_seconds":-1.5E-3}]}`,
		`{"results":[{"observed":{"value":123.4}}]}`, `{"results":[{"observed":{"value":-0}}]}`,
		`{"results":[{"observed":{"value":null}}]}`, `{"results":[{"observed":{"value":1e400}}]}`,
		`{"results":[{"observed":{"headers":{"A":"1","A":"2"},"dns":[{"min_ttl":4294967296}]}}]}`,
		` {"v":1} `, `{"v":1}x`, `{"v" : 1 , "agent" : "a" }`, "{\"agent\":\"\t\"}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := newFastDecoder().decode(data)
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
