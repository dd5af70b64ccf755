package alerting

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Notification kinds.
const (
	// KindRegionStale: a region's agents went silent, or never reported
	// since the evaluator started; the region has left every quorum.
	KindRegionStale = "region_stale"
	// KindRegionLive: a stale region reports again.
	KindRegionLive = "region_live"
)

// Notification severities, in PagerDuty Events v2 terms.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Notification is one message for humans about the monitoring or the
// monitored. It carries no secret: every field may be logged, shown on a
// status page or sent to a third party.
type Notification struct {
	// Kind says what happened (KindRegionStale, KindRegionLive, ...).
	Kind string
	// Key is stable for one subject across events and evaluators, so that
	// a pager folds a "stale" and the following "live" into one incident
	// (e.g. "outpost:region:us-east").
	Key string
	// Severity is SeverityCritical, SeverityWarning or SeverityInfo.
	Severity string
	// Summary is one line a human can act on.
	Summary string
	// Region is the region concerned, if any.
	Region string
	// Time is when the evaluator decided, on its clock.
	Time time.Time
	// Details are extra facts, shown as key/value pairs.
	Details map[string]string
}

// Notifier delivers notifications. Notify must honour ctx's deadline and
// may be called from several goroutines at once. A returned error means
// the notification was not delivered; the caller logs it.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// ConsoleNotifier writes every notification as one structured log line.
// It is the notifier used when none is configured.
type ConsoleNotifier struct {
	log *slog.Logger
}

var _ Notifier = (*ConsoleNotifier)(nil)

// NewConsoleNotifier returns a notifier that logs to log; nil means
// slog.Default().
func NewConsoleNotifier(log *slog.Logger) *ConsoleNotifier {
	if log == nil {
		log = slog.Default()
	}
	return &ConsoleNotifier{log: log}
}

// Notify logs n at warning level for stale and critical notifications and
// at info level otherwise. It never fails.
func (c *ConsoleNotifier) Notify(ctx context.Context, n Notification) error {
	level := slog.LevelInfo
	if n.Severity == SeverityCritical || n.Severity == SeverityWarning {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("kind", n.Kind),
		slog.String("key", n.Key),
		slog.String("severity", n.Severity),
		slog.String("region", n.Region),
		slog.Time("time", n.Time),
	}
	if len(n.Details) > 0 {
		details := make([]any, 0, len(n.Details))
		for _, k := range slices.Sorted(maps.Keys(n.Details)) {
			details = append(details, slog.String(k, n.Details[k]))
		}
		attrs = append(attrs, slog.Group("details", details...))
	}
	c.log.LogAttrs(ctx, level, n.Summary, attrs...)
	return nil
}
