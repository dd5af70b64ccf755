package probes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

const (
	// maxLineBytes bounds the line a TCP check reads, so that a server
	// streaming data without a newline cannot make the agent buffer it all.
	maxLineBytes = 64 << 10
	// maxObservedLine bounds Observed.Line, which travels in every result.
	maxObservedLine = 256
)

// tcpProber connects to a TCP service and, if asked, sends a text and
// matches the first line of the reply.
type tcpProber struct {
	base
	spec    *checks.TCPSpec
	expect  checks.TCPExpect
	dialer  *dialer
	timeout time.Duration
}

func newTCP(c *checks.Check, opts Options) (Prober, error) {
	s := c.TCP
	p := &tcpProber{
		base:    base{check: c, opts: opts},
		spec:    s,
		dialer:  newDialer(s.Resolver, s.IPProtocol, opts.Resolver),
		timeout: checkTimeout(c),
	}
	if s.Expect != nil {
		p.expect = *s.Expect
	}
	return p, nil
}

// Probe connects, converses and checks what it saw; see Prober.
func (p *tcpProber) Probe(ctx context.Context) wire.Result {
	r, began := p.start()
	ctx, cancel, limit := probeContext(ctx, p.timeout)
	defer cancel()

	var tr dialTrace
	conn, err := p.dialer.dial(ctx, p.spec.Address, &tr)
	recordDial(&r, &tr)
	if err != nil {
		return p.finish(&r, began, []string{dialReason(ctx, err, limit)}, "")
	}
	defer conn.Close()

	var failures []string
	if f := p.converse(ctx, conn, &r, limit); f != "" {
		failures = append(failures, f)
	}
	if reason, ok := addressAllowed(tr.connected, p.expect.Addresses); !ok {
		failures = append(failures, reason)
	}
	if reason, ok := latencyReason(time.Since(began), p.expect.MaxLatency); !ok {
		failures = append(failures, reason)
	}
	okReason := "connected to " + tr.connected
	if p.expect.Line != nil {
		okReason += ", line matched"
	}
	return p.finish(&r, began, failures, okReason)
}

// converse writes spec.Send and reads the line expect.Line must match. It
// returns a failure reason, or "" when all went as expected.
func (p *tcpProber) converse(ctx context.Context, conn net.Conn, r *wire.Result, limit time.Duration) string {
	if p.spec.Send == "" && p.expect.Line == nil {
		return ""
	}
	// The deadline bounds a server that accepts and then stays silent; the
	// AfterFunc also unblocks I/O when the caller cancels without one.
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Send is written verbatim: the line ending ("\n" or "\r\n") belongs to
	// the protocol being probed, so the check spells it out.
	if p.spec.Send != "" {
		if _, err := io.WriteString(conn, p.spec.Send); err != nil {
			return ioReason(ctx, err, limit, "sending", "send")
		}
	}
	if p.expect.Line == nil {
		return ""
	}
	start := time.Now()
	line, err := readLine(conn, maxLineBytes)
	r.Phases.Processing = time.Since(start).Seconds()
	r.Observed.Line = wire.Clip(p.opts.Redact(line), maxObservedLine)
	switch {
	case errors.Is(err, errLineTooLong):
		return fmt.Sprintf("no line ending within the first %d KiB the server sent", maxLineBytes>>10)
	case errors.Is(err, io.EOF):
		return "connection closed before a line was received"
	case err != nil:
		return ioReason(ctx, err, limit, "waiting for a line", "read")
	}
	if !p.expect.Line.MatchString(line) {
		return fmt.Sprintf("line %q does not match %s", r.Observed.Line, p.expect.Line)
	}
	return ""
}

// errLineTooLong means the server sent maxLineBytes without a newline.
var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes and returns it without its
// "\n" or "\r\n". A last line the server ends by closing the connection
// counts as a line; io.EOF means nothing at all was received.
func readLine(conn net.Conn, max int) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(conn, int64(max)+1), 4096)
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if b.Len()+len(chunk) > max {
			return "", errLineTooLong
		}
		b.Write(chunk)
		switch {
		case err == nil:
			return strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && b.Len() > 0:
			return strings.TrimSuffix(b.String(), "\r"), nil
		}
		return "", err
	}
}

// checkTimeout is the check's timeout, defaulted for checks that did not
// come through checks.Load.
func checkTimeout(c *checks.Check) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return checks.DefaultTimeout
}

// probeContext bounds a probe by timeout and returns the limit that will
// actually apply, which is shorter when the caller's deadline comes first,
// so that "timed out after" reasons state the real limit.
func probeContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc, time.Duration) {
	limit := timeout
	if d, ok := parent.Deadline(); ok {
		if left := time.Until(d); left < limit {
			limit = roundDuration(max(left, 0))
		}
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	return ctx, cancel, limit
}

// recordDial copies what the dial did into r, whether or not it succeeded,
// so that a failed probe still shows what the name resolved to.
func recordDial(r *wire.Result, tr *dialTrace) {
	r.Phases.Resolve = tr.resolve.Seconds()
	r.Phases.Connect = tr.connect.Seconds()
	r.Observed.ResolvedIPs = tr.resolvedStrings()
	r.Observed.ConnectedAddr = tr.connected
}

// dialReason is the reason for a failed dial, with the limit added to a
// timeout so that on-call can tell a tight timeout from a dead host.
func dialReason(ctx context.Context, err error, limit time.Duration) string {
	msg := err.Error()
	if ctx.Err() != nil && strings.HasSuffix(msg, "timed out") {
		msg += fmt.Sprintf(" after %s", limit)
	}
	return msg
}

// ioReason describes a failed read or write on an open connection: a
// timeout names what the probe was waiting for, other errors the operation.
func ioReason(ctx context.Context, err error, limit time.Duration, waiting, op string) string {
	// Canceled first: cancellation also surfaces as a deadline error,
	// because it works by moving the connection's deadline to the past.
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Sprintf("canceled while %s", waiting)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("timed out after %s %s", limit, waiting)
	}
	return fmt.Sprintf("%s: %s", op, describeNetErr(err))
}
