package checks

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Notifier is a named destination for pages and notices. Exactly one of its
// type blocks is set.
type Notifier struct {
	Name string `yaml:"name"`
	// Routes are the kinds of event the notifier takes: critical (a check
	// DOWN), warning (DEGRADED, disagreements, shape findings) and meta
	// (the monitoring itself: stale regions, UNKNOWN checks, dead peers).
	// Default: all three.
	Routes []string `yaml:"routes"`
	// Escalate sends what this notifier has failed to deliver for After to
	// the notifier To as well: a PagerDuty outage must not swallow pages.
	Escalate *Escalation `yaml:"escalate"`
	// Grouping folds several checks' incidents into one notification;
	// nil after Load means every incident is notified on its own. When
	// unset it is defaults.grouping.
	Grouping *Grouping `yaml:"grouping"`
	// Storm folds a burst of incidents into one; after Load it is set
	// (from defaults.storm or the built-in defaults) unless disabled.
	Storm *StormGuard `yaml:"storm"`
	// Repeat is how often a still-open incident's trigger is sent again
	// as a reminder; when unset it is defaults.repeat, and zero means no
	// reminders (an identical trigger is still not sent twice within 4h).
	Repeat    time.Duration      `yaml:"repeat"`
	PagerDuty *PagerDutyNotifier `yaml:"pagerduty"`
	Slack     *SlackNotifier     `yaml:"slack"`
	Webhook   *WebhookNotifier   `yaml:"webhook"`
	Console   *ConsoleNotifier   `yaml:"console"`
	Email     *EmailNotifier     `yaml:"email"`
	Teams     *TeamsNotifier     `yaml:"teams"`
	// Alertmanager posts each incident as an alert to the API v2 of one or
	// more Alertmanagers.
	Alertmanager *AlertmanagerNotifier `yaml:"alertmanager"`
	Src          Source
}

// MinRepeat is the shortest repeat interval accepted.
const MinRepeat = time.Minute

// Escalation names a fallback notifier for one that keeps failing.
type Escalation struct {
	To    string        `yaml:"to"`
	After time.Duration `yaml:"after"`
	Src   Source
}

// PagerDutyNotifier sends PagerDuty Events API v2 events.
type PagerDutyNotifier struct {
	RoutingKey Secret `yaml:"routing_key"`
	// URL is the Events API base URL; empty means PagerDuty's own.
	URL string `yaml:"url"`
	// MaxEventsPerMinute is Outpost's own budget of events for the
	// routing key, below what PagerDuty accepts from one integration, so
	// that a storm is paced by Outpost, new triggers first, instead of
	// being refused by PagerDuty. Notifiers that share a routing key share
	// the budget. Default DefaultPagerDutyEventsPerMinute.
	MaxEventsPerMinute int `yaml:"max_events_per_minute"`
	Src                Source
}

// DefaultPagerDutyEventsPerMinute is the default events budget of a
// PagerDuty routing key: PagerDuty throttles an integration at about 120
// events a minute, and Outpost keeps a margin below that.
const DefaultPagerDutyEventsPerMinute = 100

// SlackNotifier posts to a Slack incoming webhook.
type SlackNotifier struct {
	WebhookURL Secret `yaml:"webhook_url"`
	Src        Source
}

// WebhookNotifier POSTs JSON, signed with HMAC-SHA256 when Secret is set.
type WebhookNotifier struct {
	URL    string `yaml:"url"`
	Secret Secret `yaml:"secret"`
	Src    Source
}

// ConsoleNotifier writes notifications to standard output.
type ConsoleNotifier struct {
	Src Source
}

// Notification routes.
const (
	RouteCritical = "critical"
	RouteWarning  = "warning"
	RouteMeta     = "meta"
)

// Routes lists every route, the default of a notifier.
var Routes = []string{RouteCritical, RouteWarning, RouteMeta}

// typeBlocks lists the notifier's type blocks in the order validation and
// the schema (schema.go) take them; exactly one must be set.
func (n *Notifier) typeBlocks() []typeBlock {
	return []typeBlock{{"pagerduty", n.PagerDuty != nil}, {"slack", n.Slack != nil}, {"webhook", n.Webhook != nil}, {"console", n.Console != nil},
		{"email", n.Email != nil}, {"teams", n.Teams != nil}, {"alertmanager", n.Alertmanager != nil}}
}

