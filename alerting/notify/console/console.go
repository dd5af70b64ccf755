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

// Notify logs n with its one severity (notify.SeverityOf): at warning
// level for critical, error and warning notifications, at info level for
// resolves and notices. It never fails.
func (c *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	severity := notify.SeverityOf(n)
	level := slog.LevelWarn
	if severity == notify.SeverityInfo {
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.String("kind", n.Kind),
		slog.String("key", n.Key),
		slog.String("severity", severity),
		slog.String("region", n.Region),
		slog.Time("time", n.Time),
	}
	for _, a := range []struct{ k, v string }{{"action", n.Action}, {"route", n.Route}, {"check", n.Check}, {"source", n.Source},
		{"group", n.Group}, {"target", n.Target}, {"link", n.Link}, {"runbook", n.Runbook}} {
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
