package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// DefaultTimeout bounds one delivery attempt of every notifier, and one
// hand-over of a notification to a Notifier by the evaluator or an agent.
const DefaultTimeout = 10 * time.Second

// MaxAnswerBytes is the most of a destination's answer that is read.
const MaxAnswerBytes = 64 << 10

// maxMessageBytes is the most of a destination's answer kept in an error.
const maxMessageBytes = 300

// Options are what the HTTP notifiers need from their environment.
// Every field is optional.
type Options struct {
	// Timeout bounds one delivery attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// Redact is applied to every error message, on top of the notifier's
	// own secrets; cfg.Redactor() is the usual choice. Nil redacts only the
	// notifier's secrets.
	Redact func(string) string
	// Clock stamps webhook signatures; nil means the wall clock.
	Clock clock.Clock
	// Transport carries the requests; nil means a transport of the
	// notifier's own, with dial and handshake deadlines.
	Transport http.RoundTripper
}

func (o Options) WithDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Transport == nil {
		o.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: o.Timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		}
	}
	return o
}

// redactor chains the notifier's own secrets with opts.Redact.
func (o Options) Redactor(secrets ...string) func(string) string {
	own := checks.NewRedactor(secrets)
	if o.Redact == nil {
		return own
	}
	return func(s string) string { return o.Redact(own(s)) }
}

// NewHTTPClient returns a client that never follows redirects: a redirected
// POST turns into a GET without a body, so a 3xx is reported as it is.
func NewHTTPClient(o Options) *http.Client {
	return &http.Client{
		Transport:     o.Transport,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloseIdle closes the idle connections of t, if it keeps any.
func CloseIdle(t http.RoundTripper) {
	if c, ok := t.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Answer is what a destination answered.
type Answer struct {
	Status     int
	RetryAfter time.Duration
	Body       []byte
}

// Post sends body to target with headers and reads at most MaxAnswerBytes
// of the answer. A transport error is returned without the URL (which may
// be a secret) and with a plain "timed out" when the deadline passed.
func Post(ctx context.Context, client *http.Client, target string, body []byte, headers http.Header) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Answer{}, errors.New("cannot build the request (check the URL)")
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Outpost")
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, TransportError(ctx, err)
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"))}
	a.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
	if err != nil && a.Status/100 != 2 {
		return a, TransportError(ctx, err)
	}
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxAnswerBytes))
	return a, nil
}

// TransportError strips the URL that net/http puts in its errors and names
// a deadline plainly.
func TransportError(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("request cancelled: %w", context.Canceled)
		}
		return fmt.Errorf("request timed out: %w", context.DeadlineExceeded)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RetryAfter parses a Retry-After header in seconds or as an HTTP date; it
// returns 0 when there is none or it makes no sense.
func RetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

// Retryable classifies an HTTP status: rate limits, request timeouts and
// server errors may pass on another attempt; every other refusal is about
// the notification or the configuration and will not.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// StatusError turns an unsuccessful answer into a DeliveryError with the
// answer's text, redacted and shortened, and its retry classification.
func StatusError(kind string, a Answer, message string, redact func(string) string) (bool, error) {
	if message == "" {
		message = strings.Join(strings.Fields(string(a.Body)), " ")
	}
	return Retryable(a.Status), &DeliveryError{
		Notifier:   kind,
		StatusCode: a.Status,
		RetryAfter: a.RetryAfter,
		Message:    wire.Clip(redact(message), maxMessageBytes),
	}
}

// Failed wraps a transport error of kind's attempt, redacted; transport
// errors are always worth another attempt.
func Failed(kind string, err error, redact func(string) string) (bool, error) {
	msg := redact(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return true, &redactedError{msg: kind + ": " + msg, cause: context.DeadlineExceeded}
	case errors.Is(err, context.Canceled):
		return true, &redactedError{msg: kind + ": " + msg, cause: context.Canceled}
	}
	return true, &redactedError{msg: kind + ": " + msg}
}

// redactedError carries a redacted message and, instead of the original
// error (whose text may hold a secret), only the sentinel it matched.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// NonTrivial drops the parts of a secret too short or too common to redact
// on their own ("/", "").
func NonTrivial(parts []string) []string {
	var out []string
	for _, p := range parts {
		if len(strings.Trim(p, "/")) >= 4 {
			out = append(out, p)
		}
	}
	return out
}
