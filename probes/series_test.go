package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// seriesToken is the bearer token the series tests load from the
// environment; the fake servers reflect it to prove it is redacted.
const seriesToken = "s3cr3t-series-token"

// promAnswers are the fake Prometheus server's responses, by query.
var promAnswers = map[string]struct {
	status int
	body   string
}{
	"one":    {200, promVector(`{"metric":{"job":"api"},"value":[1700000000.123,"123.4"]}`)},
	"scalar": {200, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`},
	"none":   {200, promVector()},
	"many": {200, promVector(`{"metric":{"job":"a"},"value":[1700000000,"1"]}`,
		`{"metric":{"job":"b"},"value":[1700000000,"2"]}`, `{"metric":{"job":"c"},"value":[1700000000,"3"]}`)},
	"matrix": {200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"],[1700000015,"2"]]}]}}`},
	"nan":    {200, promVector(`{"metric":{},"value":[1700000000,"NaN"]}`)},
	"inf":    {200, promVector(`{"metric":{},"value":[1700000000,"+Inf"]}`)},
	"bad":    {400, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected end of input"}`},
	"down":   {503, "upstream\n  unavailable\n"},
	"big":    {200, promVector(`{"metric":{"pad":"` + strings.Repeat("x", 2<<20) + `"},"value":[1700000000,"1"]}`)},
}

func promVector(samples ...string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
}

// promServer is a fake Prometheus HTTP API on 127.0.0.1. /api/v1/query
// takes the query from a POST form, as the client sends it, or from the
// URL of a GET, as the client retries after a 405; it answers with
// promAnswers and a few queries that look at the request.
func promServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || (r.Method != http.MethodPost && r.Method != http.MethodGet) {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch q := r.Form.Get("query"); q {
		case "slow":
			<-r.Context().Done()
		case "get-only":
			if r.Method == http.MethodPost {
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			fmt.Fprint(w, promVector(`{"metric":{},"value":[1700000000,"7"]}`))
		case "whoami":
			if got := r.Header.Get("Authorization"); got != "Bearer "+seriesToken {
				http.Error(w, "unauthorized: got "+got, http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, promVector(`{"metric":{},"value":[1700000000,"1"]}`))
		case "reflect-api", "reflect-5xx":
			msg := "denied for " + r.Header.Get("Authorization")
			if q == "reflect-5xx" {
				http.Error(w, msg, http.StatusBadGateway)
				return
			}
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "execution", "error": msg})
		default:
			a, ok := promAnswers[q]
			if !ok {
				http.Error(w, "unknown query "+q, http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.status)
			fmt.Fprint(w, a.body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// seriesEnv is the environment the series checks load their token from.
var seriesEnv = map[string]string{"SERIES_TOKEN": seriesToken}

// promCheck is a series check of query at url. Its timeout is long, so
// that a loaded machine never turns an expected answer into a timeout; the
// query "slow", whose server never answers, gets 200ms.
func promCheck(url, query string) string {
	timeout := "10s"
	if query == "slow" {
		timeout = "200ms"
	}
	return fmt.Sprintf("- id: rps\n  timeout: %s\n  series:\n    prometheus:\n      url: %s\n      query: %q\n      bearer_token: ${SERIES_TOKEN}\n", timeout, url, query)
}

func TestSeriesPrometheus(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after the server is closed
	srv := promServer(t)
	tests := []struct {
		name   string
		query  string
		want   float64
		reason string // empty: must pass with want
	}{
		{"one-sample vector", "one", 123.4, ""},
		{"scalar", "scalar", 42, ""},
		{"GET after 405", "get-only", 7, ""},
		{"bearer token sent", "whoami", 1, ""},
		{"no series", "none", 0, "query returned no series"},
		{"several series", "many", 0, "query returned 3 series; want one (wrap it in sum())"},
		{"matrix", "matrix", 0, "query returned a matrix; want an instant vector or scalar"},
		{"NaN", "nan", 0, "value is NaN"},
		{"infinite", "inf", 0, "value is +Inf"},
		{"API error", "bad", 0, `query failed: bad_data: invalid parameter "query": 1:4: parse error: unexpected end of input`},
		{"server error", "down", 0, "query failed: status 503: upstream unavailable"},
		{"oversized", "big", 0, "body larger than 1MiB"},
		{"timeout", "slow", 0, "timed out after 200ms waiting for the response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, promCheck(srv.URL, tc.query), seriesEnv, Options{Region: "test"})
			if r.Type != "series" || r.Check != "rps" {
				t.Errorf("identity = %q %q", r.Type, r.Check)
			}
			if tc.reason != "" {
				wantFail(t, r, tc.reason)
				if r.Observed.Value != nil {
					t.Errorf("failed probe has value %v", *r.Observed.Value)
				}
				return
			}
			wantOK(t, r)
			if r.Observed.Value == nil || *r.Observed.Value != tc.want {
				t.Fatalf("value = %v, want %v", r.Observed.Value, tc.want)
			}
			if want := fmt.Sprintf("value %v", tc.want); r.Reason != want {
				t.Errorf("reason = %q, want %q", r.Reason, want)
			}
			if r.Observed.StatusCode != 200 || r.Observed.ConnectedAddr == "" {
				t.Errorf("observed = %+v, want status 200 and the connected address", r.Observed)
			}
		})
	}
}

// A server may put the credential it was sent in its error message; the
// reason must not carry it, whether the error came in the API envelope or
// in the body of a bare 5xx.
func TestSeriesTokenNeverInReason(t *testing.T) {
	srv := promServer(t)
	for _, query := range []string{"reflect-api", "reflect-5xx"} {
		t.Run(query, func(t *testing.T) {
			r := probeOnce(t, promCheck(srv.URL, query), seriesEnv, Options{Region: "test"})
			wantFail(t, r, "denied for Bearer <redacted>")
			if strings.Contains(r.Reason, seriesToken) || strings.Contains(r.Reason, seriesToken[:8]) {
				t.Fatalf("reason leaks the token: %q", r.Reason)
			}
		})
	}
}

func TestSeriesConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for name, check := range map[string]string{
		"prometheus": promCheck("http://"+addr, "one"),
		"http":       jsonCheck("http://"+addr+"/stats", "$.rps"),
	} {
		t.Run(name, func(t *testing.T) {
			r := probeOnce(t, check, seriesEnv, Options{Region: "test"})
			wantFail(t, r, "connect "+addr+": connection refused")
		})
	}
}

// The probe stops when its caller's context does, long before the check's
// timeout.
func TestSeriesHonoursCallerContext(t *testing.T) {
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client leave only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	check := strings.Replace(promCheck(srv.URL, "up"), "10s", "1m", 1) + "  interval: 2m\n"
	cfg, c := loadOne(t, check, seriesEnv)
	p, err := New(c, Options{Redact: cfg.Redactor()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	wantFail(t, p.Probe(ctx), "canceled while waiting for the response")
}

// detail removes a secret before it cuts a message, so that no prefix of
// one survives the cut.
func TestSeriesDetailRedactsBeforeCutting(t *testing.T) {
	redact := func(s string) string { return strings.ReplaceAll(s, seriesToken, "<redacted>") }
	msg := strings.Repeat("x", maxDetail-5) + " " + seriesToken + " tail"
	got := detail(msg, redact)
	if strings.Contains(got, seriesToken[:4]) {
		t.Fatalf("detail = %q, leaks a prefix of the token", got)
	}
	if !strings.HasSuffix(got, "…") || len(got) > maxDetail {
		t.Fatalf("detail = %q (%d bytes), want at most %d bytes and a trailing …", got, len(got), maxDetail)
	}
}

// jsonCheck is a series check reading path from the JSON at url, with a
// timeout long enough for a loaded machine.
func jsonCheck(url, path string) string {
	return fmt.Sprintf("- id: stats\n  timeout: 10s\n  series:\n    http:\n      url: %s\n      json: %q\n      headers: {X-Tenant: blue}\n      bearer_token: ${SERIES_TOKEN}\n", url, path)
}

func TestSeriesHTTPJSON(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+seriesToken || r.Header.Get("X-Tenant") != "blue" || r.Method != http.MethodGet {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/num":
			fmt.Fprint(w, `{"rps": 12.5, "nested": {"list": [1, 2, 3e3]}}`)
		case "/str":
			fmt.Fprint(w, `{"rps": " 12.5 "}`)
		case "/odd":
			fmt.Fprint(w, `{"word": "abc", "nan": "NaN", "obj": {"a": 1}, "null": null, "yes": true}`)
		case "/garbage":
			fmt.Fprint(w, "<html>oops</html>")
		case "/big":
			fmt.Fprintf(w, `{"rps": 1, "pad": "%s"}`, strings.Repeat("x", 1<<20))
		case "/down":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, path, json string
		want             float64
		reason           string // empty: must pass with want
	}{
		{"number", "/num", "$.rps", 12.5, ""},
		{"nested number", "/num", "$.nested.list[2]", 3000, ""},
		{"numeric string", "/str", "$.rps", 12.5, ""},
		{"word", "/odd", "$.word", 0, `$.word is a string "abc", want a number`},
		{"NaN string", "/odd", "$.nan", 0, `$.nan is a string "NaN", want a finite number`},
		{"object", "/odd", "$.obj", 0, "$.obj is an object with 1 keys, want a number"},
		{"null", "/odd", "$.null", 0, "$.null is null, want a number"},
		{"boolean", "/odd", "$.yes", 0, "$.yes is true, want a number"},
		{"missing path", "/num", "$.rpm", 0, `$.rpm: no value: no key "rpm"`},
		{"garbage", "/garbage", "$.rps", 0, "body is not JSON: invalid character '<'"},
		{"oversized", "/big", "$.rps", 0, "body larger than 1MiB"},
		{"status", "/down", "$.rps", 0, "status 503, want 2xx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, jsonCheck(srv.URL+tc.path, tc.json), seriesEnv, Options{Region: "test"})
			if tc.reason != "" {
				wantFail(t, r, tc.reason)
				if r.Observed.Value != nil {
					t.Errorf("failed probe has value %v", *r.Observed.Value)
				}
				return
			}
			wantOK(t, r)
			if r.Observed.Value == nil || *r.Observed.Value != tc.want {
				t.Fatalf("value = %v, want %v", r.Observed.Value, tc.want)
			}
			if r.Observed.StatusCode != 200 {
				t.Errorf("status = %d, want 200", r.Observed.StatusCode)
			}
		})
	}
}

// The token goes only to the origin it was configured for, not to where
// that origin redirects.
func TestSeriesTokenStaysWithItsOrigin(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "" {
			http.Error(w, "got Authorization "+got, http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"rps": 3}`)
	}))
	t.Cleanup(elsewhere.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+seriesToken {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, elsewhere.URL+"/stats", http.StatusFound)
	}))
	t.Cleanup(origin.Close)
	r := probeOnce(t, jsonCheck(origin.URL+"/stats", "$.rps"), seriesEnv, Options{Region: "test"})
	wantOK(t, r)
	if *r.Observed.Value != 3 {
		t.Errorf("value = %v, want 3", *r.Observed.Value)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 123.4: "123.4", 1234567: "1234567", -0.5: "-0.5", 1e21: "1e+21", 1e-7: "1e-07"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}
