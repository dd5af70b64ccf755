package decide

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Certificate warnings. A certificate is a fact, not an opinion: one live
// region that sees it inside the check's cert_warn_days is enough, and the
// warning goes out once per certificate (told apart by fingerprint and
// expiry), on the warning route, whatever the check's verdict. It is not
// an incident of the check: it counts for no quorum and opens nothing on
// the critical route, where cert_min_days still fails the check as before.
//
// A warning is resolved when the certificate has been replaced: no live
// region sees it any more and some live region sees another one. A
// PagerDuty incident or Slack thread about an expiring certificate then
// closes by itself once the renewal is deployed, as an Alertmanager alert
// would; nobody has to remember to close it. A certificate that was
// warned about is never warned about again, resolved or not, so regions
// that alternate between the old and the new certificate (a rollout,
// round-robin DNS) or stop seeing any (the host is down) send nothing
// more; a new certificate that is itself inside the window gets its own
// warning.

const (
	// MaxCertRecords bounds what a check remembers of the certificates it
	// warned about; the oldest resolved ones go first.
	MaxCertRecords = 16
	// certForgetAfter is how long after its expiry a certificate's record
	// is kept.
	certForgetAfter = 30 * 24 * time.Hour
)

// CertRecord is what a check has sent about one certificate.
type CertRecord struct {
	NotAfter time.Time `json:"not_after"`
	WarnedAt time.Time `json:"warned_at"`
	// Resolved: the certificate was replaced and the warning resolved.
	Resolved bool `json:"resolved,omitempty"`
}

// CertState is a check's CertRecords by certificate ID (CertID).
type CertState map[string]CertRecord

// CertEvent is a certificate warning (EventTrigger) or its resolve.
type CertEvent struct {
	Check  string      `json:"check"`
	Action EventAction `json:"action"`
	// DedupKey is the same for the trigger and resolve of one
	// certificate of one check, on every evaluator (CertDedupKey).
	DedupKey string `json:"dedup_key"`
	// Cert is the certificate warned about: for a resolve, the one that
	// was replaced, as last remembered (NotAfter only, after a restart).
	Cert wire.TLSObservation `json:"cert"`
	// Regions are the live regions that see Cert now (trigger), or that
	// see its replacement (resolve).
	Regions []string `json:"regions"`
	// Replacement is what replaced Cert (resolve only): the certificate
	// that the most live regions see, the latest expiry first.
	Replacement *wire.TLSObservation `json:"replacement,omitempty"`
	// DaysLeft is whole days from Time to Cert's expiry (negative once
	// expired).
	DaysLeft int       `json:"days_left"`
	WarnDays int       `json:"warn_days"`
	Time     time.Time `json:"time"`
	Summary  string    `json:"summary"`
}

// CertID tells certificates apart: the SHA-256 fingerprint of the leaf
// and the earliest expiry of the chain, or, from an agent that sends no
// fingerprint, the names, issuer, serial and expiry it does send.
func CertID(t *wire.TLSObservation) string {
	exp := t.NotAfter.UTC().Format(time.RFC3339)
	if t.Fingerprint != "" {
		return t.Fingerprint + "@" + exp
	}
	return strings.Join([]string{t.Subject, t.Issuer, t.Serial, exp}, "|")
}

// CertDedupKey is the dedup key of check's warning about certificate id:
// "outpost-" and 16 hex digits, as DedupKey, apart from every incident
// kind's key.
func CertDedupKey(check, id string) string {
	sum := sha256.Sum256([]byte(check + "/cert/" + id))
	return "outpost-" + hex.EncodeToString(sum[:])[:16]
}

