package checks

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits that keep a config from asking for unbounded memory or work.
const (
	MaxBodyBytesLimit = 64 << 20
	maxRequestBody    = 8 << 20
	maxWindow         = 1000
	maxSteps          = 20
	maxRedirectsLimit = 50
	minInterval       = time.Second
)

var (
	idRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelRE     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	headerKeyRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func validName(s string) bool { return nameRE.MatchString(s) }

// reservedLabels are label names Outpost itself puts on every series.
var reservedLabels = []string{"check", "region", "phase", "instance", "job"}

func validate(cfg *Config, errs *errorList) {
	d := &cfg.Defaults
	if d.Interval == 0 {
		d.Interval = DefaultInterval
	} else if d.Interval < minInterval {
		errs.add(d.Src.At("interval"), "", "defaults.interval: %s is below the minimum of %s", d.Interval, minInterval)
	}
	if d.Timeout != 0 && d.Timeout >= d.Interval {
		errs.add(d.Src.At("timeout"), "", "defaults.timeout: %s must be below interval %s", d.Timeout, d.Interval)
	}
	if d.MaxResultAge < 0 {
		errs.add(d.Src.At("max_result_age"), "", "defaults.max_result_age: %s must be above 0", d.MaxResultAge)
	}
	if d.Quorum.IsZero() {
		d.Quorum = Majority
	}
	if d.Failure == nil {
		d.Failure = &FailureRule{Consecutive: DefaultConsecutive}
	} else {
		validateFailure(d.Failure, "", "defaults.failure", errs)
	}
	if d.Recovery == nil {
		d.Recovery = &RecoveryRule{Consecutive: DefaultRecovery}
	} else {
		validateRecovery(d.Recovery, "", "defaults.recovery", errs)
	}
	if d.Flap == nil {
		d.Flap = &FlapRule{Transitions: DefaultFlapTransitions, Window: DefaultFlapWindow}
	} else {
		validateFlap(d.Flap, "", "defaults.flap", errs)
	}

	if len(cfg.Regions) == 0 {
		cfg.Regions = []string{LocalRegion}
	}
	validateReporting(&cfg.Reporting, errs)
	validateMeta(&cfg.Meta, &cfg.Reporting, errs)
	validateAPI(&cfg.API, errs)
	validateBus(&cfg.Bus, cfg.Regions, errs)

	for i := range cfg.Agents {
		a := &cfg.Agents[i]
		if a.Region == "" {
			errs.add(a.Src.At("region"), "", "agents[%d]: region is required", i)
		} else if !slices.Contains(cfg.Regions, a.Region) {
			errs.add(a.Src.At("region"), "", "agents[%d]: region %q is not declared in regions: %s", i, a.Region, strings.Join(cfg.Regions, ", "))
		}
		if a.Name != "" && !idRE.MatchString(a.Name) {
			errs.add(a.Src.At("name"), "", "agents[%d]: name %q: want at most 128 letters, digits, '.', '_' or '-', as given to --name", i, clipName(a.Name))
		} else if a.Name == "" && a.Src.Has("name") {
			errs.add(a.Src.At("name"), "", "agents[%d]: name is empty; leave it out for a key of any agent of the region", i)
		}
		if a.Key.Missing() {
			// Only the processes that need it say so (Needs).
		} else if a.Key.IsZero() && !a.Src.Has("key") {
			errs.add(a.Src.Pos, "", "agents[%d]: key is required, such as key: ${OUTPOST_KEY_%s}", i, envSuffix(a.Region))
		} else if a.Key.IsZero() {
			errs.add(a.Src.At("key"), "", "agents[%d]: key is empty", i)
		}
	}

	if d.Grouping != nil {
		validateGrouping(d.Grouping, "defaults.grouping", errs)
	}
	if d.Storm == nil {
		d.Storm = &StormGuard{Threshold: DefaultStormThreshold, Window: DefaultStormWindow}
	} else {
		validateStorm(d.Storm, "defaults.storm", errs)
	}
	if d.Src.Has("repeat") {
		validateRepeat(d.Repeat, d.Src.At("repeat"), "defaults.repeat", errs)
	}
	notifiers := map[string]Pos{}
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		validateNotifier(n, i, notifiers, errs)
		if !n.Src.Has("repeat") {
			n.Repeat = d.Repeat
			if n.Repeat == 0 && n.Alertmanager != nil {
				// Alertmanager resolves what is not posted again within
				// 4 × resend; reminders, which the outbox keeps across
				// restarts, post an open incident again after one.
				n.Repeat = max(MinRepeat, 3*n.Alertmanager.Resend)
			}
		}
		if n.Grouping == nil && d.Grouping != nil {
			g := *d.Grouping
			n.Grouping = &g
		}
		if n.Storm == nil {
			s := *d.Storm
			n.Storm = &s
		}
		if n.Storm.Disabled {
			n.Storm = nil
		}
	}
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		esc := n.Escalate
		if esc == nil {
			continue
		}
		switch _, ok := notifiers[esc.To]; {
		case esc.To == "":
			errs.add(esc.Src.Pos, "", "notifier %q: escalate.to is required", n.Name)
		case esc.To == n.Name:
			errs.add(esc.Src.At("to"), "", "notifier %q: escalate.to names the notifier itself", n.Name)
		case !ok:
			errs.add(esc.Src.At("to"), "", "notifier %q: escalate.to: unknown notifier %q", n.Name, esc.To)
		}
		if !esc.Src.Has("after") {
			esc.After = 10 * time.Minute
		} else if esc.After < time.Minute {
			errs.add(esc.Src.At("after"), "", "notifier %q: escalate.after %s must be at least 1m", n.Name, esc.After)
		}
	}

	ids := map[string]Pos{}
	for _, c := range cfg.Checks {
		validateCheck(c, cfg, notifiers, ids, errs)
	}
	heartbeatTokens(cfg, errs)
	peers := map[string]Pos{}
	for i := range cfg.Peers {
		pe := &cfg.Peers[i]
		label := fmt.Sprintf("peers[%d]", i)
		switch {
		case !validName(pe.Name):
			errs.add(pe.Src.At("name"), "", "%s: name %q: use letters, digits, '-', '_' and '.'", label, pe.Name)
		default:
			if first, dup := peers[pe.Name]; dup {
				errs.add(pe.Src.At("name"), "", "%s: peer %q is listed twice (first at %s)", label, pe.Name, first)
			}
			peers[pe.Name] = pe.Src.At("name")
		}
		if msg := checkURL(pe.URL, false); msg != "" {
			errs.add(pe.Src.At("url"), "", "%s: url %s", label, msg)
		}
	}
	names := map[string]Pos{}
	for i, m := range cfg.Maintenance {
		validateMaintenance(m, i, cfg, ids, names, errs)
	}
	if len(cfg.Checks) == 0 && len(errs.errs) == 0 {
		file := "<config>"
		if len(cfg.Files) > 0 {
			file = cfg.Files[0]
		}
		errs.add(Pos{File: file}, "", "no checks defined; add at least one under checks:")
	}
}

