package checks

import (
	"fmt"
	"strings"
)

// Certificate warnings: an evaluator warns (on the warning route, once per
// certificate) when the certificate an HTTPS or TLS check sees enters
// the last cert_warn_days of its life, well before expect.cert_min_days
// makes the check fail and page on the critical route.

const (
	// DefaultCertWarnDays is cert_warn_days when it is not set.
	DefaultCertWarnDays = 21
	// certWarnLead is how many days before cert_min_days an unset
	// cert_warn_days warns when cert_min_days is DefaultCertWarnDays or
	// more, so that the warning always comes first.
	certWarnLead = 7
)

// CertWarnDays is how many days before a certificate expires the
// evaluator warns about it for c: the effective cert_warn_days of an
// HTTP or TLS check (its default filled in at load), 0 when warnings are
// off or c is of another type.
func (c *Check) CertWarnDays() int {
	switch {
	case c.HTTP != nil:
		return c.HTTP.CertWarnDays
	case c.TLS != nil:
		return c.TLS.CertWarnDays
	}
	return 0
}

// CertMinDays is the largest expect.cert_min_days of an HTTP or TLS check
// (of any step of a multi-step one), 0 when none is set.
func (c *Check) CertMinDays() int {
	switch {
	case c.HTTP != nil:
		days, _ := httpCertMinDays(c.HTTP)
		return days
	case c.TLS != nil && c.TLS.Expect != nil:
		return c.TLS.Expect.CertMinDays
	}
	return 0
}

// httpCertMinDays is the largest expect.cert_min_days of h and the key
// that sets it, for messages.
func httpCertMinDays(h *HTTPSpec) (int, string) {
	days, key := 0, ""
	if h.Expect != nil && h.Expect.CertMinDays > 0 {
		days, key = h.Expect.CertMinDays, "expect.cert_min_days"
	}
	for i := range h.Steps {
		if e := h.Steps[i].Expect; e != nil && e.CertMinDays > days {
			days, key = e.CertMinDays, fmt.Sprintf("step %q: expect.cert_min_days", h.Steps[i].Name)
		}
	}
	return days, key
}

// validateCertWarn checks cert_warn_days (*warn, written at src) against
// cert_min_days (minDays, set by minKey) and fills in its default. https
// says whether the check can see a certificate at all, as far as load can
// tell.
func validateCertWarn(warn *int, src *Source, minDays int, minKey string, https bool, id string, errs *errorList) {
	if !src.Has("cert_warn_days") {
		*warn = DefaultCertWarnDays
		if minDays >= DefaultCertWarnDays {
			*warn = minDays + certWarnLead
		}
		return
	}
	switch {
	case *warn < 0:
		errs.add(src.At("cert_warn_days"), id, "cert_warn_days must not be negative (0 turns certificate warnings off)")
	case *warn == 0:
	case !https:
		errs.add(src.At("cert_warn_days"), id, "cert_warn_days needs an https URL")
	case minDays > 0 && *warn <= minDays:
		errs.add(src.At("cert_warn_days"), id,
			"cert_warn_days %d must be above %s %d, so that the warning comes before the check fails (or 0 to turn warnings off)",
			*warn, minKey, minDays)
	}
}

// httpCanSeeCert reports whether h may see a certificate: a single
// request to an https URL, or a multi-step check (whose steps may go
// anywhere).
func httpCanSeeCert(h *HTTPSpec) bool {
	return len(h.Steps) > 0 || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.URL)), "http:")
}
