package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/outposthq/outpost/checks"
)

// Resolver looks up the addresses of a host. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// newResolver returns a resolver that asks server ("host[:port]"), or the
// system resolver when server is empty. Deadlines come from the context.
func newResolver(server string) Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	var d net.Dialer
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		},
	}
}

// dialer resolves and connects with timings, so that a probe can tell a slow
// DNS server from a slow network and report every address it resolved.
type dialer struct {
	resolver Resolver
	proto    string // checks.IPv4 etc.
	net      net.Dialer
}

func newDialer(resolverAddr, proto string, r Resolver) *dialer {
	if r == nil {
		r = newResolver(resolverAddr)
	}
	return &dialer{resolver: r, proto: proto}
}

// dialTrace records what one dial did.
type dialTrace struct {
	resolved  []netip.Addr
	connected string
	resolve   time.Duration
	connect   time.Duration
}

// resolvedStrings renders the resolved addresses for Observed.
func (t *dialTrace) resolvedStrings() []string {
	if len(t.resolved) == 0 {
		return nil
	}
	out := make([]string, len(t.resolved))
	for i, a := range t.resolved {
		out[i] = a.String()
	}
	return out
}

// resolve returns host's addresses in the order they should be tried.
func (d *dialer) resolve(ctx context.Context, host string, tr *dialTrace) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		tr.resolved = append(tr.resolved[:0], a.Unmap())
		return d.order(host, tr.resolved)
	}
	network := "ip"
	switch d.proto {
	case checks.IPv4:
		network = "ip4"
	case checks.IPv6:
		network = "ip6"
	}
	start := time.Now()
	addrs, err := d.resolver.LookupNetIP(ctx, network, host)
	tr.resolve += time.Since(start)
	if err != nil {
		return nil, &probeError{phase: "resolve", msg: fmt.Sprintf("resolve %s: %s", host, describeNetErr(err))}
	}
	for i := range addrs {
		addrs[i] = addrs[i].Unmap()
	}
	tr.resolved = addrs
	return d.order(host, addrs)
}

func (d *dialer) order(host string, addrs []netip.Addr) ([]netip.Addr, error) {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	var out []netip.Addr
	switch d.proto {
	case checks.IPv4:
		out = v4
	case checks.IPv6:
		out = v6
	case checks.IPPreferIPv6:
		out = append(v6, v4...)
	default:
		out = append(v4, v6...)
	}
	if len(out) == 0 {
		fam := map[string]string{checks.IPv4: "IPv4", checks.IPv6: "IPv6"}[d.proto]
		return nil, &probeError{phase: "resolve", msg: fmt.Sprintf("%s has no %s address (resolved %s)", host, fam, joinAddrs(addrs))}
	}
	return out, nil
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

// dial connects to hostport, trying resolved addresses in order until one
// answers or ctx ends.
func (d *dialer) dial(ctx context.Context, hostport string, tr *dialTrace) (net.Conn, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, &probeError{phase: "connect", msg: fmt.Sprintf("bad address %q: %v", hostport, err)}
	}
	addrs, err := d.resolve(ctx, host, tr)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, a := range addrs {
		target := net.JoinHostPort(a.String(), port)
		start := time.Now()
		conn, err := d.net.DialContext(ctx, "tcp", target)
		tr.connect += time.Since(start)
		if err == nil {
			tr.connected = target
			return conn, nil
		}
		if firstErr == nil {
			firstErr = &probeError{phase: "connect", msg: fmt.Sprintf("connect %s: %s", target, describeNetErr(err))}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// probeError is a failure whose message is already a reason fit for a human.
type probeError struct {
	phase string
	msg   string
}

func (e *probeError) Error() string { return e.msg }

// describeNetErr turns a network error into the short cause a reason needs:
// "connection refused", "timed out", "no such host".
func describeNetErr(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "no such host"
		case dnsErr.IsTimeout:
			return "DNS query timed out"
		}
		return dnsErr.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// addressAllowed reports whether the connected ip:port falls in one of the
// prefixes, and the failure reason if not.
func addressAllowed(connected string, allowed []netip.Prefix) (string, bool) {
	if len(allowed) == 0 || connected == "" {
		return "", true
	}
	ap, err := netip.ParseAddrPort(connected)
	if err != nil {
		return fmt.Sprintf("connected to %s, which is not an IP address", connected), false
	}
	ip := ap.Addr().Unmap()
	if slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		return "", true
	}
	want := make([]string, len(allowed))
	for i, p := range allowed {
		want[i] = p.String()
	}
	return fmt.Sprintf("connected to %s, want an address in [%s]", ip, strings.Join(want, " ")), false
}

// latencyReason reports a max_latency breach.
func latencyReason(took, max time.Duration) (string, bool) {
	if max == 0 || took <= max {
		return "", true
	}
	return fmt.Sprintf("took %s, want at most %s", roundDuration(took), max), false
}

// roundDuration keeps durations in reasons readable.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
