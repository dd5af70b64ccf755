// Package slack is the Slack incoming-webhook receiver. The webhook URL is
// a credential and appears in no error. It imports notify, never another
// receiver.
package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	*notify.SecretHook
}

// New returns a notifier for cfg.
func New(cfg *checks.SlackNotifier, opts notify.Options) (*Notifier, error) {
	if cfg == nil || cfg.WebhookURL.IsZero() {
		return nil, errors.New("slack: webhook_url is required")
	}
	h, err := notify.NewSecretHook("slack", cfg.WebhookURL.Value(), opts, nil)
	if err != nil {
		return nil, err
	}
	return &Notifier{h}, nil
}

// Notify posts n as one message.
func (s *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	return s.Send(ctx, slackMessage(n))
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
