package probes

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestHTTPCEL runs expect.cel against a real server: each variable,
// combination with the other expect keys, and the reason naming the
// expression and the values that made it false.
func TestHTTPCEL(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Add("X-Region", "us-east")
			w.Header().Add("X-Region", "eu-west")
			fmt.Fprint(w, `{"status":"ok","version":3,"items":[{"id":"a","ready":true},{"id":"b","ready":false}],"lag_seconds":12.5}`)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "maintenance until 14:00")
		case "/secret":
			fmt.Fprint(w, `{"token":"s3cr3t-token-value-0001","ok":false}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name, path, expect string
		reason             string // empty: must pass
	}{
		{"status and json", "/ok", `{cel: 'status == 200 && json.status == "ok" && json.version >= 3'}`, ""},
		{"exists over a list", "/ok", `{cel: 'json.items.exists(i, i.id == "a" && i.ready)'}`, ""},
		{"all over a list fails", "/ok", `{cel: 'json.items.all(i, i.ready)'}`,
			`cel: json.items.all(i, i.ready) is false (json.items = [{"id":"a","ready":true},{"id":"b","ready":false}])`},
		{"comparison beyond equality", "/ok", `{cel: 'json.lag_seconds < 10.0'}`, `cel: json.lag_seconds < 10.0 is false (json.lag_seconds = 12.5)`},
		{"headers lower-cased and joined", "/ok", `{cel: 'headers["x-region"] == "us-east, eu-west" && headers["content-type"].startsWith("application/json")'}`, ""},
		{"timings", "/ok", `{cel: 'timings.total >= 0.0 && timings.total < 60.0 && "connect" in timings'}`, ""},
		{"body", "/down", `{status: [503], cel: 'body.matches("until [0-9]{2}:[0-9]{2}") && json == null'}`, ""},
		{"failing values named", "/down", `{status: [503], cel: 'status == 503 && body.contains("over")'}`,
			`cel: status == 503 && body.contains("over") is false (status = 503, body = "maintenance until 14:00")`},
		{"combines with other keys", "/down", `{cel: 'status == 503'}`, "status 503, want 2xx"},
		{"both reasons", "/ok", `{status: [201], cel: 'status == 201'}`, "status 200, want 201; cel: status == 201 is false (status = 200)"},
		{"runtime error", "/ok", `{cel: 'json.missing.size() > 0'}`, `cel: json.missing.size() > 0: no such key: missing`},
		{"null json", "/down", `{status: [503], cel: 'json.ok'}`, `cel: json.ok:`},
		{"secret values redacted", "/secret", `{cel: 'json.ok || json.token == "x"'}`, `json.token = "<redacted>"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, fmt.Sprintf("- id: t\n  timeout: 30s\n  interval: 1m\n  http:\n    url: %s%s\n    headers: {X-Token: \"${TOKEN}\"}\n    expect: %s\n", srv.URL, tc.path, tc.expect),
				map[string]string{"TOKEN": "s3cr3t-token-value-0001"}, Options{Region: "test"})
			if tc.reason == "" {
				wantOK(t, r)
				return
			}
			wantFail(t, r, tc.reason)
			if strings.Contains(r.Reason, "s3cr3t") {
				t.Errorf("reason leaks the secret: %s", r.Reason)
			}
		})
	}
}

// TestHTTPCELCostBoundsTheProbe: an expression that would read a 1 MiB
// body a thousand times is stopped by the cost limit.
func TestHTTPCELCostBoundsTheProbe(t *testing.T) {
	body := strings.Repeat("a", 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(srv.Close)
	expr := `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, body.contains("b") == false)))`
	r := probeOnce(t, fmt.Sprintf("- id: t\n  timeout: 30s\n  interval: 1m\n  http:\n    url: %s/\n    expect: {cel: '%s'}\n", srv.URL, expr), nil, Options{Region: "test"})
	wantFail(t, r, "cost limit exceeded")
}
