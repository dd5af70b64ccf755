package probes

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPSCertificates runs HTTP checks against httptest TLS servers
// presenting certificates made for the test: valid, expired, expiring in 5
// days, for another host, and from an unknown authority.
func TestHTTPSCertificates(t *testing.T) {
	pki := newTestPKI(t)
	serveMax := func(cert tls.Certificate, maxVersion uint16) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure hello") }))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	serve := func(cert tls.Certificate) string { return serveMax(cert, 0) }
	valid, expired, soon, wrongHost := serve(pki.Valid), serve(pki.Expired), serve(pki.Soon), serve(pki.WrongHost)
	tls12 := serveMax(pki.Valid, tls.VersionTLS12)
	ca := fmt.Sprintf("tls: {ca_file: %q}", pki.CAFile)
	tests := []struct {
		name, url, extra, reason string
	}{
		{"valid, trusted CA", valid, ca + ", expect: {body_contains: secure, cert_min_days: 30}", ""},
		{"unknown authority", valid, "", "certificate signed by unknown authority \"" + testCAName + "\""},
		{"expired", expired, ca, "certificate expired on "},
		{"expiring soon", soon, ca + ", expect: {cert_min_days: 14}", "certificate expires in 4 days"},
		{"soon but enough", soon, ca + ", expect: {cert_min_days: 3}", ""},
		{"wrong host", wrongHost, ca, "certificate is valid for [other.test], not 127.0.0.1"},
		{"insecure skips verification", expired, "tls: {insecure_skip_verify: true}", ""},
		{"min version met", valid, fmt.Sprintf("tls: {ca_file: %q, min_version: '1.3'}", pki.CAFile), ""},
		{"min version above the server's", tls12, fmt.Sprintf("tls: {ca_file: %q, min_version: '1.3'}", pki.CAFile), "server does not offer TLS 1.3 or newer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf("url: '%s/'", tc.url)
			if tc.extra != "" {
				body += ", " + tc.extra
			}
			r := probeOnce(t, "- id: s\n  http: {"+body+"}\n", nil, Options{})
			if tc.reason == "" {
				wantOK(t, r)
				if r.Observed.TLS == nil || r.Observed.TLS.NotAfter.IsZero() || r.Phases.TLS <= 0 {
					t.Errorf("TLS observation %+v, phase %v: want the certificate and handshake time", r.Observed.TLS, r.Phases.TLS)
				}
				return
			}
			wantFail(t, r, tc.reason)
			if strings.Contains(tc.reason, "expires in") && (r.Observed.TLS == nil || r.Observed.TLS.NotAfter.IsZero()) {
				t.Errorf("no certificate evidence: %+v", r.Observed.TLS)
			}
		})
	}
}
