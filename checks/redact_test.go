package checks

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestRedactorForms(t *testing.T) {
	t.Parallel()
	const secret = `s3cr+t/pa ss"wörd?`
	const pair = "ops:" + secret
	redact := NewRedactor([]string{secret, pair})
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	q := strconv.Quote(secret)
	doc := `{"user":"ops","password":"` + secret + `"}`
	tests := map[string]string{
		"as written":            secret,
		"quoted":                q[1 : len(q)-1],
		"query escaped":         url.QueryEscape(secret),
		"path escaped":          url.PathEscape(secret),
		"base64":                b64(base64.StdEncoding, secret),
		"base64 unpadded":       b64(base64.RawStdEncoding, secret),
		"base64url":             b64(base64.URLEncoding, secret),
		"base64url unpadded":    b64(base64.RawURLEncoding, secret),
		"basic auth":            "Basic " + b64(base64.StdEncoding, pair),
		"basic auth, base64url": b64(base64.RawURLEncoding, pair),
		"bearer":                "Bearer " + secret,
	}
	for name, form := range tests {
		t.Run(name, func(t *testing.T) {
			in := "seen: " + form + " (end)"
			got := redact(in)
			if !strings.Contains(got, "<redacted>") || strings.Contains(got, form) {
				t.Errorf("redact(%q) = %q", in, got)
			}
		})
	}
	// Inside a longer base64 text, at each alignment.
	for pad := range 3 {
		enc := b64(base64.StdEncoding, strings.Repeat("x", pad)+doc)
		got := redact(enc)
		if !strings.Contains(got, "<redacted>") {
			t.Errorf("alignment %d: the password inside %q was not found", pad, enc)
		}
		if dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(got, "<redacted>", "")); err == nil && strings.Contains(string(dec), secret) {
			t.Errorf("alignment %d: %q still decodes to the secret", pad, got)
		}
	}
}

// Text without a secret is returned as it is, without allocating: the
// redactor runs on every string of every result.
func TestRedactorPassesCleanTextThrough(t *testing.T) {
	secrets := make([]string, 20)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("secret-%02d-0a1b2c3d4e5f", i)
	}
	redact := NewRedactor(secrets)
	clean := "status 503, want 200; header X-Served-By = \"web-3\", want match ^api-"
	if got := redact(clean); got != clean {
		t.Fatalf("redact changed clean text: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = redact(clean) }); n != 0 {
		t.Errorf("redact of clean text allocates %v times", n)
	}
	if got := redact("a" + secrets[7] + "b"); got != "a<redacted>b" {
		t.Errorf("redact = %q", got)
	}
}

func BenchmarkRedactor(b *testing.B) {
	secrets := make([]string, 20)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("secret-%02d-0a1b2c3d4e5f", i)
	}
	redact := NewRedactor(secrets)
	inputs := map[string]string{
		"clean reason": "status 503, want 200; header X-Served-By = \"web-3\", want match ^api-; body does not contain \"Welcome\"",
		"address":      "203.0.113.10:443",
		"secret":       "status 401, body: bad credentials Bearer " + secrets[3],
	}
	for name, in := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = redact(in)
			}
		})
	}
}
