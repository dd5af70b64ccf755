package checks

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Grouping folds the incidents of several checks into one notification,
// Alertmanager-style: the incidents whose checks agree on every fact named
// in By share a group; the group's first notification waits Wait for the
// rest of it to arrive, and a changed group is sent again at most every
// Interval. The group resolves when the last of its checks recovers.
type Grouping struct {
	// By names the facts that make a group, besides the route: "check",
	// "host" (the target's host), "regions" (the check's region set),
	// "type" (http, dns, ...) and "labels.NAME". Empty means one group per
	// route.
	By       []string      `yaml:"by"`
	Wait     time.Duration `yaml:"wait"`
	Interval time.Duration `yaml:"interval"`
	Src      Source
}

// StormGuard folds a burst of incidents into one: when more than Threshold
// incidents open within Window on one route of one notifier, the next ones
// join a single storm incident for the route instead of paging one by one,
// whatever the grouping says.
type StormGuard struct {
	Threshold int           `yaml:"threshold"`
	Window    time.Duration `yaml:"window"`
	// Disabled turns the guard off: every incident pages on its own.
	Disabled bool `yaml:"disabled"`
	Src      Source
}

// Grouping and storm defaults.
const (
	DefaultGroupWait      = 10 * time.Second
	DefaultGroupInterval  = time.Minute
	DefaultStormThreshold = 20
	DefaultStormWindow    = 2 * time.Minute
	maxGroupInterval      = 24 * time.Hour
)

// groupFacts are the facts grouping.by may name, besides labels.NAME.
var groupFacts = []string{"check", "host", "regions", "type"}

// validateGrouping checks g and fills its defaults.
func validateGrouping(g *Grouping, label string, errs *errorList) {
	seen := map[string]bool{}
	for i, by := range g.By {
		at := g.Src.At(fmt.Sprintf("by[%d]", i))
		name, isLabel := strings.CutPrefix(by, "labels.")
		switch {
		case isLabel && name == "":
			errs.add(at, "", "%s.by[%d]: labels. needs a label name, such as labels.service", label, i)
		case !isLabel && !slices.Contains(groupFacts, by):
			errs.add(at, "", "%s.by[%d]: %q: use %s or labels.NAME", label, i, by, strings.Join(groupFacts, ", "))
		case seen[by]:
			errs.add(at, "", "%s.by[%d]: %q is listed twice", label, i, by)
		}
		seen[by] = true
	}
	if !g.Src.Has("wait") {
		g.Wait = DefaultGroupWait
	} else if g.Wait < 0 || g.Wait > time.Hour {
		errs.add(g.Src.At("wait"), "", "%s.wait: %s must be between 0s and 1h", label, g.Wait)
	}
	if !g.Src.Has("interval") {
		g.Interval = DefaultGroupInterval
	} else if g.Interval < time.Second || g.Interval > maxGroupInterval {
		errs.add(g.Src.At("interval"), "", "%s.interval: %s must be between 1s and 24h", label, g.Interval)
	}
}

// validateStorm checks s and fills its defaults.
func validateStorm(s *StormGuard, label string, errs *errorList) {
	if !s.Src.Has("threshold") {
		s.Threshold = DefaultStormThreshold
	} else if s.Threshold < 1 || s.Threshold > 100000 {
		errs.add(s.Src.At("threshold"), "", "%s.threshold: %d must be between 1 and 100000 (to turn the guard off, write disabled: true)", label, s.Threshold)
	}
	if !s.Src.Has("window") {
		s.Window = DefaultStormWindow
	} else if s.Window < time.Second || s.Window > 24*time.Hour {
		errs.add(s.Src.At("window"), "", "%s.window: %s must be between 1s and 24h", label, s.Window)
	}
}

// GroupFact returns the value of fact (a grouping.by entry) for c: its id,
// its target's host, its regions, its type or one of its labels. A fact the
// check does not have is "".
func (c *Check) GroupFact(fact string) string {
	if name, ok := strings.CutPrefix(fact, "labels."); ok {
		return c.Labels[name]
	}
	switch fact {
	case "check":
		return c.ID
	case "host":
		return c.targetHost()
	case "regions":
		return strings.Join(slices.Sorted(slices.Values(c.Regions)), ",")
	case "type":
		return c.Type()
	}
	return ""
}

// targetHost is the host a check probes, lower-cased, without a port.
func (c *Check) targetHost() string {
	var h string
	switch {
	case c.HTTP != nil:
		if u, err := url.Parse(c.HTTP.URL); err == nil {
			h = u.Hostname()
		}
	case c.TCP != nil:
		h = hostOnly(c.TCP.Address)
	case c.TLS != nil:
		h = hostOnly(c.TLS.Address)
	case c.DNS != nil:
		h = strings.TrimSuffix(c.DNS.Name, ".")
	}
	return strings.ToLower(h)
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
