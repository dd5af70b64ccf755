package alerting

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
)

// DefaultNotifyTimeout bounds one delivery attempt of every notifier.
const DefaultNotifyTimeout = 10 * time.Second

// maxAnswerBytes is the most of a destination's answer that is read.
const maxAnswerBytes = 64 << 10

// maxMessageBytes is the most of a destination's answer kept in an error.
const maxMessageBytes = 300

// NotifierOptions are what the HTTP notifiers need from their environment.
// Every field is optional.
type NotifierOptions struct {
	// Timeout bounds one delivery attempt; zero means DefaultNotifyTimeout.
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

func (o NotifierOptions) withDefaults() NotifierOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultNotifyTimeout
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
func (o NotifierOptions) redactor(secrets ...string) func(string) string {
	own := checks.NewRedactor(secrets)
	if o.Redact == nil {
		return own
	}
	return func(s string) string { return o.Redact(own(s)) }
}

// newHTTPClient returns a client that never follows redirects: a redirected
// POST turns into a GET without a body, so a 3xx is reported as it is.
func newHTTPClient(o NotifierOptions) *http.Client {
	return &http.Client{
		Transport:     o.Transport,
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// closeIdle closes the idle connections of t, if it keeps any.
func closeIdle(t http.RoundTripper) {
	if c, ok := t.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// answer is what a destination answered.
type answer struct {
	status     int
	retryAfter time.Duration
	body       []byte
}

// post sends body to target with headers and reads at most maxAnswerBytes
// of the answer. A transport error is returned without the URL (which may
// be a secret) and with a plain "timed out" when the deadline passed.
func post(ctx context.Context, client *http.Client, target string, body []byte, headers http.Header) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return answer{}, errors.New("cannot build the request (check the URL)")
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Outpost")
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, transportError(ctx, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil && a.status/100 != 2 {
		return a, transportError(ctx, err)
	}
	// Drain a little more so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	return a, nil
}

// transportError strips the URL that net/http puts in its errors and names
// a deadline plainly.
func transportError(ctx context.Context, err error) error {
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

// retryAfter parses a Retry-After header in seconds or as an HTTP date; it
// returns 0 when there is none or it makes no sense.
func retryAfter(v string) time.Duration {
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

// retryable classifies an HTTP status: rate limits, request timeouts and
// server errors may pass on another attempt; every other refusal is about
// the notification or the configuration and will not.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// statusError turns an unsuccessful answer into a DeliveryError with the
// answer's text, redacted and shortened, and its retry classification.
func statusError(kind string, a answer, message string, redact func(string) string) (bool, error) {
	if message == "" {
		message = strings.Join(strings.Fields(string(a.body)), " ")
	}
	return retryable(a.status), &DeliveryError{
		Notifier:   kind,
		StatusCode: a.status,
		RetryAfter: a.retryAfter,
		Message:    truncate(redact(message), maxMessageBytes),
	}
}

// failed wraps a transport error of kind's attempt, redacted; transport
// errors are always worth another attempt.
func failed(kind string, err error, redact func(string) string) (bool, error) {
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
