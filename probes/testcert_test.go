package probes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a throwaway certificate authority and the leaves TLS tests
// serve, generated per test so that expiry is always relative to now.
type testPKI struct {
	// CAFile is the absolute path of the CA certificate in PEM, for ca_file.
	CAFile string
	// Valid is for 127.0.0.1 and outpost.test, valid for 90 days.
	Valid tls.Certificate
	// Expired ended yesterday.
	Expired tls.Certificate
	// Soon expires in 5 days.
	Soon tls.Certificate
	// WrongHost is only for other.test.
	WrongHost tls.Certificate
}

// testCAName is the CA's common name, which unknown-authority reasons quote.
const testCAName = "Outpost Test CA"

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	caKey := newECKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: testCAName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("parse CA: %v", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}

	day := 24 * time.Hour
	loopback := []net.IP{net.IPv4(127, 0, 0, 1)}
	leaf := func(serial int64, cn string, notBefore, notAfter time.Time, dns []string, ips []net.IP) tls.Certificate {
		t.Helper()
		key := newECKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    notBefore,
			NotAfter:     notAfter,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("create leaf %s: %v", cn, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("parse leaf %s: %v", cn, err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	}
	return &testPKI{
		CAFile:    caFile,
		Valid:     leaf(2, "outpost.test", now.Add(-time.Hour), now.Add(90*day), []string{"outpost.test"}, loopback),
		Expired:   leaf(3, "expired.outpost.test", now.Add(-30*day), now.Add(-day), []string{"outpost.test"}, loopback),
		Soon:      leaf(4, "soon.outpost.test", now.Add(-time.Hour), now.Add(5*day), []string{"outpost.test"}, loopback),
		WrongHost: leaf(5, "other.test", now.Add(-time.Hour), now.Add(90*day), []string{"other.test"}, nil),
	}
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return key
}
