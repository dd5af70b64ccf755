package wire

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Field limits of a Result, enforced by the evaluator on arrival whatever
// the agent did (an agent respects them already; a holder of an agent key
// need not). Strings are display text and evidence: one over its limit is
// cut with Clip by Bound. Lists, and the whole of a result's
// observations, are structure: a result over those limits is absurd and
// Check refuses it.
const (
	// MaxTextBytes bounds the free text of a result: a step's reason, a
	// DNS answer, CNAME or error, an asserted header's value, a TCP line,
	// a TLS subject or issuer. (MaxReasonBytes bounds the reason.)
	MaxTextBytes = 1024
	// MaxNameBytes bounds the short strings of a result: addresses,
	// versions, names (a header's, a step's, a server's), an rcode.
	MaxNameBytes = 256
	// MaxListItems bounds every list and map of an observation: resolved
	// IPs, headers, steps, DNS servers, and each server's answers and
	// CNAMEs.
	MaxListItems = 256
	// MaxObservedBytes bounds the bytes of all the strings of one
	// result's observations together, after Bound's cuts.
	MaxObservedBytes = 256 << 10
	// MaxResultAge is how long after its probe a result is still
	// accepted, as history: an agent replays its spool after a partition,
	// and a week covers a long one. Older results are refused.
	MaxResultAge = 7 * 24 * time.Hour
	// MaxQuoteBytes bounds a value quoted in an error message or a log
	// line, so that neither grows with hostile input.
	MaxQuoteBytes = 64
)

// Quote quotes s for an error message or a log line, cut to MaxQuoteBytes.
func Quote(s string) string {
	return strconv.Quote(Clip(s, MaxQuoteBytes))
}

// Bound cuts every string of r over its limit (see MaxTextBytes) and
// reports whether it cut any. A cut string is a new string, so the text
// it was cut from is not kept alive. Maps and slices of r.Observed that
// need a cut are replaced by copies, never modified in place: the caller
// may share them.
func Bound(r *Result) bool {
	cut := clipTo(&r.Reason, MaxReasonBytes)
	o := &r.Observed
	cut = clipList(&o.ResolvedIPs, MaxNameBytes) || cut
	cut = clipTo(&o.ConnectedAddr, MaxNameBytes) || cut
	cut = clipTo(&o.HTTPVersion, MaxNameBytes) || cut
	cut = clipTo(&o.Line, MaxTextBytes) || cut
	cut = clipHeaders(&o.Headers) || cut
	if t := o.TLS; t != nil && (len(t.Version) > MaxNameBytes || len(t.ServerName) > MaxNameBytes ||
		len(t.Subject) > MaxTextBytes || len(t.Issuer) > MaxTextBytes ||
		len(t.Serial) > MaxNameBytes || len(t.Fingerprint) > MaxNameBytes || overItems(t.SANs, MaxNameBytes)) {
		c := *t
		clipTo(&c.Version, MaxNameBytes)
		clipTo(&c.ServerName, MaxNameBytes)
		clipTo(&c.Subject, MaxTextBytes)
		clipTo(&c.Issuer, MaxTextBytes)
		clipTo(&c.Serial, MaxNameBytes)
		clipTo(&c.Fingerprint, MaxNameBytes)
		clipList(&c.SANs, MaxNameBytes)
		o.TLS, cut = &c, true
	}
	copied := false
	for i := range o.Steps {
		s := o.Steps[i]
		if len(s.Name) > MaxNameBytes || len(s.Reason) > MaxTextBytes {
			if !copied {
				o.Steps, copied = append([]StepObservation(nil), o.Steps...), true
			}
			clipTo(&o.Steps[i].Name, MaxNameBytes)
			clipTo(&o.Steps[i].Reason, MaxTextBytes)
			cut = true
		}
	}
	copied = false
	for i := range o.DNS {
		d := o.DNS[i]
		c := clipTo(&d.Resolver, MaxNameBytes)
		c = clipTo(&d.Server, MaxNameBytes) || c
		c = clipTo(&d.NS, MaxNameBytes) || c
		c = clipTo(&d.Transport, MaxNameBytes) || c
		c = clipTo(&d.Rcode, MaxNameBytes) || c
		c = clipTo(&d.Error, MaxTextBytes) || c
		c = clipList(&d.Answers, MaxTextBytes) || c
		c = clipList(&d.CNAMEs, MaxTextBytes) || c
		if c {
			if !copied {
				o.DNS, copied = append([]DNSObservation(nil), o.DNS...), true
			}
			o.DNS[i], cut = d, true
		}
	}
	return cut
}

