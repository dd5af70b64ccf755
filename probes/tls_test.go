package probes

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
	"go.uber.org/goleak"
)

// startTLSServer serves cert on 127.0.0.1:0, offering at most maxVersion
// (0 means Go's default, TLS 1.3).
func startTLSServer(t *testing.T, cert tls.Certificate, maxVersion uint16) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		MaxVersion:   maxVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Reading drives the handshake and then waits for the client to close.
	return startNetServer(t, ln, silent)
}

func TestTLSProbe(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last, after the servers stop

	pki := newTestPKI(t)
	valid := startTLSServer(t, pki.Valid, 0)
	tls12 := startTLSServer(t, pki.Valid, tls.VersionTLS12)
	expired := startTLSServer(t, pki.Expired, 0)
	soon := startTLSServer(t, pki.Soon, 0)
	wrongHost := startTLSServer(t, pki.WrongHost, 0)
	plain := startNetServer(t, listenTCP(t), greeting("SSH-2.0-OpenSSH_9.6\r\n"))
	quiet := startNetServer(t, listenTCP(t), silent)
	refused := closedAddr(t)
	_, validPort, _ := net.SplitHostPort(valid)
	ca := "ca_file: " + pki.CAFile

	validDays := fmt.Sprintf("certificate valid for %d more days", int(time.Until(pki.Valid.Leaf.NotAfter).Hours()/24))
	tests := []struct {
		name       string
		timeout    string
		spec       string // the tls: block, as a YAML flow mapping
		wantOK     bool
		wantReason string // exact, or a prefix when it ends in "..."
		wantCert   string // Observed.TLS.Subject; "" means no observation
	}{
		{name: "valid with ca_file", spec: "{address: " + valid + ", " + ca + "}", wantOK: true,
			wantReason: "TLS 1.3, " + validDays, wantCert: "outpost.test"},
		{name: "valid by host name", spec: "{address: outpost.test:" + validPort + ", " + ca + "}", wantOK: true,
			wantReason: "TLS 1.3, " + validDays, wantCert: "outpost.test"},
		{name: "server capped at 1.2", spec: "{address: " + tls12 + ", " + ca + "}", wantOK: true,
			wantReason: "TLS 1.2, " + validDays, wantCert: "outpost.test"},
		{name: "min_version 1.3 against a 1.2 server", spec: "{address: " + tls12 + ", " + ca + ", min_version: '1.3'}",
			wantReason: "TLS handshake failed: server does not offer TLS 1.3 or newer"},
		{name: "expired", spec: "{address: " + expired + ", " + ca + "}",
			wantReason: "certificate expired on " + pki.Expired.Leaf.NotAfter.UTC().Format("2006-01-02"), wantCert: "expired.outpost.test"},
		{name: "expiring before cert_min_days", spec: "{address: " + soon + ", " + ca + ", expect: {cert_min_days: 14}}",
			wantReason: "certificate expires in ...", wantCert: "soon.outpost.test"},
		{name: "expiring after cert_min_days", spec: "{address: " + soon + ", " + ca + ", expect: {cert_min_days: 3}}", wantOK: true,
			wantReason: "TLS 1.3, certificate valid for ...", wantCert: "soon.outpost.test"},
		{name: "unknown authority", spec: "{address: " + valid + "}",
			wantReason: `certificate signed by unknown authority "` + testCAName + `"`, wantCert: "outpost.test"},
		{name: "insecure_skip_verify accepts an untrusted certificate", spec: "{address: " + valid + ", insecure_skip_verify: true}", wantOK: true,
			wantReason: "TLS 1.3, " + validDays + " (not verified: insecure_skip_verify)", wantCert: "outpost.test"},
		{name: "hostname mismatch", spec: "{address: " + wrongHost + ", " + ca + ", server_name: outpost.test}",
			wantReason: "certificate is valid for [other.test], not outpost.test", wantCert: "other.test"},
		{name: "server_name overrides the address host", spec: "{address: " + valid + ", " + ca + ", server_name: outpost.test}", wantOK: true,
			wantReason: "TLS 1.3, " + validDays, wantCert: "outpost.test"},
		{name: "not a TLS server", spec: "{address: " + plain + ", " + ca + "}",
			wantReason: "TLS handshake failed: first record does not look like a TLS handshake"},
		{name: "server never answers the handshake", timeout: "200ms", spec: "{address: " + quiet + ", " + ca + "}",
			wantReason: "timed out after 200ms during the TLS handshake"},
		{name: "connection refused", spec: "{address: " + refused + ", " + ca + "}",
			wantReason: "connect " + refused + ": connection refused"},
		{name: "address outside expected prefixes", spec: "{address: " + valid + ", " + ca + ", expect: {addresses: [10.0.0.0/8]}}",
			wantReason: "connected to 127.0.0.1, want an address in [10.0.0.0/8]", wantCert: "outpost.test"},
		{name: "slower than max_latency", spec: "{address: " + valid + ", " + ca + ", expect: {max_latency: 1ns}}",
			wantReason: "took ...", wantCert: "outpost.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == "" {
				timeout = "5s"
			}
			yaml := fmt.Sprintf("  - id: tls-test\n    timeout: %s\n    tls: %s\n", timeout, tc.spec)
			r := runNetProbe(t, context.Background(), yaml, Options{Resolver: loopbackHosts})

			if r.OK != tc.wantOK {
				t.Errorf("OK = %v, want %v (reason %q)", r.OK, tc.wantOK, r.Reason)
			}
			if prefix, ok := strings.CutSuffix(tc.wantReason, "..."); ok {
				if !strings.HasPrefix(r.Reason, prefix) {
					t.Errorf("reason = %q, want it to start with %q", r.Reason, prefix)
				}
			} else if r.Reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", r.Reason, tc.wantReason)
			}
			if r.Type != "tls" {
				t.Errorf("Type = %q, want tls", r.Type)
			}
			switch {
			case tc.wantCert == "" && r.Observed.TLS != nil:
				t.Errorf("Observed.TLS = %+v, want none", r.Observed.TLS)
			case tc.wantCert != "" && (r.Observed.TLS == nil || r.Observed.TLS.Subject != tc.wantCert):
				t.Errorf("Observed.TLS = %+v, want subject %q", r.Observed.TLS, tc.wantCert)
			}
			if tc.wantOK && (r.Phases.TLS <= 0 || r.Observed.TLS.Issuer != testCAName) {
				t.Errorf("Phases.TLS = %v, Observed.TLS = %+v; want a timed handshake with the CA as issuer", r.Phases.TLS, r.Observed.TLS)
			}
		})
	}
}

