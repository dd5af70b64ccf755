package alerting

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// Limits on what unauthenticated callers may make the evaluator hold. A
// batch is authenticated only once its whole body has arrived (the
// signature covers it), so until then the evaluator spends as little as it
// can: headers are checked first, the body is read as it arrives into a
// buffer that grows with it, under a budget shared by all bodies in
// flight, a cap on how many are read at once and a minimum rate.
const (
	// maxRequestsPerSource bounds the requests one source address (an
	// IPv6 /64) may have in flight on the evaluator's endpoints. Agents
	// hold two at most (a batch and a confirmation poll); a NAT or a
	// reverse proxy in front of the evaluator is one source for all its
	// clients.
	maxRequestsPerSource = 64
	// maxSources bounds the sources tracked at once; beyond it, new
	// sources are refused until some finish.
	maxSources = 16384
	// maxBodyReads bounds the batch bodies read at once, before their
	// signature can be checked. Bodies cost what arrived of them, so the
	// bound is generous: a flood from a few addresses must not lock
	// agents out.
	maxBodyReads = 1024
	// bodyBudget bounds the bytes held by batch bodies in flight,
	// authenticated or not; one source may hold a quarter of it.
	bodyBudget       = 96 << 20
	sourceBodyBudget = bodyBudget / 4
	// firstBodyChunk is the buffer a body starts in; it doubles only as
	// bytes arrive.
	firstBodyChunk = 16 << 10
	// minBodyTime and minBodyRate make the minimum rate at which a body
	// must arrive: a body of n bytes gets minBodyTime + n/minBodyRate,
	// counted from the end of its headers and extended as bytes arrive.
	minBodyTime = 10 * time.Second
	minBodyRate = 32 << 10
	// retryAfterBusy is the Retry-After of a 503 for a full evaluator.
	retryAfterBusy = "1"
)

// errBusy: the evaluator holds as many bodies as it may; the sender should
// retry shortly (503).
var errBusy = fmt.Errorf("%w: too many batches in flight; retry", ErrUnavailable)

// errSlowBody: the body did not arrive at the minimum rate.
var errSlowBody = errors.New("body arrived too slowly")

// guard holds the limits on unauthenticated work: in-flight requests per
// source, the body budget and the body-read slots. It is safe for
// concurrent use.
type guard struct {
	mu      sync.Mutex
	sources map[netip.Addr]*sourceUse
	used    int64 // bytes of bodies in flight

	bodies chan struct{} // body-read slots
	// perSource, budget, sourceBudget and bodyTime are the limits;
	// tests change them.
	perSource    int
	budget       int64
	sourceBudget int64
	bodyTime     time.Duration
}

// sourceUse is what one source has in flight.
type sourceUse struct {
	requests int
	bytes    int64
}

func newGuard() *guard {
	return &guard{
		sources:      map[netip.Addr]*sourceUse{},
		bodies:       make(chan struct{}, maxBodyReads),
		perSource:    maxRequestsPerSource,
		budget:       bodyBudget,
		sourceBudget: sourceBodyBudget,
		bodyTime:     minBodyTime,
	}
}

// sourceOf is the source a request is counted under: its remote address,
// IPv6 grouped by /64 (one host usually has a whole /64). An address it
// cannot parse counts as one shared source.
func sourceOf(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// enter counts a request of src in, reporting false (counting nothing)
// when src already has perSource in flight or too many sources are.
func (g *guard) enter(src netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	u := g.sources[src]
	if u == nil {
		if len(g.sources) >= maxSources {
			return false
		}
		u = &sourceUse{}
		g.sources[src] = u
	}
	if u.requests >= g.perSource {
		return false
	}
	u.requests++
	return true
}

// leave counts a request of src out.
func (g *guard) leave(src netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := g.sources[src]; u != nil {
		if u.requests--; u.requests <= 0 {
			delete(g.sources, src)
		}
	}
}

// take reserves n bytes of the body budget for a request of src (which
// has entered).
func (g *guard) take(src netip.Addr, n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	u := g.sources[src]
	if g.used+n > g.budget || (u != nil && u.bytes+n > g.sourceBudget) {
		return false
	}
	g.used += n
	if u != nil {
		u.bytes += n
	}
	return true
}

// give returns n bytes taken for src to the body budget.
func (g *guard) give(src netip.Addr, n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used -= n
	if u := g.sources[src]; u != nil {
		u.bytes -= n
	}
}

// limitSources wraps h so that a source with too many requests in flight
// is answered 503 with Retry-After (429 on /ping, whose callers are not
// agents) and counted, before anything else is done for it.
func (e *Evaluator) limitSources(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		src := sourceOf(req)
		if !e.guard.enter(src) {
			e.refuse("source_limit", src, e.clock.Now())
			w.Header().Set("Retry-After", retryAfterBusy)
			w.Header().Set("Connection", "close")
			if req.URL.Path == wire.ResultsPath {
				w.Header().Set(wire.HeaderEvaluator, "1")
				http.Error(w, "too many requests in flight from this address; retry", http.StatusServiceUnavailable)
				return
			}
			http.Error(w, "too many requests in flight from this address; retry", http.StatusTooManyRequests)
			return
		}
		defer e.guard.leave(src)
		h.ServeHTTP(w, req)
	})
}

