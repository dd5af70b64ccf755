// Package expositiontest is what tests of /metrics handlers share: the
// Accept headers Prometheus sends, a scrape as a client makes it, the
// comparison of two expositions, and the CPU a scrape costs. Tests only.
package expositiontest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The Accept headers Prometheus 2.x sends for each format it takes.
const (
	AcceptOpenMetrics = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	AcceptText        = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	AcceptProto       = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"
)

// Request is a GET /metrics accepting accept, and gzip when gz.
func Request(accept string, gz bool) *http.Request {
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", accept)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	return req
}

// Discard is a ResponseWriter that keeps nothing but the count of bytes
// written: a scrape's cost without the client's.
type Discard struct {
	H http.Header
	N int
}

func (w *Discard) Header() http.Header {
	if w.H == nil {
		w.H = http.Header{}
	}
	return w.H
}
func (w *Discard) WriteHeader(int)             {}
func (w *Discard) Write(b []byte) (int, error) { w.N += len(b); return len(b), nil }

// Scrape fetches h's metrics as a client asking accept (and gzip) would,
// unzipping, and returns the body and the response's Content-Type. It
// fails the test unless the answer is 200 and gzipped exactly when asked.
func Scrape(t testing.TB, h http.Handler, accept string, gz bool) ([]byte, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, Request(accept, gz))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	if enc := rec.Header().Get("Content-Encoding"); gz != (enc == "gzip") {
		t.Fatalf("asked gzip %v, got Content-Encoding %q", gz, enc)
	}
	if gz {
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

// SortedLines is an exposition's lines in order: two expositions of the
// same families, samples and helps have the same lines, whatever order
// their series come in.
func SortedLines(b []byte) []string {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	slices.Sort(lines)
	return lines
}

// Canonical parses an exposition of format and returns each family's
// help, type and samples as sorted lines: what two expositions must agree
// on to say the same.
func Canonical(t testing.TB, b []byte, format expfmt.Format) []string {
	t.Helper()
	dec := expfmt.NewDecoder(bytes.NewReader(b), format)
	var out []string
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode %s: %v", format, err)
		}
		out = append(out, fmt.Sprintf("%s %s %q", mf.GetName(), mf.GetType(), mf.GetHelp()))
		for _, m := range mf.Metric {
			var l []string
			for _, lp := range m.Label {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			slices.Sort(l)
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), strings.Join(l, ","), v))
		}
	}
	slices.Sort(out)
	return out
}

// LineDiff says which of two sorted line lists' lines only one has, at
// most ten of each.
func LineDiff(got, want []string) string {
	only := func(a, b []string) []string {
		var out []string
		for _, l := range a {
			if _, found := slices.BinarySearch(b, l); !found && len(out) < 10 {
				out = append(out, l)
			}
		}
		return out
	}
	return fmt.Sprintf("%d lines against %d\nonly got:  %q\nonly want: %q", len(got), len(want), only(got, want), only(want, got))
}

// CPUTime is the CPU the process has used, user and system, in
// nanoseconds: on a shared machine a scrape's wall time overstates it.
func CPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchScrape benchmarks h answering a scrape that accepts accept (and
// gzip when gz), reporting the CPU per scrape (cpu-ns/scrape: on a shared
// machine wall time overstates it) and the bytes sent (bytes/scrape).
func BenchScrape(b *testing.B, h http.Handler, accept string, gz bool) {
	req := Request(accept, gz)
	w := &Discard{}
	b.ReportAllocs()
	cpu0 := CPUTime()
	for b.Loop() {
		w.N = 0
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(CPUTime()-cpu0)/float64(b.N), "cpu-ns/scrape")
	b.ReportMetric(float64(w.N), "bytes/scrape")
}