// TestTLSObservation checks what a result tells the evaluator about the
// certificate and the route, on success and on a failed verification.
func TestTLSObservation(t *testing.T) {
	pki := newTestPKI(t)
	valid := startTLSServer(t, pki.Valid, 0)
	expired := startTLSServer(t, pki.Expired, 0)
	_, port, _ := net.SplitHostPort(valid)
	_, expiredPort, _ := net.SplitHostPort(expired)

	tests := []struct {
		name, address string
		want          tls.Certificate
	}{
		{name: "verified", address: "outpost.test:" + port, want: pki.Valid},
		{name: "expired", address: "outpost.test:" + expiredPort, want: pki.Expired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yaml := fmt.Sprintf("  - id: tls-obs\n    tls: {address: %s, ca_file: %s}\n", tc.address, pki.CAFile)
			r := runNetProbe(t, context.Background(), yaml, Options{Resolver: loopbackHosts})
			o := r.Observed
			if !slices.Equal(o.ResolvedIPs, []string{"127.0.0.1"}) || !strings.HasPrefix(o.ConnectedAddr, "127.0.0.1:") {
				t.Errorf("ResolvedIPs = %v, ConnectedAddr = %q; want the loopback route", o.ResolvedIPs, o.ConnectedAddr)
			}
			if o.TLS == nil {
				t.Fatalf("no TLS observation; reason %q", r.Reason)
			}
			if !o.TLS.NotAfter.Equal(tc.want.Leaf.NotAfter) || o.TLS.ServerName != "outpost.test" || o.TLS.Version != "1.3" {
				t.Errorf("Observed.TLS = %+v, want not_after %s, server_name outpost.test, version 1.3", o.TLS, tc.want.Leaf.NotAfter)
			}
			// What tells this certificate from its renewal, and names it
			// in a warning.
			sum := sha256.Sum256(tc.want.Leaf.Raw)
			if o.TLS.Fingerprint != hex.EncodeToString(sum[:]) || o.TLS.Serial != fmt.Sprintf("%x", tc.want.Leaf.SerialNumber) ||
				!slices.Equal(o.TLS.SANs, []string{"outpost.test", "127.0.0.1"}) {
				t.Errorf("Observed.TLS = %+v, want the leaf's fingerprint, serial %x and SANs [outpost.test 127.0.0.1]", o.TLS, tc.want.Leaf.SerialNumber)
			}
		})
	}
}

// TestTLSProbeConcurrent runs one prober from many goroutines, as the
// scheduler may, so that -race sees the shared tls.Config and dialer.
func TestTLSProbeConcurrent(t *testing.T) {
	pki := newTestPKI(t)
	addr := startTLSServer(t, pki.Valid, 0)
	p, err := New(loadNetCheck(t, "  - id: tls-many\n    tls: {address: "+addr+", ca_file: "+pki.CAFile+"}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	results := make([]wire.Result, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = p.Probe(context.Background()) })
	}
	wg.Wait()
	for i, r := range results {
		if !r.OK {
			t.Errorf("probe %d failed: %s", i, r.Reason)
		}
	}
}

// TestTLSBadCAPEMRejectedAtBuild shows a CA bundle without certificates is
// an error when the prober is built, not a failure at every probe.
func TestTLSBadCAPEMRejectedAtBuild(t *testing.T) {
	c := loadNetCheck(t, "  - id: tls-bad-ca\n    tls: {address: 127.0.0.1:443}\n")
	c.TLS.CAPEM = []byte("not a certificate")
	_, err := New(c, Options{})
	if err == nil || !strings.Contains(err.Error(), "ca_file holds no PEM certificate") {
		t.Fatalf("New = %v, want the ca_file error", err)
	}
}
