package checks

import "testing"

// TestCertWarnDaysDefaults: the warning is on by default, comes before
// cert_min_days fails the check however cert_min_days is set, and 0 turns
// it off.
func TestCertWarnDaysDefaults(t *testing.T) {
	tests := []struct {
		name, check string
		want, min   int
	}{
		{"http default", "http: {url: https://example.com/}", 21, 0},
		{"http below the default", "http: {url: https://example.com/, expect: {cert_min_days: 14}}", 21, 14},
		{"http cert_min_days at the default", "http: {url: https://example.com/, expect: {cert_min_days: 21}}", 28, 21},
		{"http cert_min_days above the default", "http: {url: https://example.com/, expect: {cert_min_days: 30}}", 37, 30},
		{"http set", "http: {url: https://example.com/, cert_warn_days: 45, expect: {cert_min_days: 30}}", 45, 30},
		{"http off", "http: {url: https://example.com/, cert_warn_days: 0, expect: {cert_min_days: 30}}", 0, 30},
		{"plain http keeps the default, which never fires", "http: {url: http://example.com/}", 21, 0},
		{"steps: the largest cert_min_days", "http: {steps: [{url: https://a.example/, expect: {cert_min_days: 10}}, {url: https://b.example/, expect: {cert_min_days: 25}}]}", 32, 25},
		{"tls default", "tls: {address: example.com:443}", 21, 0},
		{"tls cert_min_days", "tls: {address: example.com:443, expect: {cert_min_days: 30}}", 37, 30},
		{"tls set", "tls: {address: example.com:443, cert_warn_days: 60}", 60, 0},
		{"dns has none", "dns: {name: example.com, type: A}", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoad(t, "version: 1\nchecks:\n  - id: c\n    "+tc.check+"\n", nil)
			c := cfg.Checks[0]
			if got := c.CertWarnDays(); got != tc.want {
				t.Errorf("CertWarnDays() = %d, want %d", got, tc.want)
			}
			if got := c.CertMinDays(); got != tc.min {
				t.Errorf("CertMinDays() = %d, want %d", got, tc.min)
			}
		})
	}
}
