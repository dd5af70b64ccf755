package alerting

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/probes/wire"
)

// kindCertExpiring is the notification kind of a certificate warning
// (decide.StepCerts): a check's notification on the warning route, apart
// from its incidents.
var kindCertExpiring = notify.CheckKind("cert_expiring")

// evaluateCerts decides cd's certificate warnings at now from the
// certificates its live regions' fresh results saw (in, as
// evaluateProbes built it), queues what they send and reports whether
// the state to save changed. Its mutex is held.
//
// It runs whenever the check is decided: after a batch that may change
// its verdict, on ticks while something is pending, and in the full
// sweep every sweepEvery, so a certificate entering the window is warned
// about within a sweep of the result that shows it.
func (e *Evaluator) evaluateCerts(cd *checkDecider, in map[string]decide.RegionInput, now time.Time) bool {
	if cd.c.CertWarnDays() <= 0 && len(cd.certs) == 0 {
		return false
	}
	seen := make(map[string]*wire.TLSObservation, len(in))
	for region, input := range in {
		// input.Last is set only for a fresh result; a stale region's
		// certificate is history, and says nothing of what is served now.
		if input.Live && input.Last != nil && input.Last.Observed.TLS != nil {
			seen[region] = input.Last.Observed.TLS
		}
	}
	if len(seen) == 0 && len(cd.certs) == 0 {
		return false
	}
	next, events := decide.StepCerts(cd.certs, cd.c, seen, now)
	for _, ev := range events {
		cd.queue(e.certNotification(cd, ev))
	}
	if len(events) == 0 && maps.Equal(next, cd.certs) {
		return false
	}
	cd.certs = next
	return true
}

// certNotification is the warning-route notification of a certificate
// event, with the certificate's facts as details.
func (e *Evaluator) certNotification(cd *checkDecider, ev decide.CertEvent) notify.Notification {
	redact := cd.page.redact
	n := notify.Notification{
		Kind:    kindCertExpiring,
		Key:     ev.DedupKey,
		Action:  string(ev.Action),
		Route:   notify.RouteWarning,
		Check:   ev.Check,
		Summary: redact(ev.Summary),
		Time:    ev.Time,
		Group:   cd.page.group,
		Link:    cd.page.link,
		Runbook: cd.page.runbook,
		Target:  cd.page.target,
		Class:   "certificate expiry",
		Details: map[string]string{
			"action":         string(ev.Action),
			"route":          notify.RouteWarning,
			"check":          ev.Check,
			"not_after":      ev.Cert.NotAfter.UTC().Format(time.RFC3339),
			"days_left":      strconv.Itoa(ev.DaysLeft),
			"cert_warn_days": strconv.Itoa(ev.WarnDays),
			"regions":        strings.Join(ev.Regions, ", "),
		},
	}
	if m := cd.c.CertMinDays(); m > 0 {
		n.Details["cert_min_days"] = strconv.Itoa(m)
	}
	cert := &ev.Cert
	if ev.Replacement != nil {
		n.Details["replaced_by_not_after"] = ev.Replacement.NotAfter.UTC().Format(time.RFC3339)
		cert = ev.Replacement
	} else {
		for k, v := range map[string]string{"subject": cert.Subject, "issuer": cert.Issuer, "serial": cert.Serial,
			"fingerprint_sha256": cert.Fingerprint, "sans": strings.Join(cert.SANs, " ")} {
			if v != "" {
				n.Details[k] = redact(v)
			}
		}
	}
	if ev.Replacement != nil || cert.Subject != "" {
		n.Details["host"] = redact(decide.CertHost(cert))
	}
	n.Severity = notify.SeverityOf(n)
	return n
}
