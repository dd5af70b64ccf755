package alerting

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
)

// Headers of a webhook delivery.
const (
	// HeaderWebhookTimestamp is the delivery's Unix time in seconds.
	HeaderWebhookTimestamp = "X-Outpost-Timestamp"
	// HeaderWebhookSignature is "v1=" and the hex HMAC-SHA256, keyed with
	// the webhook's secret, of the timestamp, ".", and the body. It is
	// absent when the webhook has no secret.
	HeaderWebhookSignature = "X-Outpost-Signature"
)

// WebhookNotifier POSTs each notification as JSON (the Notification's
// JSON form), signed when a secret is configured.
type WebhookNotifier struct {
	url       string
	secret    []byte
	client    *http.Client
	clock     clock.Clock
	timeout   time.Duration
	redact    func(string) string
	transport http.RoundTripper
}

var _ Notifier = (*WebhookNotifier)(nil)

// NewWebhookNotifier returns a notifier for cfg.
func NewWebhookNotifier(cfg *checks.WebhookNotifier, opts NotifierOptions) (*WebhookNotifier, error) {
	if cfg == nil || cfg.URL == "" {
		return nil, errors.New("webhook: url is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("webhook: url is not an http(s) URL")
	}
	opts = opts.withDefaults()
	secrets := []string{cfg.Secret.Value(), u.RawQuery}
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	return &WebhookNotifier{
		url:       cfg.URL,
		secret:    []byte(cfg.Secret.Value()),
		client:    newHTTPClient(opts),
		clock:     opts.Clock,
		timeout:   opts.Timeout,
		redact:    opts.redactor(nonTrivial(secrets)...),
		transport: opts.Transport,
	}, nil
}

// CloseIdleConnections closes the notifier's idle connections.
func (w *WebhookNotifier) CloseIdleConnections() { closeIdle(w.transport) }

// Notify posts n.
func (w *WebhookNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	body, err := json.Marshal(n)
	if err != nil {
		return false, fmt.Errorf("webhook: encoding notification: %w", err)
	}
	ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
	h := http.Header{HeaderWebhookTimestamp: {ts}}
	if len(w.secret) > 0 {
		h.Set(HeaderWebhookSignature, SignWebhook(w.secret, ts, body))
	}
	a, err := post(ctx, w.client, w.url, body, h)
	if err != nil {
		return failed("webhook", err, w.redact)
	}
	if a.status/100 != 2 {
		return statusError("webhook", a, "", w.redact)
	}
	return false, nil
}

// SignWebhook returns the X-Outpost-Signature value for body sent at
// timestamp ts (decimal Unix seconds): "v1=" + hex(HMAC-SHA256(secret,
// ts + "." + body)). A receiver recomputes it, compares with hmac.Equal
// and refuses timestamps far from its own clock.
func SignWebhook(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}