func validateNotifier(n *Notifier, i int, seen map[string]Pos, errs *errorList) {
	label := fmt.Sprintf("notifiers[%d]", i)
	switch {
	case n.Name == "":
		errs.add(n.Src.At("name"), "", "%s: name is required", label)
	case !validName(n.Name):
		errs.add(n.Src.At("name"), "", "%s: name %q: use letters, digits, '-', '_' and '.'", label, n.Name)
	default:
		if first, dup := seen[n.Name]; dup {
			errs.add(n.Src.At("name"), "", "notifier %q is defined twice (first at %s)", n.Name, first)
		} else {
			seen[n.Name] = n.Src.At("name")
		}
		label = fmt.Sprintf("notifier %q", n.Name)
	}
	validateRoutes(n, label, errs)
	if n.Grouping != nil {
		validateGrouping(n.Grouping, label+": grouping", errs)
	}
	if n.Storm != nil {
		validateStorm(n.Storm, label+": storm", errs)
	}
	var types []string
	for _, t := range n.typeBlocks() {
		if t.set {
			types = append(types, t.name)
		}
	}
	if n.PagerDuty != nil {
		p := n.PagerDuty
		if p.RoutingKey.IsZero() {
			errs.add(p.Src.At("routing_key"), "", "%s: pagerduty.routing_key is required, such as routing_key: ${PAGERDUTY_ROUTING_KEY}", label)
		}
		if !p.Src.Has("max_events_per_minute") {
			p.MaxEventsPerMinute = DefaultPagerDutyEventsPerMinute
		} else if p.MaxEventsPerMinute < 1 || p.MaxEventsPerMinute > 10000 {
			errs.add(p.Src.At("max_events_per_minute"), "", "%s: pagerduty.max_events_per_minute %d must be between 1 and 10000", label, p.MaxEventsPerMinute)
		}
		if p.URL != "" {
			if msg := checkURL(p.URL, p.Src.fromEnv("url")); msg != "" {
				errs.add(p.Src.At("url"), "", "%s: pagerduty.url %s", label, msg)
			} else if strings.HasSuffix(p.URL, "/") {
				errs.add(p.Src.At("url"), "", "%s: pagerduty.url must not end in '/' (events go to URL/v2/enqueue)", label)
			}
		}
	}
	if n.Slack != nil {
		if n.Slack.WebhookURL.IsZero() {
			errs.add(n.Slack.Src.At("webhook_url"), "", "%s: slack.webhook_url is required, such as webhook_url: ${SLACK_WEBHOOK_URL}", label)
		} else if msg := checkURL(n.Slack.WebhookURL.Value(), true); msg != "" && !n.Slack.WebhookURL.Missing() {
			errs.add(n.Slack.Src.At("webhook_url"), "", "%s: slack.webhook_url %s", label, msg)
		}
	}
	if n.Webhook != nil {
		if n.Webhook.URL == "" {
			errs.add(n.Webhook.Src.At("url"), "", "%s: webhook.url is required", label)
		} else if msg := checkURL(n.Webhook.URL, n.Webhook.Src.fromEnv("url")); msg != "" {
			errs.add(n.Webhook.Src.At("url"), "", "%s: webhook.url %s", label, msg)
		}
	}
	if n.Email != nil {
		validateEmail(n.Email, label, errs)
	}
	if n.Teams != nil {
		validateTeams(n.Teams, label, errs)
	}
	if n.Src.Has("repeat") {
		validateRepeat(n.Repeat, n.Src.At("repeat"), label+": repeat", errs)
	}
	if n.Alertmanager != nil {
		validateAlertmanager(n.Alertmanager, label, errs)
	}
	switch len(types) {
	case 0:
		errs.add(n.Src.Pos, "", "%s: no notifier type; add one of pagerduty, slack, webhook, console, email, teams, alertmanager", label)
	case 1:
	default:
		errs.add(n.Src.At(types[1]), "", "%s: has both %s and %s; a notifier has exactly one type", label, types[0], types[1])
	}
}

// validateRepeat checks a reminder interval written at pos.
func validateRepeat(d time.Duration, pos Pos, label string, errs *errorList) {
	if d < MinRepeat {
		errs.add(pos, "", "%s: %s is below the minimum of %s", label, d, MinRepeat)
	} else if d > 30*24*time.Hour {
		errs.add(pos, "", "%s: %s is above the maximum of 720h (30 days)", label, d)
	}
}

func validateRoutes(n *Notifier, label string, errs *errorList) {
	if !n.Src.Has("routes") {
		n.Routes = slices.Clone(Routes)
		return
	}
	if len(n.Routes) == 0 {
		errs.add(n.Src.At("routes"), "", "%s: routes is empty; leave it out to take every route", label)
	}
	for i, r := range n.Routes {
		if !slices.Contains(Routes, r) {
			errs.add(n.Src.At(fmt.Sprintf("routes[%d]", i)), "", "%s: route %q: use critical, warning or meta", label, r)
		}
	}
}
