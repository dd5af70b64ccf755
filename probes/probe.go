// Package probes turns checks into results: one prober per check type, built
// once from a validated check by New and run many times. It holds the
// probers only, one file per protocol (http, tcp, tls, dns, series) over
// the dialing in dial.go; running them on a schedule and shipping their
// results is probes/agent's work.
//
// Of Outpost's packages it imports only checks, probes/wire and
// probes/clock. It never imports alerting (the evaluator) nor probes/agent,
// which builds on it.
package probes

import (
	"context"
	"fmt"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// Prober runs one check. It is built once by New, with everything that can
// be wrong with the check found then, and probed many times, possibly
// concurrently.
type Prober interface {
	// Probe runs the check once within ctx and the check's timeout. It
	// always returns a Result; a failure is a Result with OK false and a
	// Reason, never a panic or a bare error. Check, Type, Region, Time, OK,
	// Reason, Duration, Phases and Observed are filled in; Agent and Seq
	// are left for the caller.
	Probe(ctx context.Context) wire.Result
}

// Options are what a prober needs from its environment.
type Options struct {
	// Region is the region the probe runs from, copied into results.
	Region string
	// Clock tells the time results are stamped with and certificate
	// expiry and freshness are judged at; nil means clock.Real. Durations
	// are measured with the monotonic clock regardless.
	Clock clock.Clock
	// Redact removes secrets from reasons; nil means no redaction.
	// Use (*checks.Config).Redactor.
	Redact func(string) string
	// Resolver resolves host names; nil means a resolver built from the
	// check's resolver: setting, or the system's.
	Resolver Resolver
	// ResolvConf is the file dns checks read the "system" resolver from;
	// empty means /etc/resolv.conf.
	ResolvConf string

	// httpClients, when set, is shared by the HTTP probers built with
	// these options (see SharingHTTP); otherwise each prober has its own.
	httpClients *httpClients
}

// SharingHTTP returns a copy of o with which the HTTP and series probers
// built share one pool of HTTP clients, one per TLS configuration, instead
// of each making its own: how an agent running thousands of checks keeps
// one client per TLS setting.
func (o Options) SharingHTTP() Options {
	o.httpClients = newHTTPClients()
	return o
}

func (o *Options) fill() {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
}

// New builds the prober for c, which must come from checks.Load.
func New(c *checks.Check, opts Options) (Prober, error) {
	opts.fill()
	var (
		p   Prober
		err error
	)
	switch {
	case c.HTTP != nil:
		p, err = newHTTP(c, opts)
	case c.TCP != nil:
		p, err = newTCP(c, opts)
	case c.TLS != nil:
		p, err = newTLS(c, opts)
	case c.DNS != nil:
		p, err = newDNS(c, opts)
	case c.Series != nil:
		p, err = newSeries(c, opts)
	default:
		return nil, fmt.Errorf("check %q: %s checks cannot be probed by this version", c.ID, c.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("check %q: %w", c.ID, err)
	}
	return p, nil
}

// base carries what every prober shares and fills the common Result fields.
type base struct {
	check *checks.Check
	opts  Options
}

func (b *base) start() (wire.Result, time.Time) {
	now := b.opts.Clock.Now()
	return wire.Result{
		V:      wire.WireVersion,
		Check:  b.check.ID,
		Type:   b.check.Type(),
		Region: b.opts.Region,
		Time:   now,
	}, time.Now()
}

// finish sets the outcome of r. An empty failure list means success, with
// okReason as the summary.
func (b *base) finish(r *wire.Result, began time.Time, failures []string, okReason string) wire.Result {
	r.Duration = time.Since(began).Seconds()
	if len(failures) == 0 {
		r.OK = true
		r.Reason = joinReasons([]string{b.opts.Redact(okReason)})
		b.redactObserved(&r.Observed)
		wire.Fit(r) // within what evaluators accept
		return *r
	}
	r.OK = false
	// Redact before joining: the join cuts at wire.MaxReasonBytes, and a secret
	// cut in two would no longer be recognised.
	redacted := make([]string, len(failures))
	for i, f := range failures {
		redacted[i] = b.opts.Redact(f)
	}
	r.Reason = joinReasons(redacted)
	b.redactObserved(&r.Observed)
	wire.Fit(r)
	return *r
}

// redactObserved removes secrets from the evidence a probe kept, every
// string of it: a server may reflect a credential, in any encoding, in a
// header, a line, a TLS name, a DNS answer or a step's reason. Opts.Redact
// returns a string that holds no secret unchanged, without allocating.
func (b *base) redactObserved(o *wire.Observed) {
	redact := b.opts.Redact
	each := func(l []string) {
		for i := range l {
			l[i] = redact(l[i])
		}
	}
	each(o.ResolvedIPs)
	o.ConnectedAddr = redact(o.ConnectedAddr)
	o.HTTPVersion = redact(o.HTTPVersion)
	o.Line = redact(o.Line)
	for k, v := range o.Headers {
		if rk := redact(k); rk != k {
			delete(o.Headers, k)
			k = rk
		}
		o.Headers[k] = redact(v)
	}
	if t := o.TLS; t != nil {
		t.ServerName, t.Subject, t.Issuer = redact(t.ServerName), redact(t.Subject), redact(t.Issuer)
	}
	for i := range o.Steps {
		s := &o.Steps[i]
		s.Name, s.Reason = redact(s.Name), redact(s.Reason)
	}
	for i := range o.DNS {
		d := &o.DNS[i]
		d.Resolver, d.Server, d.NS, d.Error = redact(d.Resolver), redact(d.Server), redact(d.NS), redact(d.Error)
		each(d.Answers)
		each(d.CNAMEs)
	}
}

// joinReasons joins failures into one reason, clipped to
// wire.MaxReasonBytes.
func joinReasons(failures []string) string {
	s := failures[0]
	for _, f := range failures[1:] {
		s += "; " + f
	}
	return wire.Clip(s, wire.MaxReasonBytes)
}