// refuse counts a request refused for reason (a label of
// outpost_http_refused_total) and logs it at most once per
// refusalLogEvery per reason.
func (e *Evaluator) refuse(reason string, src netip.Addr, now time.Time) {
	e.metrics.refused(reason).Inc()
	if ok, suppressed := e.refusalLog.Allow(reason, now); ok {
		e.log.Warn("request refused", "reason", reason, "source", src.String(), "suppressed", suppressed)
	}
}

// refusalLogEvery is the most often one kind of refusal is logged.
const refusalLogEvery = time.Minute

// body is a request body read by readBody; release returns its buffer.
type body struct {
	b        []byte
	reserved int64
	src      netip.Addr
}

// readBody reads req's body, at most wire.MaxBatchBytes, into a buffer
// that grows only as bytes arrive, each growth reserved from the body
// budget. It holds a body-read slot while it reads, and sets the
// connection's read deadline so that the body arrives at the minimum
// rate. Call e.release on what it returns, error or not.
func (e *Evaluator) readBody(w http.ResponseWriter, req *http.Request) (*body, error) {
	bd := &body{src: sourceOf(req)}
	select {
	case e.guard.bodies <- struct{}{}:
	default:
		return bd, errBusy
	}
	defer func() { <-e.guard.bodies }()
	if p, ok := e.bodies.Get().(*[]byte); ok && e.guard.take(bd.src, int64(cap(*p))) {
		bd.b, bd.reserved = (*p)[:0], int64(cap(*p))
	} else {
		if ok {
			e.bodies.Put(p)
		}
		if !e.guard.take(bd.src, firstBodyChunk) {
			return bd, errBusy
		}
		bd.b, bd.reserved = make([]byte, 0, firstBodyChunk), firstBodyChunk
	}
	// The deadline is the network's, in real time: it bounds what a
	// caller may hold, not a decision.
	rc := http.NewResponseController(w)
	start := time.Now()
	setDeadline := func() {
		_ = rc.SetReadDeadline(start.Add(e.guard.bodyTime + time.Duration(int64(len(bd.b))*int64(time.Second)/minBodyRate)))
	}
	setDeadline()
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	for {
		if len(bd.b) == cap(bd.b) {
			if len(bd.b) > wire.MaxBatchBytes {
				return bd, fmt.Errorf("%w: body is over the limit of %d bytes", ErrTooLarge, int64(wire.MaxBatchBytes))
			}
			n := min(max(2*cap(bd.b), firstBodyChunk), wire.MaxBatchBytes+1)
			if cl := req.ContentLength; cl >= 0 {
				// A claimed length bounds the growth (one spare byte to
				// read the end), never sizes it: a buffer grows only
				// when what arrived has filled it.
				n = min(n, int(cl)+1)
			}
			if !e.guard.take(bd.src, int64(n)) {
				return bd, errBusy
			}
			grown := make([]byte, len(bd.b), n)
			copy(grown, bd.b)
			e.guard.give(bd.src, bd.reserved)
			bd.b, bd.reserved = grown, int64(n)
		}
		n, err := req.Body.Read(bd.b[len(bd.b):cap(bd.b)])
		bd.b = bd.b[:len(bd.b)+n]
		if n > 0 {
			setDeadline()
		}
		switch {
		case err == io.EOF:
			if len(bd.b) > wire.MaxBatchBytes {
				return bd, fmt.Errorf("%w: body is over the limit of %d bytes", ErrTooLarge, int64(wire.MaxBatchBytes))
			}
			return bd, nil
		case isTimeout(err):
			return bd, fmt.Errorf("%w: %w after %d bytes (at least %d bytes/s wanted)", ErrInvalidBatch, errSlowBody, len(bd.b), minBodyRate)
		case err != nil:
			return bd, fmt.Errorf("%w: reading body: %w", ErrInvalidBatch, err)
		}
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// release returns bd's buffer to the pool and its bytes to the budget.
func (e *Evaluator) release(bd *body) {
	if bd.reserved == 0 {
		return
	}
	e.guard.give(bd.src, bd.reserved)
	if cap(bd.b) <= maxPooledBody {
		b := bd.b[:0]
		e.bodies.Put(&b)
	}
	bd.b, bd.reserved = nil, 0
}

// retryAfter formats a duration for a Retry-After header: whole seconds,
// at least one.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}
