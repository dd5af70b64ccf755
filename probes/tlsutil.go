package probes

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// tlsSettings are the TLS client options shared by HTTP and TLS checks.
type tlsSettings struct {
	serverName string
	caPEM      []byte
	insecure   bool
	minVersion checks.TLSVersion
}

// key identifies the settings, so that checks with equal settings can
// share one client.
func (s tlsSettings) key() string {
	sum := sha256.Sum256(s.caPEM)
	return fmt.Sprintf("%s|%x|%t|%d", s.serverName, sum[:8], s.insecure, s.minVersion)
}

// clientConfig builds the tls.Config once, at prober construction.
func (s tlsSettings) clientConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         s.serverName,
		InsecureSkipVerify: s.insecure, //nolint:gosec // only when the check spells out insecure_skip_verify
		MinVersion:         tls.VersionTLS10,
	}
	if s.minVersion != 0 {
		cfg.MinVersion = uint16(s.minVersion)
	}
	if len(s.caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.caPEM) {
			return nil, errors.New("ca_file holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// observeTLS describes a finished handshake.
func observeTLS(st *tls.ConnectionState) *wire.TLSObservation {
	if st == nil {
		return nil
	}
	o := &wire.TLSObservation{Version: strings.TrimPrefix(tls.VersionName(st.Version), "TLS "), ServerName: st.ServerName}
	for i, c := range st.PeerCertificates {
		if i == 0 {
			o.Subject = c.Subject.CommonName
			o.Issuer = c.Issuer.CommonName
			o.NotAfter = c.NotAfter
			o.SANs = certNames(c)
			o.Serial = fmt.Sprintf("%x", c.SerialNumber)
			sum := sha256.Sum256(c.Raw)
			o.Fingerprint = hex.EncodeToString(sum[:])
		}
		if c.NotAfter.Before(o.NotAfter) {
			o.NotAfter = c.NotAfter
		}
	}
	return o
}

// certNames are c's DNS names and IP addresses, at most wire.MaxSANs.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) > wire.MaxSANs {
		names = names[:wire.MaxSANs:wire.MaxSANs]
	}
	return names
}

// certDaysReason checks the earliest certificate expiry against minDays.
func certDaysReason(o *wire.TLSObservation, minDays int, now time.Time) (string, bool) {
	if minDays <= 0 || o == nil || o.NotAfter.IsZero() {
		return "", true
	}
	left := o.NotAfter.Sub(now)
	if left >= time.Duration(minDays)*24*time.Hour {
		return "", true
	}
	if left <= 0 {
		return fmt.Sprintf("certificate expired on %s, want at least %d days left", o.NotAfter.UTC().Format("2006-01-02"), minDays), false
	}
	days := int(left.Hours() / 24)
	return fmt.Sprintf("certificate expires in %d days (%s), want at least %d", days, o.NotAfter.UTC().Format("2006-01-02"), minDays), false
}

// describeTLSErr explains a failed handshake in terms of the certificate or
// protocol problem, not Go's error chain.
func describeTLSErr(err error, minVersion checks.TLSVersion) string {
	var (
		invalid  x509.CertificateInvalidError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			c := invalid.Cert
			if c != nil && time.Now().After(c.NotAfter) {
				return fmt.Sprintf("certificate expired on %s", c.NotAfter.UTC().Format("2006-01-02"))
			}
			if c != nil {
				return fmt.Sprintf("certificate not valid until %s", c.NotBefore.UTC().Format("2006-01-02"))
			}
			return "certificate expired or not yet valid"
		}
		return "certificate invalid: " + invalid.Error()
	case errors.As(err, &unknown):
		if unknown.Cert != nil {
			return fmt.Sprintf("certificate signed by unknown authority %q", unknown.Cert.Issuer.CommonName)
		}
		return "certificate signed by unknown authority"
	case errors.As(err, &hostname):
		// A copy: appending to the certificate's own slice could write into
		// its backing array.
		names := slices.Clone(hostname.Certificate.DNSNames)
		for _, ip := range hostname.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) > 8 {
			names = append(names[:8:8], "...")
		}
		return fmt.Sprintf("certificate is valid for [%s], not %s", strings.Join(names, " "), hostname.Host)
	case errors.As(err, &verify):
		return "certificate verification failed: " + verify.Err.Error()
	}
	msg := err.Error()
	if strings.Contains(msg, "protocol version") && minVersion != 0 {
		return fmt.Sprintf("TLS handshake failed: server does not offer TLS %s or newer", minVersion)
	}
	return "TLS handshake failed: " + strings.TrimPrefix(msg, "tls: ")
}
