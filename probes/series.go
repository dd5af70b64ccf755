package probes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// maxSeriesBody bounds the response a series check reads: one number never
// needs more, and a query or endpoint that sends more must not make the
// agent buffer it.
const maxSeriesBody = 1 << 20

// maxDetail bounds the part of a server's error message kept in a reason.
const maxDetail = 200

// errBodyTooLarge is returned by a series response body past maxSeriesBody.
var errBodyTooLarge = errors.New("body larger than 1MiB")

// seriesProber reads the number of a series check from its source.
type seriesProber struct {
	base
	dialer  *dialer
	timeout time.Duration
	read    seriesReader
}

// seriesReader fetches the number of one probe run, or returns the reason
// it could not.
type seriesReader func(ctx context.Context, x *seriesExchange) (float64, string)

// seriesExchange is the state of one probe run, shared with the transport
// through the request context.
type seriesExchange struct {
	trace *httpTrace
	limit time.Duration
	// status is the status code of the last response.
	status atomic.Int32
}

type exchangeKey struct{}

func newSeries(c *checks.Check, opts Options) (Prober, error) {
	clients := opts.httpClients
	if clients == nil {
		clients = newHTTPClients()
	}
	// The HTTP checks' shared transport: keep-alives are off, so each
	// probe still opens, and times, its own connection.
	shared, err := clients.get(tlsSettings{})
	if err != nil {
		return nil, err
	}
	next := shared.GetClient().Transport
	p := &seriesProber{
		base:    base{check: c, opts: opts},
		dialer:  newDialer("", "", opts.Resolver),
		timeout: checkTimeout(c),
	}
	s := c.Series
	switch {
	case s.Prometheus != nil:
		p.read, err = newPromSource(s.Prometheus, next, opts.Redact)
	case s.HTTP != nil:
		p.read, err = newJSONSource(s.HTTP, next)
	default:
		err = errors.New("series: no source")
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Probe reads the number once; see Prober.
func (p *seriesProber) Probe(ctx context.Context) wire.Result {
	r, began := p.start()
	ctx, cancel, limit := probeContext(ctx, p.timeout)
	defer cancel()

	x := &seriesExchange{trace: &httpTrace{d: traceData{stage: "starting"}, dialer: p.dialer}, limit: limit}
	ctx = context.WithValue(ctx, traceKey{}, x.trace)
	ctx = context.WithValue(ctx, exchangeKey{}, x)
	ctx = httptrace.WithClientTrace(ctx, x.trace.clientTrace())

	v, failure := p.read(ctx, x)
	x.record(&r)
	if failure != "" {
		return p.finish(&r, began, []string{failure}, "")
	}
	r.Observed.Value = &v
	return p.finish(&r, began, nil, "value "+formatValue(v))
}

// record copies what the request did into r.
func (x *seriesExchange) record(r *wire.Result) {
	d := x.trace.read()
	r.Phases.Resolve = d.dial.resolve.Seconds()
	r.Phases.Connect = d.dial.connect.Seconds()
	r.Phases.TLS = d.tls.Seconds()
	r.Phases.Processing = d.processing.Seconds()
	r.Observed.ResolvedIPs = d.dial.resolvedStrings()
	r.Observed.ConnectedAddr = d.dial.connected
	r.Observed.StatusCode = int(x.status.Load())
}

// requestReason explains why no usable response arrived.
func (x *seriesExchange) requestReason(ctx context.Context, err error) string {
	d := x.trace.read()
	var pe *probeError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return "canceled while " + d.stage
	case ctx.Err() != nil || isTimeout(err):
		msg := fmt.Sprintf("timed out after %s %s", x.limit, d.stage)
		if d.dial.connected != "" {
			msg += " (connected to " + d.dial.connected + ")"
		}
		return msg
	case errors.Is(err, errBodyTooLarge):
		return errBodyTooLarge.Error()
	case errors.As(err, &pe):
		return pe.msg
	case d.stage == "in the TLS handshake" || isTLSErr(err):
		return describeTLSErr(err, 0)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := describeNetErr(err)
	if d.dial.connected != "" {
		msg = fmt.Sprintf("%s %s", d.dial.connected, msg)
	}
	return msg
}

// seriesTransport adds what every series request needs to the shared
// transport: the bearer token (only for the configured origin, so that a
// redirect elsewhere does not carry it), a User-Agent, the status code for
// the result, and the bound on the body.
type seriesTransport struct {
	next   http.RoundTripper
	origin *url.URL
	token  string
}

// RoundTrip sends req; see http.RoundTripper.
func (t *seriesTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if t.token != "" && req.URL.Scheme == t.origin.Scheme && req.URL.Host == t.origin.Host {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if x, _ := req.Context().Value(exchangeKey{}).(*seriesExchange); x != nil {
		x.status.Store(int32(resp.StatusCode))
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxSeriesBody}
	return resp, nil
}

func newSeriesTransport(next http.RoundTripper, rawURL string, token checks.Secret) (*seriesTransport, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("series: url: %w", err)
	}
	return &seriesTransport{next: next, origin: u, token: token.Value()}, nil
}

// cappedBody fails with errBodyTooLarge once more than its limit is read.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// newPromSource returns the read function of a Prometheus series: an
// instant query whose result must be one number.
func newPromSource(s *checks.PrometheusSeries, next http.RoundTripper, redact func(string) string) (seriesReader, error) {
	rt, err := newSeriesTransport(next, s.URL, s.BearerToken)
	if err != nil {
		return nil, err
	}
	client, err := api.NewClient(api.Config{Address: s.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("series: prometheus: %w", err)
	}
	prom := v1.NewAPI(client)
	return func(ctx context.Context, x *seriesExchange) (float64, string) {
		// The zero time lets the server evaluate at its own now, so that
		// an agent's clock skew cannot query the future. The query's own
		// timeout parameter is not sent: it takes only whole units
		// ("1.5s" is refused), and Prometheus stops evaluating anyway
		// when the probe closes the connection.
		val, _, _, err := prom.Query(ctx, s.Query, time.Time{})
		if err != nil {
			var apiErr *v1.Error
			if ctx.Err() == nil && errors.As(err, &apiErr) {
				return 0, promErrorReason(apiErr, int(x.status.Load()), redact)
			}
			return 0, x.requestReason(ctx, err)
		}
		v, failure := promNumber(val)
		if failure != "" {
			return 0, failure
		}
		return v, finiteReason(v)
	}, nil
}

// promErrorReason explains an error the Prometheus API client returned
// for a response that did arrive.
func promErrorReason(e *v1.Error, status int, redact func(string) string) string {
	// A status other than 2xx, 400 and 422 carries no API error envelope;
	// the client then keeps the body, which says more than its "server
	// error: 503".
	if status/100 != 2 && status != http.StatusBadRequest && status != http.StatusUnprocessableEntity {
		msg := fmt.Sprintf("query failed: status %d", status)
		if d := detail(e.Detail, redact); d != "" {
			msg += ": " + d
		}
		return msg
	}
	return fmt.Sprintf("query failed: %s: %s", e.Type, detail(e.Msg, redact))
}

// detail is a server's message made fit for a reason: secrets removed
// before it is cut, so that no part of one survives, and white space
// collapsed.
func detail(s string, redact func(string) string) string {
	return wire.Clip(strings.Join(strings.Fields(redact(s)), " "), maxDetail)
}

// promNumber takes the one number out of a query result.
func promNumber(val model.Value) (float64, string) {
	switch v := val.(type) {
	case *model.Scalar:
		return float64(v.Value), ""
	case model.Vector:
		switch {
		case len(v) == 0:
			return 0, "query returned no series"
		case len(v) > 1:
			return 0, fmt.Sprintf("query returned %d series; want one (wrap it in sum())", len(v))
		case v[0].Histogram != nil:
			return 0, "query returned a native histogram; want a number (use histogram_count, histogram_sum or histogram_quantile)"
		}
		return float64(v[0].Value), ""
	case model.Matrix:
		return 0, "query returned a matrix; want an instant vector or scalar"
	case nil:
		return 0, "query returned no result"
	}
	return 0, fmt.Sprintf("query returned a %s; want an instant vector or scalar", val.Type())
}

// finiteReason fails a number that is not finite.
func finiteReason(v float64) string {
	switch {
	case math.IsNaN(v):
		return "value is NaN"
	case math.IsInf(v, 1):
		return "value is +Inf"
	case math.IsInf(v, -1):
		return "value is -Inf"
	}
	return ""
}

// newJSONSource returns the read function of an HTTP series: a GET whose
// JSON body holds the number at a path.
func newJSONSource(s *checks.HTTPSeries, next http.RoundTripper) (seriesReader, error) {
	rt, err := newSeriesTransport(next, s.URL, s.BearerToken)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: rt}
	return func(ctx context.Context, x *seriesExchange) (float64, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
		if err != nil {
			return 0, fmt.Sprintf("series: url: %v", err)
		}
		req.Header.Set("Accept", "application/json")
		for k, v := range s.Headers {
			if http.CanonicalHeaderKey(k) == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, x.requestReason(ctx, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return 0, fmt.Sprintf("status %d, want 2xx", resp.StatusCode)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, x.requestReason(ctx, err)
		}
		return jsonNumber(body, s.JSON)
	}, nil
}

// jsonNumber takes the number at path out of a JSON document. The value
// may be a JSON number or a string holding one, as some endpoints quote
// their numbers.
func jsonNumber(body []byte, path checks.JSONPath) (float64, string) {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return 0, "body is not JSON: " + wire.Clip(err.Error(), 120)
	}
	got, err := path.Eval(doc)
	if err != nil {
		return 0, fmt.Sprintf("%s: %v", path, err)
	}
	switch v := got.(type) {
	case float64:
		return v, ""
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch {
		case err != nil:
			return 0, fmt.Sprintf("%s is a string %s, want a number", path, checks.FormatJSONValue(v))
		case finiteReason(f) != "":
			return 0, fmt.Sprintf("%s is a string %s, want a finite number", path, checks.FormatJSONValue(v))
		}
		return f, ""
	}
	return 0, fmt.Sprintf("%s is %s, want a number", path, checks.FormatJSONValue(got))
}

// formatValue renders a number for a reason as JSON would: no exponent
// for everyday magnitudes.
func formatValue(v float64) string {
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
