package checks

import (
	"fmt"
	"slices"
	"time"
)

// Maintenance is a window in which pages are suppressed (the status page
// still shows everything): one-off, from Start to End, or recurring, every
// time Cron fires, for Duration, in the time zone TZ.
type Maintenance struct {
	Name string `yaml:"name"`
	// Checks and Regions limit the window; empty means all.
	Checks   []string      `yaml:"checks"`
	Regions  []string      `yaml:"regions"`
	Start    time.Time     `yaml:"start"`
	End      time.Time     `yaml:"end"`
	Cron     string        `yaml:"cron"`
	Duration time.Duration `yaml:"duration"`
	TZ       string        `yaml:"tz"`
	Src      Source

	schedule *Cron
	loc      *time.Location
}

// Active reports whether the window covers check in region at now.
func (m *Maintenance) Active(check, region string, now time.Time) bool {
	if len(m.Checks) > 0 && !slices.Contains(m.Checks, check) {
		return false
	}
	if len(m.Regions) > 0 && region != "" && !slices.Contains(m.Regions, region) {
		return false
	}
	if m.schedule == nil {
		return !now.Before(m.Start) && now.Before(m.End)
	}
	start, ok := m.schedule.Prev(now, m.loc, m.Duration)
	return ok && now.Before(start.Add(m.Duration))
}

// Next returns the window's next start after now and its end, looking
// ahead at most within (a recurring window) — for a status page to show
// maintenance ahead of time; ok is false when none starts in that time.
func (m *Maintenance) Next(now time.Time, within time.Duration) (start, end time.Time, ok bool) {
	if m.schedule == nil {
		if m.Start.After(now) && m.Start.Before(now.Add(within)) {
			return m.Start, m.End, true
		}
		return time.Time{}, time.Time{}, false
	}
	start, ok = m.schedule.Next(now, m.loc, within)
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	return start, start.Add(m.Duration), true
}

func validateMaintenance(m *Maintenance, i int, cfg *Config, ids, names map[string]Pos, errs *errorList) {
	label := fmt.Sprintf("maintenance[%d]", i)
	add := func(key, format string, args ...any) { errs.add(m.Src.At(key), "", label+": "+format, args...) }
	switch {
	case m.Name == "":
		add("name", "name is required")
	default:
		if first, dup := names[m.Name]; dup {
			add("name", "name %q is used twice (first at %s)", m.Name, first)
		}
		names[m.Name] = m.Src.At("name")
		label = fmt.Sprintf("maintenance %q", m.Name)
	}
	for j, id := range m.Checks {
		if _, ok := ids[id]; !ok {
			add(fmt.Sprintf("checks[%d]", j), "unknown check %q", id)
		}
	}
	for j, r := range m.Regions {
		if !slices.Contains(cfg.Regions, r) {
			add(fmt.Sprintf("regions[%d]", j), "unknown region %q", r)
		}
	}
	m.loc = time.UTC
	if m.TZ != "" {
		loc, err := time.LoadLocation(m.TZ)
		if err != nil {
			add("tz", "unknown time zone %q (use an IANA name such as Europe/Berlin)", m.TZ)
		} else {
			m.loc = loc
		}
	}
	oneOff := m.Src.Has("start") || m.Src.Has("end")
	recurring := m.Src.Has("cron") || m.Src.Has("duration")
	switch {
	case oneOff && recurring:
		add("cron", "use start and end, or cron and duration, not both")
	case oneOff:
		if !m.Src.Has("start") || !m.Src.Has("end") {
			add("start", "a one-off window needs both start and end")
		} else if !m.End.After(m.Start) {
			add("end", "end %s is not after start %s", m.End.Format(time.RFC3339), m.Start.Format(time.RFC3339))
		}
	case recurring:
		sched, err := ParseCron(m.Cron)
		if err != nil {
			add("cron", "cron %q: %v", m.Cron, err)
		}
		m.schedule = sched
		if m.Duration <= 0 || m.Duration > maxMaintenance {
			add("duration", "duration must be above 0 and at most %s", maxMaintenance)
		}
	default:
		add("name", "set start and end for a one-off window, or cron and duration for a recurring one")
	}
}
