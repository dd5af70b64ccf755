package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 with serial and usage to dir
// and returns the paths of its certificate and key.
func (ca *testCA) issue(t *testing.T, dir, name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeBytes(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeBytes(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certPath, keyPath
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEvaluatorServesMutualTLS: an evaluator started with --tls-cert,
// --tls-key and --tls-client-ca serves HTTPS, refuses a client without a
// certificate from that CA, takes an agent's signed batches over mTLS,
// and serves a new certificate after a reload.
func TestEvaluatorServesMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	writeBytes(t, caPath, ca.pem)
	serverCert, serverKey := ca.issue(t, dir, "evaluator", 10, x509.ExtKeyUsageServerAuth)
	agentCert, agentKey := ca.issue(t, dir, "agent", 20, x509.ExtKeyUsageClientAuth)

	env := map[string]string{"K": "agent-key-0123456789abcdef"}
	cfg, err := checks.LoadBytes("m.yaml", []byte(`regions: [us-east]
agents: [{region: us-east, key: "${K}"}]
checks:
  - {id: web, http: {url: "https://example.test/"}}
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ev, err := alerting.New(cfg, alerting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := loadTLS(&tlsFlags{cert: serverCert, key: serverKey, ca: caPath})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := listenAndServeTLS("127.0.0.1:0", evaluatorMux(newRegistry(), ev, nil), certs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.shutdown)

	agentCerts, err := loadTLS(&tlsFlags{ca: caPath, cert: agentCert, key: agentKey})
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg *tls.Config) (*http.Response, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		return c.Get(srv.URL() + "/healthz")
	}
	resp, err := get(agentCerts.clientConfig())
	if err != nil {
		t.Fatalf("with the agent's certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 10 {
		t.Fatalf("status %d, serial %v", resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber)
	}
	noCert, _ := loadTLS(&tlsFlags{ca: caPath})
	if resp, err := get(noCert.clientConfig()); err == nil {
		resp.Body.Close()
		t.Fatal("a client without a certificate got an answer")
	}

	// An agent's reporter delivers a signed batch over mTLS.
	clk := clocktest.New(time.Now())
	rep, err := agent.NewReporter(agent.ReporterOptions{Evaluators: []string{srv.URL()}, Key: []byte(env["K"]), Region: "us-east", Agent: "a1",
		Reporting: cfg.Reporting, SpoolDir: t.TempDir(), Clock: clk, TLS: agentCerts.clientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rep.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	rep.Submit(wire.Result{V: 1, Check: "web", Type: "http", Region: "us-east", Agent: "a1", Time: clk.Now(), OK: true, Reason: "status 200"})
	for i := 0; ; i++ {
		if w, _ := ev.Window("web", "us-east"); w.Last != nil {
			break
		}
		if i > 600 {
			t.Fatal("the batch never arrived over mTLS")
		}
		clk.Advance(100 * time.Millisecond)
		clocktest.WaitIdle(t, 30*time.Second)
	}

	// A new certificate on disk is served after a reload.
	ca.issue(t, dir, "evaluator", 11, x509.ExtKeyUsageServerAuth)
	if err := certs.reload(); err != nil {
		t.Fatal(err)
	}
	resp, err = get(agentCerts.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 11 {
		t.Errorf("serial %d after the reload, want 11", got)
	}
	// A reload that fails keeps what is in use.
	writeBytes(t, serverCert, []byte("not a certificate"))
	if err := certs.reload(); err == nil {
		t.Error("a broken certificate file reloaded without an error")
	}
	if resp, err := get(agentCerts.clientConfig()); err != nil {
		t.Errorf("after a failed reload: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestTLSFlagsGoTogether: a certificate without its key, or a client CA
// without a certificate, is a clear error.
func TestTLSFlagsGoTogether(t *testing.T) {
	if _, err := loadTLS(&tlsFlags{cert: "a.crt"}); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := filepath.Join(dir, "ca.pem")
	writeBytes(t, caPath, ca.pem)
	f, err := loadTLS(&tlsFlags{ca: caPath})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.serverConfig(); err == nil {
		t.Error("--tls-client-ca without a certificate accepted for serving")
	}
	if _, err := loadTLS(&tlsFlags{ca: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("a missing CA file accepted")
	}
}
