// Package slack is the Slack incoming-webhook receiver. The webhook URL is
// a credential and appears in no error. It imports notify, never another
// receiver.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Slack's limits on a message: the text of a section block and the
// number of blocks.
const (
	maxSlackSectionText = 3000
	maxSlackRegionLines = 20
)

// Notifier posts to a Slack incoming webhook. The webhook URL is a
// credential: it appears in no error.
type Notifier struct {
	url       string
	client    *http.Client
	timeout   time.Duration
	redact    func(string) string
	transport http.RoundTripper
}

// New returns a notifier for cfg.
func New(cfg *checks.SlackNotifier, opts notify.Options) (*Notifier, error) {
	if cfg == nil || cfg.WebhookURL.IsZero() {
		return nil, errors.New("slack: webhook_url is required")
	}
	raw := cfg.WebhookURL.Value()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The parse error quotes the URL; say nothing of it.
		return nil, errors.New("slack: webhook_url is not an http(s) URL")
	}
	opts = opts.WithDefaults()
	secrets := []string{raw, u.Path, u.RawQuery, u.EscapedPath()}
	if u.User != nil {
		secrets = append(secrets, u.User.String())
	}
	return &Notifier{
		url:       raw,
		client:    notify.NewHTTPClient(opts),
		timeout:   opts.Timeout,
		redact:    opts.Redactor(notify.NonTrivial(secrets)...),
		transport: opts.Transport,
	}, nil
}

// CloseIdleConnections closes the notifier's idle connections.
func (s *Notifier) CloseIdleConnections() { notify.CloseIdle(s.transport) }

// Notify posts n as one message.
func (s *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	body, err := json.Marshal(slackMessage(n))
	if err != nil {
		return false, fmt.Errorf("slack: encoding message: %w", err)
	}
	a, err := notify.Post(ctx, s.client, s.url, body, nil)
	if err != nil {
		return notify.Failed("slack", err, s.redact)
	}
	if a.Status/100 != 2 {
		return notify.StatusError("slack", a, "", s.redact)
	}
	return false, nil
}

// slackPayload is an incoming webhook message.
type slackPayload struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type     string       `json:"type"`
	Text     *slackText   `json:"text,omitempty"`
	Elements []*slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackMessage renders n: a headline (also the notification text), one
// line per region, and the key and status page link.
func slackMessage(n notify.Notification) slackPayload {
	var mark, what string
	severity := notify.SeverityOf(n)
	switch n.Action {
	case notify.ActionResolve:
		mark, what = ":large_green_circle:", "RESOLVED"
	case notify.ActionTrigger:
		mark, what = ":red_circle:", strings.ToUpper(severity)
		if severity != notify.SeverityCritical {
			mark = ":large_orange_circle:"
		}
	default:
		mark, what = ":information_source:", strings.ToUpper(severity)
	}
	summary := n.Summary
	if summary == "" {
		summary = n.Key
	}
	if notify.IsReminder(n) {
		what = "REMINDER: " + what
	}
	headline := fmt.Sprintf("%s [%s] %s", mark, what, slackEscape(summary))
	msg := slackPayload{Text: wire.Clip(headline, maxSlackSectionText)}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: wire.Clip("*"+strings.TrimSpace(headline)+"*", maxSlackSectionText)}})
	if len(n.Evidence) > 0 {
		var b strings.Builder
		for i, ev := range n.Evidence {
			if i == maxSlackRegionLines {
				fmt.Fprintf(&b, "… and %d more regions\n", len(n.Evidence)-i)
				break
			}
			fmt.Fprintf(&b, "• *%s*: %s\n", slackEscape(ev.Region), slackEscape(notify.EvidenceLine(ev)))
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: wire.Clip(b.String(), maxSlackSectionText)}})
	}
	ctx := "key `" + slackEscape(n.Key) + "`"
	if n.Target != "" {
		ctx = "target `" + slackEscape(n.Target) + "` · " + ctx
	}
	if n.Check != "" {
		ctx = "check `" + slackEscape(n.Check) + "` · " + ctx
	}
	if n.Source != "" {
		ctx += " · from " + slackEscape(n.Source)
	}
	if n.Link != "" {
		ctx += " · <" + slackEscape(n.Link) + "|status page>"
	}
	if n.Runbook != "" {
		ctx += " · <" + slackEscape(n.Runbook) + "|runbook>"
	}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []*slackText{{Type: "mrkdwn", Text: wire.Clip(ctx, maxSlackSectionText)}}})
	return msg
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
