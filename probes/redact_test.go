package probes

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A server that reflects the credentials it was sent, in every encoding
// they travel in, into the headers a check asserts on and its body: no
// form of a secret reaches the result the agent ships.
func TestHTTPSecretsInEveryEncodingNeverLeak(t *testing.T) {
	const user = "ops"
	const password = "p@ss w/rd+Zx9?~é" // differs in every encoding
	const token = "tok/9f8e+7d6c?5b4a"
	basic := user + ":" + password
	doc := `{"user":"` + user + `","password":"` + password + `","n":1}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Echo", r.Header.Get("Authorization"))
		h.Set("X-Std", base64.StdEncoding.EncodeToString([]byte(password)))
		h.Set("X-Url", base64.RawURLEncoding.EncodeToString([]byte(password)))
		h.Set("X-Token-B64", base64.StdEncoding.EncodeToString([]byte(token)))
		h.Set("X-Basic-Url", base64.URLEncoding.EncodeToString([]byte(basic)))
		h.Set("X-Embedded", base64.StdEncoding.EncodeToString([]byte(doc)))
		h.Set("X-Path", "/u/"+url.PathEscape(password)+"/x")
		h.Set("Location", "/next?p="+url.QueryEscape(password)+"&t="+url.QueryEscape(token))
		w.WriteHeader(http.StatusFound)
		fmt.Fprintf(w, `{"auth":%q,"b64":%q}`, r.Header.Get("Authorization"), base64.StdEncoding.EncodeToString([]byte(password)))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"PASSWORD": password, "TOKEN": token}

	forms := func(s string) []string {
		return []string{s, url.QueryEscape(s), url.PathEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
	}
	passwordForms := append(forms(password), forms(basic)...)
	headers := `{X-Echo: '.', X-Std: '.', X-Url: '.', X-Token-B64: '.', X-Basic-Url: '.', X-Embedded: '.', X-Path: '^/u/', Location: 'p='}`
	tests := []struct {
		name, auth string
		secrets    []string
		// redacted are the headers that held a form of the secret.
		redacted []string
	}{
		{"basic auth", "basic_auth: {username: " + user + ", password: '${PASSWORD}'}", passwordForms,
			[]string{"X-Echo", "X-Std", "X-Url", "X-Basic-Url", "X-Embedded", "X-Path", "Location"}},
		{"bearer token", "bearer_token: '${TOKEN}'", forms(token), []string{"X-Echo", "X-Token-B64", "Location"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := fmt.Sprintf("- id: t\n  http: {url: '%s/', %s, follow_redirects: false, expect: {status: [302], headers: %s}}\n", srv.URL, tc.auth, headers)
			r := probeOnce(t, check, env, Options{})
			wantOK(t, r) // the expectations matched what the server sent
			body, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.secrets {
				if strings.Contains(string(body), s) {
					t.Errorf("%q, a form of a secret, is in the result: %s", s, body)
				}
			}
			for _, name := range tc.redacted {
				if v := r.Observed.Headers[name]; !strings.Contains(v, "<redacted>") {
					t.Errorf("header %s = %q, want the secret shown as <redacted>", name, v)
				}
			}
		})
	}

	// A failing check quotes what the server sent in its reason.
	check := fmt.Sprintf("- id: t\n  http: {url: '%s/', basic_auth: {username: %s, password: '${PASSWORD}'}, follow_redirects: false, expect: {status: [200], headers: {X-Echo: '^nothing$', X-Embedded: '^nothing$'}}}\n", srv.URL, user)
	r := probeOnce(t, check, env, Options{})
	if r.OK {
		t.Fatal("probe passed, want a failure")
	}
	for _, s := range passwordForms {
		if strings.Contains(r.Reason, s) {
			t.Errorf("%q, a form of a secret, is in the reason %q", s, r.Reason)
		}
	}
	if !strings.Contains(r.Reason, "X-Echo = \"Basic <redacted>\"") {
		t.Errorf("reason = %q, want the echoed Authorization shown as <redacted>", r.Reason)
	}
}
