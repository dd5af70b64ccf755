package checks

import (
	"time"
)

// HeartbeatSpec is a dead-man's switch: a job pings the evaluator at
// /ping/{token} when it succeeds, and the check fails when a ping is late.
// The schedule is Every, or the five-field Cron in TZ; Grace is how late a
// ping may be.
type HeartbeatSpec struct {
	Every time.Duration `yaml:"every"`
	Cron  string        `yaml:"cron"`
	TZ    string        `yaml:"tz"`
	Grace time.Duration `yaml:"grace"`
	// Token is the unguessable part of the ping URL, from the environment.
	Token Secret `yaml:"token"`
	// MaxRuntime bounds the time from a /start ping to its success ping.
	MaxRuntime time.Duration `yaml:"max_runtime"`
	Src        Source

	schedule *Cron
	loc      *time.Location
}

// minTokenLen keeps ping URLs unguessable.
const minTokenLen = 16

// Due returns when the ping after last was due (without grace): last plus
// Every, or the first cron time after last.
func (h *HeartbeatSpec) Due(last time.Time) (time.Time, bool) {
	if h.schedule == nil {
		return last.Add(h.Every), true
	}
	return h.schedule.Next(last, h.loc, 32*24*time.Hour)
}

func validateHeartbeat(c *Check, id string, errs *errorList) {
	h := c.Heartbeat
	add := func(key, format string, args ...any) { errs.add(h.Src.At(key), id, "heartbeat."+format, args...) }
	switch {
	case h.Src.Has("every") && h.Src.Has("cron"):
		add("cron", "use every or cron, not both")
	case h.Src.Has("every"):
		if h.Every < time.Minute {
			add("every", "every %s is below the minimum of 1m", h.Every)
		}
	case h.Src.Has("cron"):
		sched, err := ParseCron(h.Cron)
		if err != nil {
			add("cron", "cron %q: %v", h.Cron, err)
		}
		h.schedule = sched
	default:
		errs.add(h.Src.Pos, id, "heartbeat: set every (such as 1h) or cron (such as \"0 3 * * *\")")
	}
	h.loc = time.UTC
	if h.TZ != "" {
		loc, err := time.LoadLocation(h.TZ)
		if err != nil {
			add("tz", "unknown time zone %q (use an IANA name such as Europe/Berlin)", h.TZ)
		} else {
			h.loc = loc
		}
	}
	if !h.Src.Has("grace") {
		h.Grace = 5 * time.Minute
	} else if h.Grace <= 0 {
		add("grace", "grace must be above 0")
	}
	switch {
	case !h.Src.Has("token"):
		errs.add(h.Src.Pos, id, "heartbeat.token is required, such as token: ${%s_PING_TOKEN} (at least %d characters)", envSuffix(id), minTokenLen)
	case len(h.Token.Value()) < minTokenLen && !h.Token.Missing():
		add("token", "token is shorter than %d characters; use something like `openssl rand -hex 16`", minTokenLen)
	}
	if h.MaxRuntime < 0 {
		add("max_runtime", "max_runtime must not be negative")
	}
}

// heartbeatTokens reports a token used by two heartbeat checks.
func heartbeatTokens(cfg *Config, errs *errorList) {
	seen := map[string]string{}
	for _, c := range cfg.Checks {
		if c.Heartbeat == nil || c.Heartbeat.Token.IsZero() || c.Heartbeat.Token.Missing() {
			continue
		}
		if other, dup := seen[c.Heartbeat.Token.Value()]; dup {
			errs.add(c.Heartbeat.Src.At("token"), c.ID, "heartbeat.token is the same as check %q's; each heartbeat needs its own", other)
			continue
		}
		seen[c.Heartbeat.Token.Value()] = c.ID
	}
}