// clipTo cuts *s to n bytes and reports whether it did.
func clipTo(s *string, n int) bool {
	if len(*s) <= n {
		return false
	}
	*s = Clip(*s, n)
	return true
}

// clipList cuts the elements of *l to n bytes, in a copy of *l.
func clipList(l *[]string, n int) bool {
	for i, s := range *l {
		if len(s) > n {
			c := append([]string(nil), *l...)
			for j := i; j < len(c); j++ {
				clipTo(&c[j], n)
			}
			*l = c
			return true
		}
	}
	return false
}

// overItems reports whether an element of l is over n bytes.
func overItems(l []string, n int) bool {
	return slices.ContainsFunc(l, func(s string) bool { return len(s) > n })
}

// clipHeaders cuts the names and values of *h, in a copy of *h.
func clipHeaders(h *map[string]string) bool {
	over := false
	for k, v := range *h {
		if len(k) > MaxNameBytes || len(v) > MaxTextBytes {
			over = true
			break
		}
	}
	if !over {
		return false
	}
	c := make(map[string]string, len(*h))
	for k, v := range *h {
		clipTo(&k, MaxNameBytes)
		clipTo(&v, MaxTextBytes)
		c[k] = v // two names cut to one prefix keep one value
	}
	*h = c
	return true
}

// Check returns what makes r structurally absurd, or "": a list of its
// observations over MaxListItems, or observations whose strings, cut by
// Bound, add up to more than MaxObservedBytes. The text names the field,
// for an error message about results[i].
func Check(r *Result) string {
	msg, _ := check(r)
	return msg
}

// Admit is Check followed, for a result it finds sound, by Bound: what an
// evaluator does with every result it receives, in one pass over the
// observations when nothing needs a cut.
func Admit(r *Result) string {
	msg, over := check(r)
	if msg == "" && (over || len(r.Reason) > MaxReasonBytes) {
		Bound(r)
	}
	return msg
}

// check is Check, and whether a string of r's observations is over its
// limit.
func check(r *Result) (msg string, over bool) {
	o := &r.Observed
	switch {
	case len(o.ResolvedIPs) > MaxListItems:
		return overList("observed.resolved_ips", len(o.ResolvedIPs)), false
	case len(o.Headers) > MaxListItems:
		return overList("observed.headers", len(o.Headers)), false
	case len(o.Steps) > MaxListItems:
		return overList("observed.steps", len(o.Steps)), false
	case len(o.DNS) > MaxListItems:
		return overList("observed.dns", len(o.DNS)), false
	case o.TLS != nil && len(o.TLS.SANs) > MaxListItems:
		return overList("observed.tls.sans", len(o.TLS.SANs)), false
	}
	for i, d := range o.DNS {
		if len(d.Answers) > MaxListItems {
			return overList(fmt.Sprintf("observed.dns[%d].answers", i), len(d.Answers)), false
		}
		if len(d.CNAMEs) > MaxListItems {
			return overList(fmt.Sprintf("observed.dns[%d].cnames", i), len(d.CNAMEs)), false
		}
	}
	n, over := observedBytes(o)
	if n > MaxObservedBytes {
		return fmt.Sprintf("observed holds %d bytes of text, over the limit of %d", n, MaxObservedBytes), over
	}
	return "", over
}

func overList(name string, n int) string {
	return fmt.Sprintf("%s has %d entries, over the limit of %d", name, n, MaxListItems)
}

// ObservedBytes is the length of every string of o, each counted at most
// at its limit (as Bound leaves it).
func ObservedBytes(o *Observed) int {
	n, _ := observedBytes(o)
	return n
}

