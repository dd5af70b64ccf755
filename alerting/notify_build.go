package alerting

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/outposthq/outpost/checks"
)

// DefaultNotifierName names the console notifier BuildNotifiers provides
// when the configuration has none.
const DefaultNotifierName = "console"

// BuildNotifiers builds every notifier of cfg, by name, with the default
// NotifierOptions and cfg's redactor; with none configured, it returns a
// console notifier named DefaultNotifierName. log is the console
// notifiers' destination (nil means slog.Default()). Every error is
// reported, joined.
func BuildNotifiers(cfg *checks.Config, log *slog.Logger) (map[string]Notifier, error) {
	if cfg == nil {
		return nil, errors.New("notifiers: no configuration")
	}
	return BuildNotifiersWith(cfg, log, NotifierOptions{Redact: cfg.Redactor()})
}

// BuildNotifiersWith is BuildNotifiers with the given options.
func BuildNotifiersWith(cfg *checks.Config, log *slog.Logger, opts NotifierOptions) (map[string]Notifier, error) {
	out := make(map[string]Notifier, max(len(cfg.Notifiers), 1))
	if len(cfg.Notifiers) == 0 {
		out[DefaultNotifierName] = NewConsoleNotifier(log)
		return out, nil
	}
	var errs []error
	for i := range cfg.Notifiers {
		c := &cfg.Notifiers[i]
		n, err := buildNotifier(c, log, opts)
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

func buildNotifier(c *checks.Notifier, log *slog.Logger, opts NotifierOptions) (Notifier, error) {
	switch {
	case c.PagerDuty != nil:
		return NewPagerDutyNotifier(c.PagerDuty, opts)
	case c.Slack != nil:
		return NewSlackNotifier(c.Slack, opts)
	case c.Webhook != nil:
		return NewWebhookNotifier(c.Webhook, opts)
	case c.Console != nil:
		return NewConsoleNotifier(log), nil
	}
	return nil, errors.New("no notifier type")
}

// NotifierEscalations returns the escalations of cfg's notifiers, for
// PipelineOptions.Escalations.
func NotifierEscalations(cfg *checks.Config) map[string]checks.Escalation {
	out := map[string]checks.Escalation{}
	for _, n := range cfg.Notifiers {
		if n.Escalate != nil {
			out[n.Name] = checks.Escalation{To: n.Escalate.To, After: n.Escalate.After}
		}
	}
	return out
}

// NotifierRoutes returns the routes of each notifier of cfg, for
// PipelineOptions.Routes; the default console notifier takes every route.
func NotifierRoutes(cfg *checks.Config) map[string][]string {
	out := map[string][]string{}
	for _, c := range cfg.Notifiers {
		out[c.Name] = slices.Clone(c.Routes)
	}
	if len(cfg.Notifiers) == 0 {
		out[DefaultNotifierName] = slices.Clone(checks.Routes)
	}
	return out
}

// CheckNotifiers returns, for each check of cfg that names notifiers
// (notify:), those names, for PipelineOptions.CheckNotifiers.
func CheckNotifiers(cfg *checks.Config) map[string][]string {
	out := map[string][]string{}
	for _, c := range cfg.Checks {
		if len(c.Notify) > 0 {
			out[c.ID] = slices.Clone(c.Notify)
		}
	}
	return out
}
