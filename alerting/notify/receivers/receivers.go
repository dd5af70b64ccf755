// Package receivers is the one place that knows every receiver: it builds
// the notifiers of a configuration by name and holds the compile-time
// conformance list below. Receivers never import each other; a new one is
// added here and nowhere else.
package receivers

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/alertmanager"
	"github.com/outposthq/outpost/alerting/notify/console"
	"github.com/outposthq/outpost/alerting/notify/email"
	"github.com/outposthq/outpost/alerting/notify/pagerduty"
	"github.com/outposthq/outpost/alerting/notify/slack"
	"github.com/outposthq/outpost/alerting/notify/teams"
	"github.com/outposthq/outpost/alerting/notify/webhook"
	"github.com/outposthq/outpost/checks"
)

// Every receiver is a notify.Notifier.
var (
	_ notify.Notifier = (*console.Notifier)(nil)
	_ notify.Notifier = (*pagerduty.Notifier)(nil)
	_ notify.Notifier = (*slack.Notifier)(nil)
	_ notify.Notifier = (*webhook.Notifier)(nil)
	_ notify.Notifier = (*email.Notifier)(nil)
	_ notify.Notifier = (*teams.Notifier)(nil)
	_ notify.Notifier = (*alertmanager.Notifier)(nil)
)

// DefaultName names the console notifier BuildNotifiers provides
// when the configuration has none.
const DefaultName = "console"

// Build builds every notifier of cfg, by name, with the default
// notify.Options and cfg's redactor; with none configured, it returns a
// console notifier named DefaultName. log is the console
// notifiers' destination (nil means slog.Default()). Every error is
// reported, joined.
func Build(cfg *checks.Config, log *slog.Logger) (map[string]notify.Notifier, error) {
	if cfg == nil {
		return nil, errors.New("notifiers: no configuration")
	}
	return BuildWith(cfg, log, notify.Options{Redact: cfg.Redactor()})
}

// BuildWith is Build with the given options.
func BuildWith(cfg *checks.Config, log *slog.Logger, opts notify.Options) (map[string]notify.Notifier, error) {
	out := make(map[string]notify.Notifier, max(len(cfg.Notifiers), 1))
	if len(cfg.Notifiers) == 0 {
		out[DefaultName] = console.New(log)
		return out, nil
	}
	var errs []error
	for i := range cfg.Notifiers {
		c := &cfg.Notifiers[i]
		n, err := build(cfg, c, log, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("notifier %q: %w", c.Name, err))
			continue
		}
		if _, dup := out[c.Name]; dup {
			errs = append(errs, fmt.Errorf("notifier %q is defined twice", c.Name))
			continue
		}
		out[c.Name] = n
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func build(cfg *checks.Config, c *checks.Notifier, log *slog.Logger, opts notify.Options) (notify.Notifier, error) {
	switch {
	case c.PagerDuty != nil:
		return pagerduty.New(c.PagerDuty, opts)
	case c.Slack != nil:
		return slack.New(c.Slack, opts)
	case c.Webhook != nil:
		return webhook.New(c.Webhook, opts)
	case c.Console != nil:
		return console.New(log), nil
	case c.Email != nil:
		return email.New(c.Email, opts)
	case c.Teams != nil:
		return teams.New(c.Teams, opts)
	case c.Alertmanager != nil:
		return alertmanager.New(c.Alertmanager, opts, alertmanager.Env{Labels: checkLabels(cfg, opts.Redact), Log: log})
	}
	return nil, errors.New("no notifier type")
}

// checkLabels returns the labels of each check of cfg, redacted.
func checkLabels(cfg *checks.Config, redact func(string) string) func(string) map[string]string {
	byID := map[string]map[string]string{}
	for _, c := range cfg.Checks {
		if len(c.Labels) == 0 {
			continue
		}
		l := make(map[string]string, len(c.Labels))
		for k, v := range c.Labels {
			if redact != nil {
				v = redact(v)
			}
			l[k] = v
		}
		byID[c.ID] = l
	}
	return func(id string) map[string]string { return byID[id] }
}

// Escalations returns the escalations of cfg's notifiers, for
// outbox.Options.Escalations.
func Escalations(cfg *checks.Config) map[string]checks.Escalation {
	out := map[string]checks.Escalation{}
	for _, n := range cfg.Notifiers {
		if n.Escalate != nil {
			out[n.Name] = checks.Escalation{To: n.Escalate.To, After: n.Escalate.After}
		}
	}
	return out
}

// Repeats returns the reminder interval of each notifier of cfg that has
// one (repeat:, or defaults.repeat), for outbox.Options.Repeat.
func Repeats(cfg *checks.Config) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, n := range cfg.Notifiers {
		if n.Repeat > 0 {
			out[n.Name] = n.Repeat
		}
	}
	return out
}

// Routes returns the routes of each notifier of cfg, for
// outbox.Options.Routes; the default console notifier takes every route.
func Routes(cfg *checks.Config) map[string][]string {
	out := map[string][]string{}
	for _, c := range cfg.Notifiers {
		out[c.Name] = slices.Clone(c.Routes)
	}
	if len(cfg.Notifiers) == 0 {
		out[DefaultName] = slices.Clone(checks.Routes)
	}
	return out
}

// CheckNotifiers returns, for each check of cfg that names notifiers
// (notify:), those names, for outbox.Options.CheckNotifiers.
func CheckNotifiers(cfg *checks.Config) map[string][]string {
	out := map[string][]string{}
	for _, c := range cfg.Checks {
		if len(c.Notify) > 0 {
			out[c.ID] = slices.Clone(c.Notify)
		}
	}
	return out
}
