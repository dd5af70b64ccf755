package wire

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// walkStrings calls fn with the path and value of every string in v.
func walkStrings(v reflect.Value, path string, fn func(path, s string)) {
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Pointer:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkStrings(v.Index(i), path+"[]", fn)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			walkStrings(it.Key(), path+" key", fn)
			walkStrings(it.Value(), path+" value", fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
		}
	}
}

// Every string of the observations, including any field added since, is
// cut by Bound: a new field that Bound does not know fails here.
func TestBoundCoversWireTypes(t *testing.T) {
	var r Result
	n := 0
	fill(reflect.ValueOf(&r).Elem(), &n)
	long := strings.Repeat("é", 3000) // 6000 bytes
	var setLong func(v reflect.Value)
	setLong = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString(long + v.String())
		case reflect.Pointer:
			setLong(v.Elem())
		case reflect.Slice:
			for i := range v.Len() {
				setLong(v.Index(i))
			}
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			it := v.MapRange()
			for it.Next() {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				k.Set(it.Key())
				e.Set(it.Value())
				setLong(k)
				setLong(e)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Field(i).CanSet() {
					setLong(v.Field(i))
				}
			}
		}
	}
	r.Reason = long
	setLong(reflect.ValueOf(&r.Observed).Elem())
	if !Bound(&r) {
		t.Fatal("Bound cut nothing")
	}
	check := func(path, s string) {
		if len(s) > MaxTextBytes {
			t.Errorf("%s is %d bytes after Bound, over %d: teach Bound (limits.go) the new field", path, len(s), MaxTextBytes)
		}
	}
	check("Reason", r.Reason)
	walkStrings(reflect.ValueOf(r.Observed), "Observed", check)
	if Bound(&r) {
		t.Error("a second Bound cut again")
	}
}

// Bound never writes into the maps and slices it was given: an in-process
// agent may still hold them.
func TestBoundCopiesOnWrite(t *testing.T) {
	long := strings.Repeat("x", MaxTextBytes+10)
	headers := map[string]string{"X-A": long, "X-B": "short"}
	ips := []string{"192.0.2.1", strings.Repeat("1", MaxNameBytes+1)}
	dns := []DNSObservation{{Server: "192.0.2.53:53", Answers: []string{"A 192.0.2.1", long}}}
	steps := []StepObservation{{Name: "login", Reason: long}}
	tls := &TLSObservation{Subject: long}
	r := Result{Reason: long, Observed: Observed{Headers: headers, ResolvedIPs: ips, DNS: dns, Steps: steps, TLS: tls}}
	before := []any{maps.Clone(headers), slices.Clone(ips), slices.Clone(dns[0].Answers), slices.Clone(steps), *tls}
	if !Bound(&r) {
		t.Fatal("nothing cut")
	}
	after := []any{headers, ips, dns[0].Answers, steps, *tls}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("Bound modified what it was given")
	}
	o := r.Observed
	if len(r.Reason) > MaxReasonBytes || len(o.Headers["X-A"]) > MaxTextBytes || o.Headers["X-B"] != "short" ||
		len(o.ResolvedIPs[1]) > MaxNameBytes || o.ResolvedIPs[0] != "192.0.2.1" ||
		len(o.DNS[0].Answers[1]) > MaxTextBytes || o.DNS[0].Answers[0] != "A 192.0.2.1" ||
		len(o.Steps[0].Reason) > MaxTextBytes || o.Steps[0].Name != "login" || len(o.TLS.Subject) > MaxTextBytes {
		t.Errorf("Bound did not cut as documented: %+v", o)
	}
	if !strings.HasSuffix(o.Headers["X-A"], clipMark) {
		t.Errorf("a cut value does not say it was cut")
	}
}

func TestCheck(t *testing.T) {
	many := make([]string, MaxListItems+1)
	hugeHeaders := map[string]string{}
	for i := range 300 {
		hugeHeaders[strings.Repeat("h", 200)+string(rune('a'+i%26))+strings.Repeat("z", i)] = strings.Repeat("v", MaxTextBytes)
	}
	tests := []struct {
		name string
		o    Observed
		want string
	}{
		{"fine", Observed{ResolvedIPs: []string{"192.0.2.1"}, DNS: []DNSObservation{{Answers: []string{"a"}}}}, ""},
		{"resolved ips", Observed{ResolvedIPs: many}, "observed.resolved_ips has 257 entries, over the limit of 256"},
		{"answers", Observed{DNS: []DNSObservation{{}, {Answers: many}}}, "observed.dns[1].answers has 257 entries"},
		{"cnames", Observed{DNS: []DNSObservation{{CNAMEs: many}}}, "observed.dns[0].cnames has 257 entries"},
		{"dns servers", Observed{DNS: make([]DNSObservation, MaxListItems+1)}, "observed.dns has 257 entries"},
		{"steps", Observed{Steps: make([]StepObservation, MaxListItems+1)}, "observed.steps has 257 entries"},
		{"headers", Observed{Headers: hugeHeaders}, "observed.headers has 300 entries"},
		// Strings count as Bound will leave them: 255 answers of 1 KiB fit.
		{"long strings count cut", Observed{DNS: []DNSObservation{{Answers: slices.Repeat([]string{strings.Repeat("a", 5000)}, 255)}}}, ""},
		{"bytes", Observed{DNS: slices.Repeat([]DNSObservation{{Answers: slices.Repeat([]string{strings.Repeat("a", 2000)}, 200)}}, 2)},
			"observed holds 409600 bytes of text, over the limit of 262144"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(&Result{Observed: tc.o})
			if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("Check = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"now", now, ""},
		{"replayed after a six-day partition", now.Add(-6 * 24 * time.Hour), ""},
		{"just inside the skew", now.Add(MaxClockSkew), ""},
		{"1976", time.Date(1976, 1, 1, 0, 0, 0, 0, time.UTC), "1976-01-01T00:00:00Z is more than 7 days before this evaluator's clock (2026-12-07T12:00:00Z)"},
		{"a year ahead", now.AddDate(1, 0, 0), "2027-12-07T12:00:00Z is more than 5m0s ahead of this evaluator's clock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckTime(tc.t, now)
			if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("CheckTime = %q, want %q", got, tc.want)
			}
		})
	}
}

