// Package teams is the Microsoft Teams receiver: it posts an Adaptive
// Card to a Workflows webhook (the "When a Teams webhook request is
// received" trigger that replaced the retired Office 365 connectors). The
// webhook URL is a credential and appears in no error. It imports notify,
// never another receiver.
package teams

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Bounds on a card, well below what Teams accepts (about 28 KB a card).
const (
	maxTextBytes   = 2000
	maxFactBytes   = 500
	maxRegionFacts = 20
)

// Card constants of the payload.
const (
	ContentType   = "application/vnd.microsoft.card.adaptive"
	CardSchema    = "http://adaptivecards.io/schemas/adaptive-card.json"
	CardVersion   = "1.4"
	actionOpenURL = "Action.OpenUrl"
)

// Notifier posts to a Teams Workflows webhook. The webhook URL is a
// credential: it appears in no error.
type Notifier struct {
	*notify.SecretHook
}

// New returns a notifier for cfg.
func New(cfg *checks.TeamsNotifier, opts notify.Options) (*Notifier, error) {
	if cfg == nil || cfg.WebhookURL.IsZero() {
		return nil, errors.New("teams: webhook_url is required")
	}
	// A Workflows URL carries its credential in the query (sig=...).
	h, err := notify.NewSecretHook("teams", cfg.WebhookURL.Value(), opts, func(u *url.URL) []string { return []string{u.Query().Get("sig")} })
	if err != nil {
		return nil, err
	}
	return &Notifier{h}, nil
}

// Notify posts n as one card.
func (s *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	return s.Send(ctx, Message(n))
}

// Payload is what a Workflows webhook takes: a message with one Adaptive
// Card attachment.
type Payload struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment carries the card.
type Attachment struct {
	ContentType string `json:"contentType"`
	// ContentURL is null, as Teams' own examples send it.
	ContentURL *string `json:"contentUrl"`
	Content    Card    `json:"content"`
}

// Card is an Adaptive Card 1.4.
type Card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
	// MSTeams widens the card to the conversation's width.
	MSTeams map[string]string `json:"msteams,omitempty"`
}

// Element is a TextBlock or a FactSet.
type Element struct {
	Type   string `json:"type"`
	Text   string `json:"text,omitempty"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
	Wrap   bool   `json:"wrap,omitempty"`
	Facts  []Fact `json:"facts,omitempty"`
}

// Fact is one title/value line of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action opens a link.
type Action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Message renders n as a card: a headline coloured by severity, the
// summary, facts (check, state, regions, severity), one fact per region
// of evidence, and links to the status page and runbook.
func Message(n notify.Notification) Payload {
	severity := notify.SeverityOf(n)
	what, color := strings.ToUpper(severity), "Warning"
	switch {
	case n.Action == notify.ActionResolve:
		what, color = "RESOLVED", "Good"
	case severity == notify.SeverityCritical || severity == notify.SeverityError:
		color = "Attention"
	case severity == notify.SeverityInfo:
		color = "Default"
	}
	state := strings.ToUpper(n.Details["state"])
	if n.Action == notify.ActionResolve {
		state = "OK"
	} else if state == "" {
		state = strings.ToUpper(strings.TrimPrefix(n.Kind, notify.KindCheckPrefix))
	}
	headline := "[" + what + "]"
	if n.Check != "" {
		headline += " " + n.Check
	}
	headline += " " + state
	if notify.IsReminder(n) {
		headline = "Reminder: " + headline
	}
	summary := cmp.Or(n.Summary, n.Key)
	card := Card{Schema: CardSchema, Type: "AdaptiveCard", Version: CardVersion, MSTeams: map[string]string{"width": "Full"}}
	card.Body = append(card.Body,
		Element{Type: "TextBlock", Text: clip(headline, maxTextBytes), Weight: "Bolder", Size: "Medium", Color: color, Wrap: true},
		Element{Type: "TextBlock", Text: clip(summary, maxTextBytes), Wrap: true})
	facts := []Fact{}
	add := func(title, value string) {
		if value != "" {
			facts = append(facts, Fact{Title: title, Value: clip(value, maxFactBytes)})
		}
	}
	add("Check", n.Check)
	add("State", state)
	add("Regions", regions(n))
	add("Severity", severity)
	add("Target", n.Target)
	add("Key", n.Key)
	add("From", n.Source)
	card.Body = append(card.Body, Element{Type: "FactSet", Facts: facts})
	if len(n.Evidence) > 0 {
		var ev []Fact
		for i, e := range n.Evidence {
			if i == maxRegionFacts {
				ev = append(ev, Fact{Title: "…", Value: fmt.Sprintf("and %d more regions", len(n.Evidence)-i)})
				break
			}
			ev = append(ev, Fact{Title: clip(cmp.Or(e.Region, "?"), maxFactBytes), Value: clip(notify.EvidenceLine(e), maxFactBytes)})
		}
		card.Body = append(card.Body, Element{Type: "TextBlock", Text: "Evidence", Weight: "Bolder", Wrap: true}, Element{Type: "FactSet", Facts: ev})
	}
	if link := httpURL(n.Link); link != "" {
		card.Actions = append(card.Actions, Action{Type: actionOpenURL, Title: "Status page", URL: link})
	}
	if link := httpURL(n.Runbook); link != "" {
		card.Actions = append(card.Actions, Action{Type: actionOpenURL, Title: "Runbook", URL: link})
	}
	return Payload{Type: "message", Attachments: []Attachment{{ContentType: ContentType, Content: card}}}
}

// regions says which regions fail, of how many: "us-east, eu-west (2 of 3)".
func regions(n notify.Notification) string {
	var failing []string
	for _, e := range n.Evidence {
		if e.State == notify.StateFailing {
			failing = append(failing, e.Region)
		}
	}
	switch {
	case len(n.Evidence) == 0:
		return n.Region
	case len(failing) == 0:
		return fmt.Sprintf("none failing (%d reporting)", len(n.Evidence))
	}
	return fmt.Sprintf("%s (%d of %d failing)", strings.Join(failing, ", "), len(failing), len(n.Evidence))
}

// httpURL returns s when it is an absolute http(s) URL, else "": Teams
// refuses a card whose action has any other URL.
func httpURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return s
}

func clip(s string, n int) string { return wire.Clip(s, n) }
