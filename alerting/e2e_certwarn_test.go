package alerting

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// expiringTLSServer serves "ok" over TLS on 127.0.0.1 with a self-signed
// certificate for 127.0.0.1 and shop.outpost.test that expires at
// notAfter; it returns the server and the certificate's PEM file, for
// ca_file.
func expiringTLSServer(t *testing.T, notAfter time.Time) (*httptest.Server, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(0x5eed),
		Subject:               pkix.Name{CommonName: "shop.outpost.test"},
		Issuer:                pkix.Name{CommonName: "shop.outpost.test"},
		NotBefore:             notAfter.Add(-90 * 24 * time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"shop.outpost.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "shop.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, caFile
}

// TestEndToEndCertificateWarning: a real HTTPS server whose certificate
// expires in 10 days, three agents probing it, an evaluator paging a fake
// PagerDuty that takes every route. The certificate is inside
// cert_warn_days (21) and outside cert_min_days (7): PagerDuty receives
// exactly one event, a warning-severity trigger that names the
// certificate, and nothing critical, however long the probes go on.
func TestEndToEndCertificateWarning(t *testing.T) {
	// The agents verify the certificate against the real time, the
	// evaluator judges expiry on the fake clock: start it at the real time.
	now := time.Now().UTC().Truncate(time.Second)
	notAfter := now.Add(10*24*time.Hour + time.Hour)
	target, caFile := expiringTLSServer(t, notAfter)
	pd := notifytest.NewFakePagerDuty(t)
	env := e2eEnv()
	cfg, err := checks.LoadBytes("e2e.yaml", []byte(fmt.Sprintf(`version: 1
regions: [us-east, eu-west, ap-south]
reporting: {heartbeat: 1s, stale_after: 3s, batch_delay: 200ms}
agents:
  - {region: us-east, key: "${K_US}"}
  - {region: eu-west, key: "${K_EU}"}
  - {region: ap-south, key: "${K_AP}"}
notifiers:
  - {name: oncall, pagerduty: {routing_key: "${PD_KEY}", url: "%s"}, routes: [critical, warning, meta]}
checks:
  - id: shop
    interval: 5s
    timeout: 1s
    notify: [oncall]
    http:
      url: "%s/"
      tls: {ca_file: %q}
      cert_warn_days: 21
      expect: {cert_min_days: 7}
`, pd.URL(), target.URL, caFile)), env)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(now)
	ev, url := startPagingEvaluator(t, cfg, clk)
	for _, region := range cfg.Regions {
		startAgentWith(t, cfg, clk, region, []string{url}, t.TempDir(), probes.Options{})
	}
	advanceUntil(t, clk, 250*time.Millisecond, time.Minute, "every region reporting", func() bool { return allRegionsReported(ev, cfg) })
	advanceUntil(t, clk, time.Second, 5*time.Minute, "the certificate warning at PagerDuty", func() bool { return len(pd.Events()) >= 1 })
	warned := clk.Now()
	advanceUntil(t, clk, time.Second, 10*time.Minute, "five minutes more of probes", func() bool { return clk.Now().Sub(warned) >= 5*time.Minute })

	evs := pd.Events()
	if len(evs) != 1 {
		t.Fatalf("%d PagerDuty events, want exactly one warning: %+v", len(evs), evs)
	}
	e := evs[0]
	if e.EventAction != "trigger" || e.Payload == nil || e.Payload.Severity != "warning" {
		t.Fatalf("event %+v (payload %+v): want a warning-severity trigger", e, e.Payload)
	}
	// The host is the SNI sent, or (for an address, which has none) the
	// certificate's first name; the regions are those that had seen the
	// certificate when it was decided, one or more.
	for _, want := range []string{"certificate of shop.outpost.test expires in 10 days", `subject "shop.outpost.test"`, "SANs shop.outpost.test 127.0.0.1",
		notAfter.Format(time.RFC3339), "; seen from ", "check shop fails with under 7 days left"} {
		if !strings.Contains(e.Payload.Summary, want) {
			t.Errorf("summary %q lacks %q", e.Payload.Summary, want)
		}
	}
	var details map[string]any
	if err := json.Unmarshal(e.Payload.CustomDetails, &details); err != nil {
		t.Fatal(err)
	}
	if details["days_left"] != "10" || details["issuer"] != "shop.outpost.test" || len(fmt.Sprint(details["fingerprint_sha256"])) != 64 {
		t.Errorf("custom_details %v: want days_left, issuer and the fingerprint", details)
	}
	if bad := pd.InvalidReasons(); len(bad) > 0 {
		t.Fatalf("invalid events sent: %v", bad)
	}
	if st := ev.Snapshot(); len(st.Checks) != 1 || st.Checks[0].State != "OK" {
		t.Errorf("the check is %+v, want OK: a warning is no failure", st.Checks)
	}
}
