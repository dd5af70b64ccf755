package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// SecretHook posts JSON to a webhook whose URL is itself the credential
// (Slack's incoming webhooks, Teams' Workflows): the URL, its path, its
// query and any of extra appear in no error. Receivers embed it.
type SecretHook struct {
	name      string
	url       string
	client    *http.Client
	timeout   time.Duration
	redact    func(string) string
	transport http.RoundTripper
}

// NewSecretHook checks that raw is an http(s) URL, without quoting it in
// the error, and returns the hook of receiver name; extra are more parts
// of the URL to redact (a query parameter holding the signature).
func NewSecretHook(name, raw string, opts Options, extra func(*url.URL) []string) (*SecretHook, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error quotes the URL; say nothing of it.
		return nil, errors.New(name + ": webhook_url is not an http(s) URL")
	}
	opts = opts.WithDefaults()
	secrets := []string{raw, u.Path, u.RawQuery, u.EscapedPath()}
	if u.User != nil {
		secrets = append(secrets, u.User.String())
	}
	if extra != nil {
		secrets = append(secrets, extra(u)...)
	}
	return &SecretHook{
		name:      name,
		url:       raw,
		client:    NewHTTPClient(opts),
		timeout:   opts.Timeout,
		redact:    opts.Redactor(NonTrivial(secrets)...),
		transport: opts.Transport,
	}, nil
}

// CloseIdleConnections closes the hook's idle connections.
func (h *SecretHook) CloseIdleConnections() { CloseIdle(h.transport) }

// Send posts payload as JSON within the hook's timeout; retry says whether
// a failure may pass another time (see Failed and StatusError).
func (h *SecretHook) Send(ctx context.Context, payload any) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	body, err := json.Marshal(payload)
	if err != nil {
		return false, fmt.Errorf("%s: encoding the message: %w", h.name, err)
	}
	a, err := Post(ctx, h.client, h.url, body, nil)
	if err != nil {
		return Failed(h.name, err, h.redact)
	}
	if a.Status/100 != 2 {
		return StatusError(h.name, a, "", h.redact)
	}
	return false, nil
}
