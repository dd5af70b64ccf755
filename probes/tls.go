package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// tlsProber connects to a TLS service and completes a handshake with chain
// and hostname verification, reporting the certificate it was shown.
type tlsProber struct {
	base
	spec    *checks.TLSSpec
	expect  checks.TLSExpect
	dialer  *dialer
	config  *tls.Config
	timeout time.Duration
}

func newTLS(c *checks.Check, opts Options) (Prober, error) {
	s := c.TLS
	host, _, err := net.SplitHostPort(s.Address)
	if err != nil {
		return nil, fmt.Errorf("tls.address %q: %w", s.Address, err)
	}
	settings := tlsSettings{
		serverName: s.ServerName,
		caPEM:      s.CAPEM,
		insecure:   s.InsecureSkipVerify,
		minVersion: s.MinVersion,
	}
	// The name verified is the one users wrote in the address unless they
	// say otherwise; for an IP address Go checks the certificate's IP SANs.
	if settings.serverName == "" {
		settings.serverName = host
	}
	cfg, err := settings.clientConfig()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	p := &tlsProber{
		base:    base{check: c, opts: opts},
		spec:    s,
		dialer:  newDialer(s.Resolver, s.IPProtocol, opts.Resolver),
		config:  cfg,
		timeout: checkTimeout(c),
	}
	if s.Expect != nil {
		p.expect = *s.Expect
	}
	return p, nil
}

// Probe connects, shakes hands and checks the certificate; see Prober.
func (p *tlsProber) Probe(ctx context.Context) wire.Result {
	r, began := p.start()
	ctx, cancel, limit := probeContext(ctx, p.timeout)
	defer cancel()

	var tr dialTrace
	raw, err := p.dialer.dial(ctx, p.spec.Address, &tr)
	recordDial(&r, &tr)
	if err != nil {
		return p.finish(&r, began, []string{dialReason(ctx, err, limit)}, "")
	}
	defer raw.Close()

	// HandshakeContext honours ctx on its own; the deadline is a backstop
	// should the handshake ever block outside its watch.
	if d, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(d)
	}
	conn := tls.Client(raw, p.config)
	start := time.Now()
	err = conn.HandshakeContext(ctx)
	r.Phases.TLS = time.Since(start).Seconds()
	st := conn.ConnectionState()
	if err != nil {
		// A failed verification still says which certificates were
		// presented; keep them so the result shows what the server served.
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			st.PeerCertificates = verr.UnverifiedCertificates
			r.Observed.TLS = observeTLS(&st)
		}
		return p.finish(&r, began, []string{p.handshakeReason(ctx, err, limit)}, "")
	}
	// Closing the TLS layer sends close_notify, so servers do not log every
	// probe as an abrupt disconnect; the deferred raw.Close is a backstop.
	defer conn.Close()
	obs := observeTLS(&st)
	r.Observed.TLS = obs

	var failures []string
	now := p.opts.Clock.Now()
	if reason, ok := certDaysReason(obs, p.expect.CertMinDays, now); !ok {
		failures = append(failures, reason)
	}
	if reason, ok := addressAllowed(tr.connected, p.expect.Addresses); !ok {
		failures = append(failures, reason)
	}
	if reason, ok := latencyReason(time.Since(began), p.expect.MaxLatency); !ok {
		failures = append(failures, reason)
	}
	return p.finish(&r, began, failures, p.okReason(obs, now))
}

// handshakeReason explains a failed handshake; a timeout is reported as such
// rather than as whatever error the interrupted handshake produced.
func (p *tlsProber) handshakeReason(ctx context.Context, err error, limit time.Duration) string {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled during the TLS handshake"
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("timed out after %s during the TLS handshake", limit)
	}
	return describeTLSErr(err, p.spec.MinVersion)
}

// okReason summarises a passing probe: the version and how long the
// certificate has left, which is what on-call most often asks next.
func (p *tlsProber) okReason(obs *wire.TLSObservation, now time.Time) string {
	s := "TLS " + obs.Version
	switch left := obs.NotAfter.Sub(now); {
	case obs.NotAfter.IsZero():
	case left < 0:
		s += fmt.Sprintf(", certificate expired on %s", obs.NotAfter.UTC().Format("2006-01-02"))
	default:
		s += fmt.Sprintf(", certificate valid for %d more days", int(left.Hours()/24))
	}
	if p.spec.InsecureSkipVerify {
		s += " (not verified: insecure_skip_verify)"
	}
	return s
}
