package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// UserAgent is sent by HTTP probes unless a check sets its own.
const UserAgent = "Outpost-Probe/1"

// httpProbe runs an HTTP check: one request, or several steps that pass
// captured values along.
type httpProbe struct {
	base
	spec   *checks.HTTPSpec
	client *resty.Client
	dialer *dialer
	steps  []*httpStep
	multi  bool
}

type traceKey struct{}

func newHTTP(c *checks.Check, opts Options) (Prober, error) {
	h := c.HTTP
	p := &httpProbe{base: base{check: c, opts: opts}, spec: h}
	p.dialer = newDialer(h.Resolver, h.IPProtocol, opts.Resolver)

	var settings tlsSettings
	if h.TLS != nil {
		settings = tlsSettings{serverName: h.TLS.ServerName, caPEM: h.TLS.CAPEM, insecure: h.TLS.InsecureSkipVerify, minVersion: h.TLS.MinVersion}
	}
	clients := opts.httpClients
	if clients == nil {
		clients = newHTTPClients()
	}
	var err error
	if p.client, err = clients.get(settings); err != nil {
		return nil, err
	}
	if len(h.Steps) == 0 {
		p.steps = []*httpStep{newHTTPStep("", &h.HTTPRequest, h.BodyBytes, nil, h.Headers)}
	} else {
		p.multi = true
		for i := range h.Steps {
			s := &h.Steps[i]
			p.steps = append(p.steps, newHTTPStep(s.Name, &s.HTTPRequest, s.BodyBytes, s.Capture, h.Headers))
		}
	}
	for _, st := range p.steps {
		if e := st.expect.spec; e != nil && e.CEL != nil {
			// Built once here; every probe evaluates the same program.
			if st.expect.cel, err = e.CEL.Program(); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// quietLogger keeps resty from writing to stderr; Outpost reports through
// results, not library warnings.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}

var _ resty.Logger = quietLogger{}

// httpTrace is the state of one probe run, shared by the dialer and the
// httptrace hooks through the request context.
type httpTrace struct {
	// The check's dialer and redirect policy, for the shared transport.
	dialer       *dialer
	follow       bool
	maxRedirects int

	// mu guards d: the transport dials and runs the trace hooks on its own
	// goroutines, which may still be running when a timed-out request has
	// already returned.
	mu sync.Mutex
	d  traceData
}

// traceData is what one probe run's request did, phase by phase.
type traceData struct {
	dial       dialTrace
	stage      string
	tlsStart   time.Time
	tls        time.Duration
	wrote      time.Time
	firstByte  time.Time
	processing time.Duration
	redirects  int
	tlsState   *tls.ConnectionState
}

// update changes the trace under its lock.
func (tr *httpTrace) update(f func(d *traceData)) {
	tr.mu.Lock()
	f(&tr.d)
	tr.mu.Unlock()
}

// read returns a copy of the trace.
func (tr *httpTrace) read() traceData {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.d
}

// dialHTTP is the shared transports' dialer: it dials with the dialer of
// the check the request belongs to, found in the request context, and
// records the timings in that probe run's trace.
func dialHTTP(ctx context.Context, _, addr string) (net.Conn, error) {
	tr, _ := ctx.Value(traceKey{}).(*httpTrace)
	if tr == nil || tr.dialer == nil {
		return nil, errors.New("probes: HTTP request without a probe trace")
	}
	tr.update(func(d *traceData) { d.stage = "resolving" })
	var dt dialTrace
	conn, err := tr.dialer.dial(ctx, addr, &dt)
	tr.update(func(d *traceData) {
		d.dial.resolve += dt.resolve
		d.dial.connect += dt.connect
		if len(dt.resolved) > 0 {
			d.dial.resolved = dt.resolved
		}
		if dt.connected != "" {
			d.dial.connected = dt.connected
		}
		if err == nil {
			d.stage = "connected"
		}
	})
	return conn, err
}

// checkRedirect applies the redirect policy of the request's check.
func checkRedirect(req *http.Request, via []*http.Request) error {
	tr, _ := req.Context().Value(traceKey{}).(*httpTrace)
	if tr == nil || !tr.follow {
		return http.ErrUseLastResponse
	}
	if len(via) > tr.maxRedirects {
		return fmt.Errorf("stopped after %d redirects", tr.maxRedirects)
	}
	tr.update(func(d *traceData) { d.redirects++ })
	return nil
}

// httpClients shares one client, and so one transport, among the HTTP
// checks with the same TLS settings (and series checks, which use the
// default settings): a client per check would cost more
// memory than the check itself. Keep-alives are off, so sharing never
// reuses a connection; each probe still opens its own and times it.
type httpClients struct {
	mu    sync.Mutex
	byTLS map[string]*resty.Client
}

func newHTTPClients() *httpClients { return &httpClients{byTLS: map[string]*resty.Client{}} }

func (c *httpClients) get(s tlsSettings) (*resty.Client, error) {
	key := s.key()
	c.mu.Lock()
	defer c.mu.Unlock()
	if client, ok := c.byTLS[key]; ok {
		return client, nil
	}
	var tlsCfg *tls.Config
	if key != (tlsSettings{}).key() {
		var err error
		if tlsCfg, err = s.clientConfig(); err != nil {
			return nil, err
		}
	}
	transport := &http.Transport{
		DialContext:            dialHTTP,
		TLSClientConfig:        tlsCfg,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ForceAttemptHTTP2:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	client := resty.NewWithClient(&http.Client{Transport: transport, CheckRedirect: checkRedirect}).
		SetLogger(quietLogger{}).
		SetDoNotParseResponse(true).
		SetHeader("User-Agent", UserAgent)
	c.byTLS[key] = client
	return client, nil
}

func (tr *httpTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		TLSHandshakeStart: func() {
			tr.update(func(d *traceData) { d.stage = "in the TLS handshake"; d.tlsStart = time.Now() })
		},
		TLSHandshakeDone: func(st tls.ConnectionState, _ error) {
			tr.update(func(d *traceData) { d.tls += time.Since(d.tlsStart); d.tlsState = &st })
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			tr.update(func(d *traceData) { d.stage = "waiting for the response"; d.wrote = time.Now() })
		},
		GotFirstResponseByte: func() {
			tr.update(func(d *traceData) {
				d.firstByte = time.Now()
				if !d.wrote.IsZero() {
					d.processing += d.firstByte.Sub(d.wrote)
				}
				d.stage = "reading the response"
			})
		},
	}
}

// Probe runs the check once.
func (p *httpProbe) Probe(ctx context.Context) wire.Result {
	r, began := p.start()
	ctx, cancel := context.WithTimeout(ctx, p.check.Timeout)
	defer cancel()

	var (
		failures []string
		vars     map[string]string
		cookies  []*http.Cookie
		okReason string
	)
	if p.multi {
		vars = map[string]string{}
	}
	for i, st := range p.steps {
		out := p.runStep(ctx, st, vars, cookies)
		r.Phases.Add(out.phases)
		if i == 0 {
			r.Observed.ResolvedIPs = out.resolved
			r.Observed.ConnectedAddr = out.connected
		}
		r.Observed.StatusCode = out.status
		r.Observed.HTTPVersion = out.proto
		r.Observed.Redirects += out.redirects
		r.Observed.BodyBytes = out.bodyBytes
		if out.tls != nil {
			r.Observed.TLS = out.tls
		}
		if len(out.headers) > 0 {
			r.Observed.Headers = out.headers
		}
		if p.multi {
			r.Observed.Steps = append(r.Observed.Steps, wire.StepObservation{
				Name: st.name, OK: len(out.failures) == 0, StatusCode: out.status,
				Duration: out.duration.Seconds(), Reason: p.opts.Redact(joinIf(out.failures)),
			})
		}
		if len(out.failures) > 0 {
			if p.multi {
				failures = append(failures, fmt.Sprintf("step %q: %s", st.name, joinReasons(out.failures)))
			} else {
				failures = out.failures
			}
			break
		}
		cookies = mergeCookies(cookies, out.cookies)
		okReason = fmt.Sprintf("status %d", out.status)
	}
	if p.multi && len(failures) == 0 {
		okReason = fmt.Sprintf("%d steps passed", len(p.steps))
	}
	return p.finish(&r, began, failures, okReason)
}

func joinIf(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return joinReasons(f)
}

func mergeCookies(have, got []*http.Cookie) []*http.Cookie {
	for _, c := range got {
		have = slices.DeleteFunc(have, func(h *http.Cookie) bool { return h.Name == c.Name })
		have = append(have, c)
	}
	return have
}

// stepOutcome is what one request of a probe did.
type stepOutcome struct {
	failures  []string
	phases    wire.Phases
	resolved  []string
	connected string
	status    int
	proto     string
	redirects int
	bodyBytes int64
	tls       *wire.TLSObservation
	headers   map[string]string
	cookies   []*http.Cookie
	duration  time.Duration
}

func (p *httpProbe) runStep(ctx context.Context, st *httpStep, vars map[string]string, cookies []*http.Cookie) (out stepOutcome) {
	start := time.Now()
	tr := &httpTrace{d: traceData{stage: "starting"}, dialer: p.dialer, follow: *p.spec.FollowRedirects, maxRedirects: p.spec.MaxRedirects}
	ctx = context.WithValue(ctx, traceKey{}, tr)
	ctx = httptrace.WithClientTrace(ctx, tr.clientTrace())
	defer func() {
		out.duration = time.Since(start)
		d := tr.read()
		out.phases.Resolve = d.dial.resolve.Seconds()
		out.phases.Connect = d.dial.connect.Seconds()
		out.phases.TLS = d.tls.Seconds()
		out.phases.Processing = d.processing.Seconds()
		out.resolved = d.dial.resolvedStrings()
		out.connected = d.dial.connected
		out.redirects = d.redirects
	}()

	req := p.client.R().SetContext(ctx)
	for _, kv := range st.headers {
		req.SetHeader(kv[0], expandVars(kv[1], vars))
	}
	for k, v := range st.query {
		req.SetQueryParam(k, expandVars(v, vars))
	}
	if len(st.body) > 0 {
		req.SetBody(expandVarsBytes(st.body, vars, st.templated))
	}
	if a := p.spec.BasicAuth; a != nil {
		req.SetBasicAuth(a.Username, a.Password.Value())
	}
	if !p.spec.BearerToken.IsZero() {
		req.SetAuthToken(p.spec.BearerToken.Value())
	}
	if len(cookies) > 0 {
		req.SetCookies(cookies)
	}
	resp, err := req.Execute(st.method, expandVars(st.url, vars))
	if err != nil {
		out.failures = []string{p.describeRequestErr(ctx, err, tr)}
		return out
	}
	raw := resp.RawBody()
	defer raw.Close()
	hr := resp.RawResponse
	out.status = hr.StatusCode
	out.proto = hr.Proto
	out.cookies = hr.Cookies()
	if hr.TLS != nil {
		out.tls = observeTLS(hr.TLS)
	} else if st := tr.read().tlsState; st != nil {
		out.tls = observeTLS(st)
	}

	var body []byte
	limit := int64(p.spec.MaxBodyBytes)
	body, truncated, readErr := readCapped(raw, limit)
	if fb := tr.read().firstByte; !fb.IsZero() {
		out.phases.Transfer = time.Since(fb).Seconds()
	}
	out.bodyBytes = int64(len(body))
	if readErr != nil {
		out.failures = append(out.failures, fmt.Sprintf("reading body after %d bytes: %s", len(body), describeNetErr(readErr)))
		return out
	}
	ev := evaluation{
		resp: hr, body: body, truncated: truncated, limit: limit,
		connected: tr.read().dial.connected, tls: out.tls, now: p.opts.Clock.Now(), redact: p.opts.Redact,
		ctx: ctx,
	}
	if st.expect.cel != nil {
		d := tr.read()
		ev.timings = map[string]float64{
			"resolve": d.dial.resolve.Seconds(), "connect": d.dial.connect.Seconds(), "tls": d.tls.Seconds(),
			"processing": d.processing.Seconds(), "transfer": out.phases.Transfer, "total": time.Since(start).Seconds(),
		}
	}
	out.failures = append(out.failures, st.expect.check(&ev)...)
	if e := st.expect.spec; e != nil {
		if msg, ok := latencyReason(time.Since(start), e.MaxLatency); !ok {
			out.failures = append(out.failures, msg)
		}
	}
	out.headers = ev.headers
	if len(out.failures) == 0 && len(st.captures) > 0 {
		if msg := st.capture(&ev, vars); msg != "" {
			out.failures = append(out.failures, msg)
		}
	}
	return out
}

// readCapped reads at most limit bytes and reports whether more were left.
// The connection is not reused, so the rest is simply not read.
func readCapped(r io.Reader, limit int64) ([]byte, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if int64(len(body)) > limit {
		return body[:limit], true, nil
	}
	return body, false, err
}

// describeRequestErr explains why no response arrived.
func (p *httpProbe) describeRequestErr(ctx context.Context, err error, tr *httpTrace) string {
	d := tr.read()
	var pe *probeError
	if errors.As(err, &pe) {
		return pe.msg
	}
	if ctx.Err() != nil || isTimeout(err) {
		msg := fmt.Sprintf("timed out after %s %s", p.check.Timeout, d.stage)
		if d.dial.connected != "" {
			msg += " (connected to " + d.dial.connected + ")"
		}
		return msg
	}
	if d.stage == "in the TLS handshake" || isTLSErr(err) {
		var minV checks.TLSVersion
		if p.spec.TLS != nil {
			minV = p.spec.TLS.MinVersion
		}
		return describeTLSErr(err, minV)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if strings.Contains(err.Error(), "stopped after") {
		return err.Error()
	}
	msg := describeNetErr(err)
	if d.dial.connected != "" {
		msg = fmt.Sprintf("%s %s", d.dial.connected, msg)
	}
	return msg
}

func isTLSErr(err error) bool {
	var (
		rec  tls.RecordHeaderError
		alrt tls.AlertError
		cve  *tls.CertificateVerificationError
	)
	return errors.As(err, &rec) || errors.As(err, &alrt) || errors.As(err, &cve) || strings.Contains(err.Error(), "tls: ")
}
