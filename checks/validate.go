package checks

import (
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
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

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

var (
	idRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelRE     = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	captureRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	templateRE  = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
	methodRE    = regexp.MustCompile(`^[A-Z]+$`)
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

	for i := range cfg.Agents {
		a := &cfg.Agents[i]
		if a.Region == "" {
			errs.add(a.Src.At("region"), "", "agents[%d]: region is required", i)
		} else if !slices.Contains(cfg.Regions, a.Region) {
			errs.add(a.Src.At("region"), "", "agents[%d]: region %q is not declared in regions: %s", i, a.Region, strings.Join(cfg.Regions, ", "))
		}
		if a.Key.IsZero() && !a.Src.Has("key") {
			errs.add(a.Src.Pos, "", "agents[%d]: key is required, such as key: ${OUTPOST_KEY_%s}", i, envSuffix(a.Region))
		} else if a.Key.IsZero() {
			errs.add(a.Src.At("key"), "", "agents[%d]: key is empty", i)
		}
	}

	notifiers := map[string]Pos{}
	for i := range cfg.Notifiers {
		validateNotifier(&cfg.Notifiers[i], i, notifiers, errs)
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
	var types []string
	if n.PagerDuty != nil {
		types = append(types, "pagerduty")
		p := n.PagerDuty
		if p.RoutingKey.IsZero() {
			errs.add(p.Src.At("routing_key"), "", "%s: pagerduty.routing_key is required, such as routing_key: ${PAGERDUTY_ROUTING_KEY}", label)
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
		types = append(types, "slack")
		if n.Slack.WebhookURL.IsZero() {
			errs.add(n.Slack.Src.At("webhook_url"), "", "%s: slack.webhook_url is required, such as webhook_url: ${SLACK_WEBHOOK_URL}", label)
		} else if msg := checkURL(n.Slack.WebhookURL.Value(), true); msg != "" {
			errs.add(n.Slack.Src.At("webhook_url"), "", "%s: slack.webhook_url %s", label, msg)
		}
	}
	if n.Webhook != nil {
		types = append(types, "webhook")
		if n.Webhook.URL == "" {
			errs.add(n.Webhook.Src.At("url"), "", "%s: webhook.url is required", label)
		} else if msg := checkURL(n.Webhook.URL, n.Webhook.Src.fromEnv("url")); msg != "" {
			errs.add(n.Webhook.Src.At("url"), "", "%s: webhook.url %s", label, msg)
		}
	}
	if n.Console != nil {
		types = append(types, "console")
	}
	switch len(types) {
	case 0:
		errs.add(n.Src.Pos, "", "%s: no notifier type; add one of pagerduty, slack, webhook, console", label)
	case 1:
	default:
		errs.add(n.Src.At(types[1]), "", "%s: has both %s and %s; a notifier has exactly one type", label, types[0], types[1])
	}
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

func validateFailure(f *FailureRule, check, label string, errs *errorList) {
	hasC, hasR := f.Src.Has("consecutive"), f.Src.Has("ratio") || f.Src.Has("window")
	switch {
	case hasC && hasR:
		errs.add(f.Src.Pos, check, "%s: use either consecutive or ratio with window, not both", label)
	case hasC:
		if f.Consecutive < 1 || f.Consecutive > maxWindow {
			errs.add(f.Src.At("consecutive"), check, "%s.consecutive: %d must be between 1 and %d", label, f.Consecutive, maxWindow)
		}
	case hasR && !f.Src.Has("ratio"):
		errs.add(f.Src.At("window"), check, "%s: window needs a ratio (the share of failed probes, such as ratio: 0.3)", label)
	case hasR:
		if f.Ratio <= 0 || f.Ratio > 1 {
			errs.add(f.Src.At("ratio"), check, "%s.ratio: %g must be above 0 and at most 1", label, f.Ratio)
		}
		if !f.Src.Has("window") {
			errs.add(f.Src.Pos, check, "%s: ratio needs a window (the number of recent probes it is measured over)", label)
		} else if f.Window < 1 || f.Window > maxWindow {
			errs.add(f.Src.At("window"), check, "%s.window: %d must be between 1 and %d", label, f.Window, maxWindow)
		}
	default:
		errs.add(f.Src.Pos, check, "%s: set consecutive: N, or ratio: R with window: N", label)
	}
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
	for _, t := range []struct {
		name string
		set  bool
	}{{"http", c.HTTP != nil}, {"tcp", c.TCP != nil}, {"tls", c.TLS != nil}, {"dns", c.DNS != nil}, {"heartbeat", c.Heartbeat != nil}, {"series", c.Series != nil}} {
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
	switch c.OnDisagreement {
	case "":
		c.OnDisagreement = DisagreementWarn
	case DisagreementPage, DisagreementWarn, DisagreementIgnore:
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
	switch v {
	case IPAny, IPv4, IPv6, IPPreferIPv4, IPPreferIPv6:
	default:
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

func validateTCP(c *Check, id string, errs *errorList) {
	t := c.TCP
	validateAddress(t.Address, &t.Src, id, "tcp", errs)
	validateIPProtocol(t.IPProtocol, &t.Src, id, errs)
	validateResolver(t.Resolver, &t.Src, id, errs)
	if len(t.Send) > 64<<10 {
		errs.add(t.Src.At("send"), id, "tcp.send is longer than 64 KiB")
	}
	if t.Expect != nil {
		validateLatency(t.Expect.MaxLatency, c.Timeout, &t.Expect.Src, id, errs)
	}
}

func validateTLS(c *Check, id string, errs *errorList) {
	t := c.TLS
	validateAddress(t.Address, &t.Src, id, "tls", errs)
	validateIPProtocol(t.IPProtocol, &t.Src, id, errs)
	validateResolver(t.Resolver, &t.Src, id, errs)
	if t.Expect != nil {
		if t.Expect.CertMinDays < 0 {
			errs.add(t.Expect.Src.At("cert_min_days"), id, "expect.cert_min_days must not be negative")
		}
		validateLatency(t.Expect.MaxLatency, c.Timeout, &t.Expect.Src, id, errs)
	}
}

func validateHTTP(c *Check, id string, errs *errorList) {
	h := c.HTTP
	validateIPProtocol(h.IPProtocol, &h.Src, id, errs)
	validateResolver(h.Resolver, &h.Src, id, errs)
	if h.FollowRedirects == nil {
		yes := true
		h.FollowRedirects = &yes
	}
	if !h.Src.Has("max_redirects") {
		h.MaxRedirects = 10
	} else if h.MaxRedirects < 0 || h.MaxRedirects > maxRedirectsLimit {
		errs.add(h.Src.At("max_redirects"), id, "max_redirects %d must be between 0 and %d", h.MaxRedirects, maxRedirectsLimit)
	}
	if !h.Src.Has("max_body_bytes") {
		h.MaxBodyBytes = DefaultMaxBodyBytes
	} else if h.MaxBodyBytes < 1 || h.MaxBodyBytes > MaxBodyBytesLimit {
		errs.add(h.Src.At("max_body_bytes"), id, "max_body_bytes must be between 1 and %d MiB", MaxBodyBytesLimit>>20)
	}
	if h.BasicAuth != nil {
		if h.BasicAuth.Username == "" {
			errs.add(h.BasicAuth.Src.Pos, id, "basic_auth.username is required")
		}
		if !h.BearerToken.IsZero() || h.Src.Has("bearer_token") {
			errs.add(h.Src.At("bearer_token"), id, "use basic_auth or bearer_token, not both")
		}
	}
	if h.TLS != nil && h.TLS.CAFile != "" && h.TLS.CAPEM != nil {
		if !x509.NewCertPool().AppendCertsFromPEM(h.TLS.CAPEM) {
			errs.add(h.TLS.Src.At("ca_file"), id, "tls.ca_file %q holds no PEM certificate", h.TLS.CAFile)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		if !headerKeyRE.MatchString(name) {
			errs.add(h.Src.At("headers."+name), id, "header name %q is not a valid HTTP token", name)
		}
	}

	if len(h.Steps) == 0 {
		if h.URL == "" {
			errs.add(h.Src.At("url"), id, "http.url is required (or steps: for a multi-step check)")
			return
		}
		validateRequest(&h.HTTPRequest, &h.Src, c, id, "", nil, errs)
		return
	}
	for _, key := range []string{"url", "method", "query", "body", "body_file", "expect"} {
		if h.Src.Has(key) {
			errs.add(h.Src.At(key), id, "http.%s: set it on each step, not beside steps:", key)
		}
	}
	if len(h.Steps) > maxSteps {
		errs.add(h.Src.At("steps"), id, "%d steps is more than the limit of %d", len(h.Steps), maxSteps)
	}
	captured := map[string]bool{}
	names := map[string]bool{}
	for i := range h.Steps {
		s := &h.Steps[i]
		if s.Name == "" {
			s.Name = fmt.Sprintf("step %d", i+1)
		}
		label := fmt.Sprintf("step %q: ", s.Name)
		if names[s.Name] {
			errs.add(s.Src.At("name"), id, "%sname is used by another step", label)
		}
		names[s.Name] = true
		if s.URL == "" {
			errs.add(s.Src.At("url"), id, "%surl is required", label)
		} else {
			validateRequest(&s.HTTPRequest, &s.Src, c, id, label, captured, errs)
		}
		for _, name := range slices.Sorted(maps.Keys(s.Capture)) {
			cp := s.Capture[name]
			switch {
			case !captureRE.MatchString(name):
				errs.add(s.Src.At("capture."+name), id, "%scapture name %q: use letters, digits and '_'", label, name)
			case captured[name]:
				errs.add(s.Src.At("capture."+name), id, "%s%q is captured by an earlier step", label, name)
			}
			n := 0
			if !cp.JSON.IsZero() {
				n++
			}
			if cp.Header != "" {
				n++
			}
			if cp.Regex != nil {
				n++
				if cp.Regex.NumSubexp() < 1 {
					errs.add(cp.Src.At("regex"), id, "%scapture %q: regex needs a group ( ... ) around the value to capture", label, name)
				}
			}
			if n != 1 {
				errs.add(cp.Src.Pos, id, "%scapture %q: set exactly one of json, header or regex", label, name)
			}
		}
		for name := range s.Capture {
			captured[name] = true
		}
	}
}

// validateRequest checks one request. captured is nil outside steps; inside
// steps it holds the names earlier steps capture, which templates may use.
func validateRequest(r *HTTPRequest, src *Source, c *Check, id, label string, captured map[string]bool, errs *errorList) {
	// templ checks the {{name}} references in s, the value of key, written
	// at src.At(at).
	templ := func(key, at, s string) string {
		for _, m := range templateRE.FindAllStringSubmatch(s, -1) {
			switch {
			case captured == nil:
				errs.add(src.At(at), id, "%s%s uses {{%s}}, but captures exist only in multi-step checks", label, key, m[1])
			case !captured[m[1]]:
				errs.add(src.At(at), id, "%s%s uses {{%s}}, which no earlier step captures", label, key, m[1])
			}
		}
		return templateRE.ReplaceAllString(s, "x")
	}
	// A URL that is wholly a captured value ("{{location}}") is checked when
	// the step runs.
	wholeTemplate := templateRE.MatchString(r.URL) && strings.HasPrefix(strings.TrimSpace(r.URL), "{{")
	if u := templ("url", "url", r.URL); u != "" && !wholeTemplate {
		if msg := checkURL(u, src.fromEnv("url")); msg != "" {
			errs.add(src.At("url"), id, "%surl %s", label, msg)
		} else if r.Expect != nil && r.Expect.CertMinDays > 0 && strings.HasPrefix(strings.ToLower(u), "http:") {
			errs.add(r.Expect.Src.At("cert_min_days"), id, "%sexpect.cert_min_days needs an https URL", label)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		templ("headers", "headers."+k, r.Headers[k])
		if !headerKeyRE.MatchString(k) {
			errs.add(src.At("headers."+k), id, "%sheader name %q is not a valid HTTP token", label, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Query)) {
		templ("query", "query."+k, r.Query[k])
	}
	templ("body", "body", r.Body)
	if r.Method == "" {
		r.Method = "GET"
	} else if !methodRE.MatchString(r.Method) {
		errs.add(src.At("method"), id, "%smethod %q: use an upper-case HTTP method such as GET or POST", label, r.Method)
	}
	if r.Body != "" && r.BodyFile != "" {
		errs.add(src.At("body_file"), id, "%suse body or body_file, not both", label)
	}
	if e := r.Expect; e != nil {
		if e.CertMinDays < 0 {
			errs.add(e.Src.At("cert_min_days"), id, "%sexpect.cert_min_days must not be negative", label)
		}
		validateLatency(e.MaxLatency, c.Timeout, &e.Src, id, errs)
		if f := e.Fresh; f != nil {
			if f.JSON.IsZero() == (f.Header == "") {
				errs.add(f.Src.Pos, id, "%sexpect.fresh: set exactly one of json (a JSON path) or header (such as Last-Modified)", label)
			}
			if f.MaxAge <= 0 {
				errs.add(f.Src.At("max_age"), id, "%sexpect.fresh.max_age is required and must be above 0", label)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
			if !headerKeyRE.MatchString(name) {
				errs.add(e.Src.At("headers."+name), id, "%sexpect.headers: %q is not a valid header name", label, name)
			}
		}
	}
}

// readCheckFiles reads the files a check refers to (request bodies, CA
// bundles) relative to the config file's directory, so that a missing file
// is a load error rather than a probe failure.
func readCheckFiles(c *Check, baseDir string, errs *errorList) {
	read := func(name string, limit int64, src *Source, key string) []byte {
		if name == "" {
			return nil
		}
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		info, err := os.Stat(p)
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		// A device or FIFO (/dev/zero, /dev/stdin) would never end.
		if !info.Mode().IsRegular() {
			errs.add(src.At(key), c.ID, "%s %q is not a regular file", key, name)
			return nil
		}
		tooBig := func() []byte {
			errs.add(src.At(key), c.ID, "%s %q is larger than %d MiB", key, name, limit>>20)
			return nil
		}
		if info.Size() > limit {
			return tooBig()
		}
		f, err := os.Open(p)
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		if int64(len(b)) > limit {
			return tooBig() // it grew since Stat
		}
		return b
	}
	if h := c.HTTP; h != nil {
		h.BodyBytes = read(h.BodyFile, maxRequestBody, &h.Src, "body_file")
		if h.TLS != nil {
			h.TLS.CAPEM = read(h.TLS.CAFile, 1<<20, &h.TLS.Src, "ca_file")
		}
		for i := range h.Steps {
			s := &h.Steps[i]
			s.BodyBytes = read(s.BodyFile, maxRequestBody, &s.Src, "body_file")
		}
	}
	if t := c.TLS; t != nil {
		t.CAPEM = read(t.CAFile, 1<<20, &t.Src, "ca_file")
		if t.CAPEM != nil && !x509.NewCertPool().AppendCertsFromPEM(t.CAPEM) {
			errs.add(t.Src.At("ca_file"), c.ID, "ca_file %q holds no PEM certificate", t.CAFile)
		}
	}
}

// Reporting defaults.
const (
	DefaultHeartbeat  = 10 * time.Second
	DefaultBatchSize  = 500
	DefaultBatchDelay = time.Second
	DefaultSpoolSize  = 256 << 20
	maxBatchSize      = 1000 // probes.MaxBatchResults
)

func validateReporting(r *Reporting, errs *errorList) {
	add := func(key, format string, args ...any) { errs.add(r.Src.At(key), "", "reporting."+format, args...) }
	if r.Heartbeat == 0 {
		r.Heartbeat = DefaultHeartbeat
	} else if r.Heartbeat < 100*time.Millisecond {
		add("heartbeat", "heartbeat %s is below the minimum of 100ms", r.Heartbeat)
	}
	if r.StaleAfter == 0 {
		r.StaleAfter = 3 * r.Heartbeat
	} else if r.StaleAfter <= r.Heartbeat {
		add("stale_after", "stale_after %s must be longer than heartbeat %s, or every region would flap stale", r.StaleAfter, r.Heartbeat)
	}
	if !r.Src.Has("batch_size") {
		r.BatchSize = DefaultBatchSize
	} else if r.BatchSize < 1 || r.BatchSize > maxBatchSize {
		add("batch_size", "batch_size %d must be between 1 and %d", r.BatchSize, maxBatchSize)
	}
	if r.BatchDelay == 0 {
		r.BatchDelay = min(DefaultBatchDelay, r.Heartbeat)
	} else if r.BatchDelay > r.Heartbeat {
		add("batch_delay", "batch_delay %s must not exceed heartbeat %s", r.BatchDelay, r.Heartbeat)
	}
	if r.LostAfter == 0 {
		r.LostAfter = max(5*time.Minute, 2*r.StaleAfter)
	} else if r.LostAfter <= r.Heartbeat {
		add("lost_after", "lost_after %s must be longer than heartbeat %s", r.LostAfter, r.Heartbeat)
	}
	if !r.Src.Has("spool_size") {
		r.SpoolSize = DefaultSpoolSize
	} else if r.SpoolSize < 1<<20 {
		add("spool_size", "spool_size must be at least 1MiB")
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

// Notification routes.
const (
	RouteCritical = "critical"
	RouteWarning  = "warning"
	RouteMeta     = "meta"
)

// Routes lists every route, the default of a notifier.
var Routes = []string{RouteCritical, RouteWarning, RouteMeta}

func validateRecovery(r *RecoveryRule, check, label string, errs *errorList) {
	if r.Consecutive < 1 || r.Consecutive > maxWindow {
		errs.add(r.Src.At("consecutive"), check, "%s.consecutive: %d must be between 1 and %d", label, r.Consecutive, maxWindow)
	}
}

func validateFlap(f *FlapRule, check, label string, errs *errorList) {
	if f.Transitions < 2 || f.Transitions > 100 {
		errs.add(f.Src.At("transitions"), check, "%s.transitions: %d must be between 2 and 100", label, f.Transitions)
	}
	if f.Window < time.Minute {
		errs.add(f.Src.At("window"), check, "%s.window: %s must be at least 1m", label, f.Window)
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
