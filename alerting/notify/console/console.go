// Package console is the notifier that writes each notification as one
// structured log line: the default when no notifier is configured, and the
// quick start's pager. It imports only notify and the standard library.
package console

import (
	"context"
	"log/slog"
	"maps"
	"slices"

	"github.com/outposthq/outpost/alerting/notify"
)

// Notifier writes every notification as one structured log line.
// It is the notifier used when none is configured.
type Notifier struct {
	log *slog.Logger
}

// New returns a notifier that logs to log; nil means
// slog.Default().
func New(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{log: log}
}

// Notify logs n at warning level for critical and warning notifications
// and at info level otherwise. It never fails.
func (c *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	level := slog.LevelInfo
	if n.Severity == notify.SeverityCritical || n.Severity == notify.SeverityWarning || n.Severity == notify.SeverityError {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("kind", n.Kind),
		slog.String("key", n.Key),
		slog.String("severity", n.Severity),
		slog.String("region", n.Region),
		slog.Time("time", n.Time),
	}
	for _, a := range []struct{ k, v string }{{"action", n.Action}, {"route", n.Route}, {"check", n.Check}, {"link", n.Link}} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if len(n.Details) > 0 {
		details := make([]any, 0, len(n.Details))
		for _, k := range slices.Sorted(maps.Keys(n.Details)) {
			details = append(details, slog.String(k, n.Details[k]))
		}
		attrs = append(attrs, slog.Group("details", details...))
	}
	if len(n.Evidence) > 0 {
		regions := make([]any, 0, len(n.Evidence))
		for _, ev := range n.Evidence {
			regions = append(regions, slog.String(ev.Region, notify.EvidenceLine(ev)))
		}
		attrs = append(attrs, slog.Group("evidence", regions...))
	}
	c.log.LogAttrs(ctx, level, n.Summary, attrs...)
	return false, nil
}
