package exposition

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/outposthq/outpost/probes/exposition/expositiontest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// table is a Source of a gauge and a counter family with awkward values:
// what it writes must be what its Collect sends, through expfmt.
type table struct {
	gauge, counter *prometheus.Desc
	rows           []row
}

type row struct {
	name, zone string
	v          float64
}

func newTable() *table {
	return &table{
		gauge:   prometheus.NewDesc("test_value", "A value; help with \\ backslash,\nnewline and \"quotes\".", []string{"name", "zone"}, nil),
		counter: prometheus.NewDesc("test_events_total", "Events.", []string{"name"}, nil),
		rows: []row{{"a", "z1", 0}, {"b", "z1", 1}, {"c", "z2", -1}, {`q"uote\back` + "\nnl", "z2", 0.1}, {"e", "z1", 1e21},
			{"f", "z1", 123456789}, {"g", "z2", math.Inf(1)}, {"h", "z2", math.Inf(-1)}, {"i", "z2", 5e-324}},
	}
}

func (t *table) Describe(ch chan<- *prometheus.Desc) { ch <- t.gauge; ch <- t.counter }
func (t *table) Collect(ch chan<- prometheus.Metric) {
	for _, r := range t.rows {
		ch <- prometheus.MustNewConstMetric(t.gauge, prometheus.GaugeValue, r.v, r.name, r.zone)
	}
	for _, r := range t.rows {
		if r.v >= 0 && !math.IsInf(r.v, 0) {
			ch <- prometheus.MustNewConstMetric(t.counter, prometheus.CounterValue, r.v, r.name)
		}
	}
}

func (t *table) WriteMetrics(w *Writer) {
	w.Family("test_value", "A value; help with \\ backslash,\nnewline and \"quotes\".", Gauge)
	for _, r := range t.rows {
		w.Sample(r.v, MakeLabels("name", r.name), MakeLabels("zone", r.zone))
	}
	w.Family("test_events_total", "Events.", Counter)
	for _, r := range t.rows {
		if r.v >= 0 && !math.IsInf(r.v, 0) {
			w.Sample(r.v, MakeLabels("name", r.name))
		}
	}
	w.Family("test_empty", "Never written: no samples.", Gauge)
}

func get(t *testing.T, r *Registry, accept, encoding, query string) (body []byte, contentType string) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics"+query, nil)
	req.Header.Set("Accept", accept)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	Handler(r).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	body = rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return body, rec.Header().Get("Content-Type")
}

// expected is what expfmt makes of everything r gathers, in format.
func expected(t *testing.T, r *Registry, format expfmt.Format) []byte {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		c.Close()
	}
	return buf.Bytes()
}

func lines(b []byte) []string {
	l := strings.Split(string(b), "\n")
	slices.Sort(l)
	return l
}