// StepCerts decides the certificate warnings of check c at now, from the
// TLS observations of its live regions' fresh results (seen, by region;
// the caller leaves out stale regions and results without a
// certificate). It returns the next state (st itself when nothing
// changed, so that the caller can tell) and the events to send, triggers
// then resolves, each in certificate order.
func StepCerts(st CertState, c *checks.Check, seen map[string]*wire.TLSObservation, now time.Time) (CertState, []CertEvent) {
	type cert struct {
		obs     *wire.TLSObservation
		regions []string
	}
	certs := map[string]*cert{}
	for _, region := range slices.Sorted(maps.Keys(seen)) {
		t := seen[region]
		if t == nil || t.NotAfter.IsZero() {
			continue
		}
		id := CertID(t)
		if certs[id] == nil {
			certs[id] = &cert{obs: t}
		}
		certs[id].regions = append(certs[id].regions, region)
	}
	ids := slices.Sorted(maps.Keys(certs))

	next, cloned := st, false
	changed := func() {
		if !cloned {
			next, cloned = maps.Clone(st), true
			if next == nil {
				next = CertState{}
			}
		}
	}
	var events []CertEvent
	warnDays := c.CertWarnDays()
	if warnDays > 0 {
		window := time.Duration(warnDays) * 24 * time.Hour
		for _, id := range ids {
			k := certs[id]
			if _, done := st[id]; done || now.Before(k.obs.NotAfter.Add(-window)) {
				continue
			}
			changed()
			next[id] = CertRecord{NotAfter: k.obs.NotAfter, WarnedAt: now}
			ev := CertEvent{Check: c.ID, Action: EventTrigger, DedupKey: CertDedupKey(c.ID, id), Cert: *k.obs,
				Regions: k.regions, DaysLeft: daysLeft(k.obs.NotAfter, now), WarnDays: warnDays, Time: now}
			ev.Summary = certTriggerSummary(c, ev)
			events = append(events, ev)
		}
	}
	if len(ids) > 0 {
		best := ""
		for _, id := range slices.Sorted(maps.Keys(st)) {
			rec := st[id]
			if rec.Resolved || certs[id] != nil {
				continue
			}
			if best == "" {
				// The replacement named in resolves: what most regions
				// see, the latest expiry first.
				best = slices.MaxFunc(ids, func(a, b string) int {
					return cmp.Or(cmp.Compare(len(certs[a].regions), len(certs[b].regions)), certs[a].obs.NotAfter.Compare(certs[b].obs.NotAfter), strings.Compare(b, a))
				})
			}
			changed()
			rec.Resolved = true
			next[id] = rec
			old := wire.TLSObservation{NotAfter: rec.NotAfter}
			ev := CertEvent{Check: c.ID, Action: EventResolve, DedupKey: CertDedupKey(c.ID, id), Cert: old,
				Regions: certs[best].regions, Replacement: certs[best].obs, DaysLeft: daysLeft(rec.NotAfter, now), WarnDays: warnDays, Time: now}
			ev.Summary = certResolveSummary(c, ev)
			events = append(events, ev)
		}
	}
	for id, rec := range next {
		if now.Sub(rec.NotAfter) > certForgetAfter && certs[id] == nil {
			changed()
			delete(next, id)
		}
	}
	if len(next) > MaxCertRecords {
		changed()
		keep := slices.SortedFunc(maps.Keys(next), func(a, b string) int {
			// Open ones first, then the most recently warned.
			ra, rb := next[a], next[b]
			if ra.Resolved != rb.Resolved {
				if ra.Resolved {
					return 1
				}
				return -1
			}
			return cmp.Or(rb.WarnedAt.Compare(ra.WarnedAt), strings.Compare(a, b))
		})
		for _, id := range keep[MaxCertRecords:] {
			delete(next, id)
		}
	}
	return next, events
}

// daysLeft is whole days from now to notAfter, rounded towards zero.
func daysLeft(notAfter, now time.Time) int {
	return int(notAfter.Sub(now) / (24 * time.Hour))
}

// CertHost is the name a certificate was asked for: the SNI the agent
// sent, else its first SAN, else its subject.
func CertHost(t *wire.TLSObservation) string {
	if t.ServerName != "" {
		return t.ServerName
	}
	if len(t.SANs) > 0 {
		return t.SANs[0]
	}
	return cmp.Or(t.Subject, "the server")
}

func certTriggerSummary(c *checks.Check, ev CertEvent) string {
	t := &ev.Cert
	when := fmt.Sprintf("expires in %d days", ev.DaysLeft)
	if !t.NotAfter.After(ev.Time) {
		when = "has expired"
	}
	s := fmt.Sprintf("certificate of %s %s (not after %s): subject %q", CertHost(t), when, t.NotAfter.UTC().Format(time.RFC3339), t.Subject)
	if len(t.SANs) > 0 {
		s += ", SANs " + strings.Join(t.SANs, " ")
	}
	s += fmt.Sprintf(", issuer %q; seen from %s; check %s", t.Issuer, strings.Join(ev.Regions, ", "), c.ID)
	if fail := c.CertMinDays(); fail > 0 {
		s += fmt.Sprintf(" fails with under %d days left", fail)
	}
	return s
}

func certResolveSummary(c *checks.Check, ev CertEvent) string {
	r := ev.Replacement
	return fmt.Sprintf("certificate of %s expiring %s replaced: %s now sees one not after %s (issuer %q); check %s",
		CertHost(r), ev.Cert.NotAfter.UTC().Format(time.RFC3339), strings.Join(ev.Regions, ", "), r.NotAfter.UTC().Format(time.RFC3339), r.Issuer, c.ID)
}

// RetireCerts resolves every open certificate warning of a check that is
// no longer configured, saying why, so that no warning is left open at a
// pager that nothing will ever resolve. The check's state after it is
// empty.
func RetireCerts(check string, st CertState, now time.Time) []CertEvent {
	var events []CertEvent
	for _, id := range slices.Sorted(maps.Keys(st)) {
		rec := st[id]
		if rec.Resolved {
			continue
		}
		events = append(events, CertEvent{Check: check, Action: EventResolve, DedupKey: CertDedupKey(check, id),
			Cert: wire.TLSObservation{NotAfter: rec.NotAfter}, DaysLeft: daysLeft(rec.NotAfter, now), Time: now,
			Summary: fmt.Sprintf("certificate warning of %s (expiring %s) resolved: the check was removed from the configuration",
				check, rec.NotAfter.UTC().Format(time.RFC3339))})
	}
	return events
}
