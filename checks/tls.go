package checks

import (
	"net/netip"
	"time"
)

// TLSSpec is a TLS check: a handshake with chain and hostname verification.
type TLSSpec struct {
	Address            string     `yaml:"address"`
	ServerName         string     `yaml:"server_name"`
	CAFile             string     `yaml:"ca_file"`
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify"`
	MinVersion         TLSVersion `yaml:"min_version"`
	Expect             *TLSExpect `yaml:"expect"`
	IPProtocol         string     `yaml:"ip_protocol"`
	Resolver           string     `yaml:"resolver"`
	// CertWarnDays is how many days before the server's certificate
	// expires the evaluator sends one warning-route notification about it
	// (per certificate, never a page on the critical route). It must be
	// above expect.cert_min_days; 0 turns warnings off. Default 21, or
	// cert_min_days + 7 when cert_min_days is 21 or more.
	CertWarnDays int `yaml:"cert_warn_days"`
	Src          Source

	CAPEM []byte `yaml:"-"`
}

// TLSExpect is what a TLS check must see.
type TLSExpect struct {
	CertMinDays int            `yaml:"cert_min_days"`
	Addresses   []netip.Prefix `yaml:"addresses"`
	MaxLatency  time.Duration  `yaml:"max_latency"`
	Src         Source
}

func validateTLS(c *Check, id string, errs *errorList) {
	t := c.TLS
	validateAddress(t.Address, &t.Src, id, "tls", errs)
	validateIPProtocol(t.IPProtocol, &t.Src, id, errs)
	validateResolver(t.Resolver, &t.Src, id, errs)
	validateCertWarn(&t.CertWarnDays, &t.Src, c.CertMinDays(), "expect.cert_min_days", true, id, errs)
	if t.Expect != nil {
		if t.Expect.CertMinDays < 0 {
			errs.add(t.Expect.Src.At("cert_min_days"), id, "expect.cert_min_days must not be negative")
		}
		validateLatency(t.Expect.MaxLatency, c.Timeout, &t.Expect.Src, id, errs)
	}
}