// A decoding error quotes at most a short prefix of the value at fault,
// however long it is.
func TestDecodeErrorsQuoteShortPrefixes(t *testing.T) {
	digits := strings.Repeat("7", 3_000_000)
	tests := []struct {
		name, body, want string
	}{
		{"huge integer", `{"v":1,"seq":` + digits + `}`, "seq: got JSON number 7777"},
		{"huge float", `{"results":[{"duration_seconds":` + digits + `e999}]}`, "got JSON number 7777"},
		{"long unknown field", `{"` + strings.Repeat("k", 100_000) + `":1}`, `unknown field "kkkk`},
		{"long time", `{"created":"` + strings.Repeat("2", 100_000) + `"}`, `time "2222`},
		{"long string for a number", `{"v":"` + strings.Repeat("s", 100_000) + `"}`, "v: got JSON string, want int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDecoder().Decode([]byte(tc.body))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if len(msg) > maxErrorBytes || !strings.Contains(msg, tc.want) {
				t.Fatalf("error of %d bytes, want at most %d containing %q: %.300s", len(msg), maxErrorBytes, tc.want, msg)
			}
			for _, c := range []string{"7", "k", "2"} {
				if strings.Contains(msg, strings.Repeat(c, MaxQuoteBytes+1)) {
					t.Fatalf("error quotes more than %d bytes of the value: %.300s", MaxQuoteBytes, msg)
				}
			}
		})
	}
}

// What a prober saw, however pathological, is made acceptable by Fit.
func TestFitPassesCheck(t *testing.T) {
	short := make([]string, MaxListItems+10)
	for i := range short {
		short[i] = "192.0.2.1"
	}
	long := slices.Repeat([]string{strings.Repeat("a", 2000)}, 150) // 150 KiB once cut
	headers := map[string]string{}
	for i := range MaxListItems + 5 {
		headers[strings.Repeat("h", i+1)] = "v"
	}
	r := Result{Reason: strings.Repeat("r", 5000), Observed: Observed{
		ResolvedIPs: short, Headers: headers, Steps: make([]StepObservation, MaxListItems+1),
		DNS: []DNSObservation{{Answers: short}, {Answers: long}, {Answers: long, CNAMEs: []string{"c."}}},
	}}
	if Check(&r) == "" {
		t.Fatal("the test result passes Check already")
	}
	Fit(&r)
	if msg := Check(&r); msg != "" {
		t.Fatalf("after Fit: %s", msg)
	}
	o := r.Observed
	if len(o.ResolvedIPs) != MaxListItems || len(o.Headers) != MaxListItems || o.Headers["h"] != "v" ||
		len(o.Steps) != MaxListItems || len(o.DNS[0].Answers) != MaxListItems || len(o.DNS[1].Answers) != 150 {
		t.Errorf("Fit did not keep the first entries: %d IPs, %d headers, %d answers", len(o.ResolvedIPs), len(o.Headers), len(o.DNS[0].Answers))
	}
	if len(o.DNS[2].Answers) != 0 || o.DNS[2].CNAMEs != nil || !strings.Contains(o.DNS[2].Error, "answers dropped") {
		t.Errorf("the last server's answers were not the ones dropped: %d answers, error %q", len(o.DNS[2].Answers), o.DNS[2].Error)
	}
}

// BenchmarkAdmit is what an evaluator adds per batch of 500 realistic
// results for the limits (compare BenchmarkIngest in alerting).
func BenchmarkAdmit(b *testing.B) {
	rs := httpResults(500)
	now := t0.Add(250 * time.Second) // the results span t0 to t0+499s
	oldest, latest := now.Add(-MaxResultAge), now.Add(MaxClockSkew)
	b.ReportAllocs()
	for b.Loop() {
		for i := range rs {
			if rs[i].Time.Before(oldest) || rs[i].Time.After(latest) {
				b.Fatal("out of range")
			}
			if msg := Admit(&rs[i]); msg != "" {
				b.Fatal(msg)
			}
		}
	}
}