// observedBytes is ObservedBytes, and whether a string is over its limit.
func observedBytes(o *Observed) (int, bool) {
	var c counter
	c.add(o.ConnectedAddr, MaxNameBytes)
	c.add(o.HTTPVersion, MaxNameBytes)
	c.add(o.Line, MaxTextBytes)
	for _, s := range o.ResolvedIPs {
		c.add(s, MaxNameBytes)
	}
	for k, v := range o.Headers {
		c.add(k, MaxNameBytes)
		c.add(v, MaxTextBytes)
	}
	if t := o.TLS; t != nil {
		c.add(t.Version, MaxNameBytes)
		c.add(t.ServerName, MaxNameBytes)
		c.add(t.Subject, MaxTextBytes)
		c.add(t.Issuer, MaxTextBytes)
		c.add(t.Serial, MaxNameBytes)
		c.add(t.Fingerprint, MaxNameBytes)
		for _, s := range t.SANs {
			c.add(s, MaxNameBytes)
		}
	}
	for i := range o.Steps {
		c.add(o.Steps[i].Name, MaxNameBytes)
		c.add(o.Steps[i].Reason, MaxTextBytes)
	}
	for i := range o.DNS {
		d := &o.DNS[i]
		c.add(d.Resolver, MaxNameBytes)
		c.add(d.Server, MaxNameBytes)
		c.add(d.NS, MaxNameBytes)
		c.add(d.Transport, MaxNameBytes)
		c.add(d.Rcode, MaxNameBytes)
		c.add(d.Error, MaxTextBytes)
		for _, s := range d.Answers {
			c.add(s, MaxTextBytes)
		}
		for _, s := range d.CNAMEs {
			c.add(s, MaxTextBytes)
		}
	}
	return c.n, c.over
}

// counter adds up string lengths, each at most its limit.
type counter struct {
	n    int
	over bool
}

func (c *counter) add(s string, limit int) {
	if len(s) > limit {
		c.n += limit
		c.over = true
		return
	}
	c.n += len(s)
}

// CheckTime returns why a result probed at t, received at now, is refused,
// or "": t must lie within [now − MaxResultAge, now + MaxClockSkew].
func CheckTime(t, now time.Time) string {
	switch {
	case t.Before(now.Add(-MaxResultAge)):
		return fmt.Sprintf("%s is more than %d days before this evaluator's clock (%s); older results are not accepted",
			t.UTC().Format(time.RFC3339), MaxResultAge/(24*time.Hour), now.UTC().Format(time.RFC3339))
	case t.After(now.Add(MaxClockSkew)):
		return fmt.Sprintf("%s is more than %s ahead of this evaluator's clock (%s)",
			t.UTC().Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return ""
}

// Fit makes r acceptable to an evaluator, for an agent: it cuts strings
// as Bound does, keeps the first MaxListItems entries of every list (of
// headers, those whose names sort first), and if the observations still
// hold more than MaxObservedBytes of text, drops DNS answers and CNAMEs,
// last server first, saying so in that server's error. A prober's
// result passes Check after Fit, so that one pathological target cannot
// have the agent's batches refused.
func Fit(r *Result) {
	Bound(r)
	o := &r.Observed
	o.ResolvedIPs = firstItems(o.ResolvedIPs)
	o.Steps = firstItems(o.Steps)
	o.DNS = firstItems(o.DNS)
	if o.TLS != nil && len(o.TLS.SANs) > MaxListItems {
		t := *o.TLS
		t.SANs = firstItems(t.SANs)
		o.TLS = &t
	}
	for i := range o.DNS {
		o.DNS[i].Answers = firstItems(o.DNS[i].Answers)
		o.DNS[i].CNAMEs = firstItems(o.DNS[i].CNAMEs)
	}
	if len(o.Headers) > MaxListItems {
		keys := slices.Sorted(maps.Keys(o.Headers))
		h := make(map[string]string, MaxListItems)
		for _, k := range keys[:MaxListItems] {
			h[k] = o.Headers[k]
		}
		o.Headers = h
	}
	for i := len(o.DNS) - 1; i >= 0 && ObservedBytes(o) > MaxObservedBytes; i-- {
		d := &o.DNS[i]
		if len(d.Answers)+len(d.CNAMEs) == 0 {
			continue
		}
		d.Answers, d.CNAMEs = []string{}, nil
		d.Error = Clip(fmt.Sprintf("answers dropped: the result's observations were over %d KiB", MaxObservedBytes>>10), MaxTextBytes)
	}
}

// firstItems is l cut to MaxListItems entries, in a copy.
func firstItems[T any](l []T) []T {
	if len(l) <= MaxListItems {
		return l
	}
	return slices.Clone(l[:MaxListItems])
}