func envSuffix(region string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(region))
}

// checkURL returns why s is not an absolute http(s) URL, as a predicate
// such as "has no host", or "". The error's position shows the value, so
// the message does not repeat it. When secret is set (the value is a
// Secret, or came from the environment) it includes no part of the value,
// not even url.Parse's detail, which can quote a port or an escape.
func checkURL(s string, secret bool) string {
	u, err := url.Parse(s)
	switch {
	case err != nil && secret:
		return "is not a valid URL"
	case err != nil:
		return fmt.Sprintf("is not a valid URL: %v", unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http or https URL"
	case u.Hostname() == "":
		return "has no host"
	}
	return ""
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func validateCheck(c *Check, cfg *Config, notifiers, ids map[string]Pos, errs *errorList) {
	id := c.ID
	switch {
	case !c.Src.Has("id"):
		errs.add(c.Src.Pos, "", "check has no id")
	case !idRE.MatchString(c.ID):
		errs.add(c.Src.At("id"), "", "check id %q: use letters, digits, '-', '_' and '.', at most 128 characters", c.ID)
		id = ""
	default:
		if first, dup := ids[c.ID]; dup {
			errs.add(c.Src.At("id"), id, "duplicate check id (first defined at %s)", first)
		} else {
			ids[c.ID] = c.Src.At("id")
		}
	}
	add := func(key, format string, args ...any) {
		errs.add(c.Src.At(key), id, format, args...)
	}

	var types []string
	for _, t := range c.typeBlocks() {
		if t.set {
			types = append(types, t.name)
		}
	}
	switch len(types) {
	case 0:
		errs.add(c.Src.Pos, id, "no check type: add one of http, tcp, tls, dns, heartbeat, series")
		return
	case 1:
	default:
		add(types[1], "has both %s and %s; a check has exactly one type", types[0], types[1])
		return
	}

	// Interval and timeout, with where each came from for messages.
	if c.Interval == 0 {
		c.Interval = cfg.Defaults.Interval
	} else if c.Interval < minInterval {
		add("interval", "interval %s is below the minimum of %s", c.Interval, minInterval)
	}
	switch {
	case c.Src.Has("timeout"):
		if c.Timeout == 0 {
			add("timeout", "timeout must be above 0")
		} else if c.Timeout >= c.Interval {
			add("timeout", "timeout %s must be below interval %s", c.Timeout, c.Interval)
		}
	case cfg.Defaults.Timeout != 0:
		c.Timeout = cfg.Defaults.Timeout
		// With the interval from defaults too, the defaults: error says it.
		if c.Timeout >= c.Interval && c.Src.Has("interval") {
			add("interval", "timeout %s (from defaults) must be below interval %s", c.Timeout, c.Interval)
		}
	default:
		// 80% of the interval, written so that a long interval cannot overflow.
		c.Timeout = min(DefaultTimeout, c.Interval-c.Interval/5)
	}

	// Regions and quorum.
	if c.Src.Has("regions") {
		if len(c.Regions) == 0 {
			add("regions", "regions is empty; leave it out to run in every region")
		}
		seen := map[string]bool{}
		for i, r := range c.Regions {
			key := fmt.Sprintf("regions[%d]", i)
			switch {
			case seen[r]:
				add(key, "region %q is listed twice", r)
			case !slices.Contains(cfg.Regions, r):
				add(key, "unknown region %q; declared regions: %s", r, strings.Join(cfg.Regions, ", "))
			}
			seen[r] = true
		}
	} else {
		c.Regions = slices.Clone(cfg.Regions)
	}
	quorumFrom := "quorum"
	if c.Quorum.IsZero() {
		c.Quorum = cfg.Defaults.Quorum
		quorumFrom = ""
	}
	if n, ok := c.Quorum.Fixed(); ok && n > len(c.Regions) && len(c.Regions) > 0 {
		pos, suffix := c.Src.At("quorum"), ""
		if quorumFrom == "" {
			pos, suffix = cfg.Defaults.Src.At("quorum"), " (from defaults)"
		}
		errs.add(pos, id, "quorum %d%s is more than the check's %d region(s): %s", n, suffix, len(c.Regions), strings.Join(c.Regions, ", "))
	}
	if c.Failure == nil {
		c.Failure = cfg.Defaults.Failure
	} else {
		validateFailure(c.Failure, id, "failure", errs)
	}
	if c.Recovery == nil {
		c.Recovery = cfg.Defaults.Recovery
	} else {
		validateRecovery(c.Recovery, id, "recovery", errs)
	}
	if c.Flap == nil {
		c.Flap = cfg.Defaults.Flap
	} else {
		validateFlap(c.Flap, id, "flap", errs)
	}
	if !c.Src.Has("for") {
		c.For = cfg.Defaults.For
	}
	validateMaxResultAge(c, cfg, errs, add)
	switch {
	case c.OnDisagreement == "":
		c.OnDisagreement = DisagreementWarn
	case slices.Contains(disagreements, c.OnDisagreement):
	default:
		add("on_disagreement", "on_disagreement %q: use page, warn or ignore", c.OnDisagreement)
	}

	for i, name := range c.Notify {
		if _, ok := notifiers[name]; !ok {
			known := make([]string, 0, len(notifiers))
			for k := range notifiers {
				known = append(known, k)
			}
			slices.Sort(known)
			msg := "no notifiers are defined"
			if len(known) > 0 {
				msg = "defined: " + strings.Join(known, ", ")
			}
			add(fmt.Sprintf("notify[%d]", i), "unknown notifier %q; %s", name, msg)
		}
	}
	if c.Src.Has("runbook") {
		if msg := checkURL(c.Runbook, c.Src.fromEnv("runbook")); msg != "" {
			add("runbook", "runbook %s", msg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		if !labelRE.MatchString(k) || slices.Contains(reservedLabels, k) || strings.HasPrefix(k, "__") {
			add("labels."+k, "label name %q: use letters, digits and '_', not starting with a digit, and not one of %s", k, strings.Join(reservedLabels, ", "))
		}
	}

	switch {
	case c.HTTP != nil:
		validateHTTP(c, id, errs)
	case c.TCP != nil:
		validateTCP(c, id, errs)
	case c.TLS != nil:
		validateTLS(c, id, errs)
	case c.DNS != nil:
		validateDNS(c, id, errs)
	case c.Heartbeat != nil:
		validateHeartbeat(c, id, errs)
	case c.Series != nil:
		validateSeries(c, id, errs)
	}
	validateShape(c, id, errs)
}

func validateIPProtocol(v string, src *Source, id string, errs *errorList) {
	if !slices.Contains(ipProtocols, v) {
		errs.add(src.At("ip_protocol"), id, "ip_protocol %q: use ipv4, ipv6, prefer-ipv4 or prefer-ipv6", v)
	}
}

func validateResolver(v string, src *Source, id string, errs *errorList) {
	if v == "" {
		return
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		host, port = v, "53"
	}
	if host == "" || !validPort(port) {
		errs.add(src.At("resolver"), id, "resolver %q: want host or host:port of a DNS server", v)
	}
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validateAddress checks a "host:port" target.
func validateAddress(addr string, src *Source, id, typ string, errs *errorList) {
	if addr == "" {
		errs.add(src.At("address"), id, "%s.address is required, as host:port", typ)
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || !validPort(port) {
		errs.add(src.At("address"), id, "%s.address %q: want host:port with a port from 1 to 65535", typ, addr)
	}
}

func validateLatency(max, timeout time.Duration, src *Source, id string, errs *errorList) {
	if max != 0 && max >= timeout {
		errs.add(src.At("max_latency"), id, "expect.max_latency %s is not below timeout %s; the probe would time out first", max, timeout)
	}
}

// adder reports errors at the keys of one block, prefixed with its path.
type adder func(key, format string, args ...any)

func blockAdder(src *Source, id, prefix string, errs *errorList) adder {
	return func(key, format string, args ...any) {
		errs.add(src.At(key), id, prefix+key+": "+format, args...)
	}
}

// Incident defaults.
const (
	DefaultRecovery        = 2
	DefaultFlapTransitions = 6
	DefaultFlapWindow      = time.Hour
	maxMaintenance         = 7 * 24 * time.Hour
)

// What a check's on_disagreement may say.
const (
	DisagreementPage   = "page"
	DisagreementWarn   = "warn"
	DisagreementIgnore = "ignore"
)

// disagreements are the values on_disagreement may take.
var disagreements = []string{DisagreementPage, DisagreementWarn, DisagreementIgnore}

// validateMaxResultAge defaults c.MaxResultAge and checks it: a horizon
// shorter than an interval plus a timeout would call every result of a
// slow probe stale before the next could replace it.
func validateMaxResultAge(c *Check, cfg *Config, errs *errorList, add func(key, format string, args ...any)) {
	floor := c.Interval + c.Timeout
	switch {
	case c.Src.Has("max_result_age"):
		if c.MaxResultAge < floor {
			add("max_result_age", "max_result_age %s is below the interval plus the timeout, %s", c.MaxResultAge, floor)
		}
	case cfg.Defaults.MaxResultAge != 0:
		c.MaxResultAge = cfg.Defaults.MaxResultAge
		if c.MaxResultAge < floor {
			errs.add(cfg.Defaults.Src.At("max_result_age"), c.ID, "defaults.max_result_age %s is below the check's interval plus its timeout, %s", c.MaxResultAge, floor)
		}
	default:
		c.MaxResultAge = DefaultMaxResultAge(c, cfg.Reporting)
	}
}