// TestHandlerFormats: each format Prometheus negotiates comes back with its
// Content-Type, gzipped when asked, and says exactly what expfmt would say
// of the gathered families: byte for byte per line in the text formats,
// family for family in protobuf. Ordinary collectors are served next to
// Sources.
func TestHandlerFormats(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(newTable(), collectors.NewGoCollector())
	for _, tc := range []struct {
		name, accept, encoding string
		want                   expfmt.FormatType
	}{
		{"text", expositiontest.AcceptText, "", expfmt.TypeTextPlain},
		{"text gzip", expositiontest.AcceptText, "gzip", expfmt.TypeTextPlain},
		{"openmetrics", expositiontest.AcceptOpenMetrics, "", expfmt.TypeOpenMetrics},
		{"openmetrics gzip", expositiontest.AcceptOpenMetrics, "br;q=1.0, gzip;q=0.8", expfmt.TypeOpenMetrics},
		{"protobuf", expositiontest.AcceptProto, "", expfmt.TypeProtoDelim},
		{"protobuf gzip", expositiontest.AcceptProto, "gzip", expfmt.TypeProtoDelim},
		{"no Accept", "", "", expfmt.TypeTextPlain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := get(t, r, tc.accept, tc.encoding, "")
			format := expfmt.Format(ct)
			if format.FormatType() != tc.want {
				t.Fatalf("Content-Type %q, want a %v", ct, tc.want)
			}
			if bytes.Contains(body, []byte("test_empty")) {
				t.Error("a family without samples was written")
			}
			dec := expfmt.NewDecoder(bytes.NewReader(body), format)
			names := map[string]*dto.MetricFamily{}
			if format.FormatType() != expfmt.TypeOpenMetrics {
				for {
					mf := &dto.MetricFamily{}
					if err := dec.Decode(mf); err == io.EOF {
						break
					} else if err != nil {
						t.Fatalf("%s does not parse: %v\n%s", ct, err, body)
					}
					names[mf.GetName()] = mf
				}
				if n, m := len(names["test_value"].GetMetric()), len(names["test_events_total"].GetMetric()); n != 9 || m != 6 || names["go_goroutines"] == nil {
					t.Fatalf("parsed %d test_value and %d test_events_total series, go_goroutines %v; want 9, 6 and present", n, m, names["go_goroutines"] != nil)
				}
			}
			if format.FormatType() == expfmt.TypeProtoDelim {
				return
			}
			want := expected(t, r, format)
			// go_* values move between two gathers; compare the rest.
			drop := func(ls []string) []string {
				return slices.DeleteFunc(ls, func(l string) bool { return strings.Contains(l, "go_") })
			}
			if g, w := drop(lines(body)), drop(lines(want)); !slices.Equal(g, w) {
				t.Errorf("got\n%s\nwant\n%s", body, want)
			}
			if format.FormatType() == expfmt.TypeOpenMetrics && !bytes.HasSuffix(body, []byte("\n# EOF\n")) {
				t.Error("no # EOF at the end")
			}
		})
	}
}

// TestHandlerNameFilter: name[] narrows the families, as promhttp does.
func TestHandlerNameFilter(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(newTable(), collectors.NewGoCollector())
	body, _ := get(t, r, expositiontest.AcceptText, "", "?name[]=test_value")
	if !bytes.Contains(body, []byte("test_value{")) || bytes.Contains(body, []byte("go_goroutines")) || bytes.Contains(body, []byte("test_events_total")) {
		t.Fatalf("name[]=test_value gave:\n%s", body)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=1.0, *;q=0.5": true, "gzip;q=0": false,
		"gzip; q=0.000": false, "identity": false, "x-gzip": false, "br, gzip ; q=0.5": true,
	} {
		if got := acceptsGzip(v); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestRegistryRefusesClashes: a Source whose family an ordinary collector
// already has is refused at Register, as one registry would refuse it; so
// is a second Source with the same families; Unregister stops serving a
// Source and lets it register again.
func TestRegistryRefusesClashes(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_value", Help: "other help"}))
	if err := r.Register(newTable()); err == nil {
		t.Fatal("a Source clashing with a registered gauge was accepted")
	}

	r = NewRegistry()
	tb := newTable()
	r.MustRegister(tb)
	if err := r.Register(newTable()); err == nil {
		t.Fatal("a second Source with the same families was accepted")
	}
	if !r.Unregister(tb) {
		t.Fatal("Unregister of the Source")
	}
	if body, _ := get(t, r, expositiontest.AcceptText, "", ""); bytes.Contains(body, []byte("test_value")) {
		t.Fatalf("an unregistered Source is still served:\n%s", body)
	}
	if r.Unregister(tb) {
		t.Fatal("Unregister of a Source not registered reported true")
	}
	if err := r.Register(tb); err != nil {
		t.Fatalf("registering again after Unregister: %v", err)
	}
}

// TestHandlerPassesPromtool lints both text formats with Prometheus's own
// linter (CI installs promtool; locally the test skips without it).
func TestHandlerPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found in CI")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	r := NewRegistry()
	r.MustRegister(newTable())
	body, _ := get(t, r, expositiontest.AcceptText, "", "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, body)
	}
}
