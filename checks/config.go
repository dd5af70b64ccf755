// Package checks is Outpost's configuration: the YAML schema shared by agents
// and evaluators, its defaults, and strict loading with FILE:LINE:COL errors
// and ${ENV} expansion.
package checks

import (
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// Built-in defaults, used where neither a check nor defaults: sets a value.
const (
	DefaultInterval     = 30 * time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultConsecutive  = 2
	DefaultMaxBodyBytes = 1 << 20
	// LocalRegion names the one region of a config that declares none.
	LocalRegion = "local"
)

// Config is a loaded, validated and defaulted configuration. It is the merge
// of every file given to Load.
type Config struct {
	Version   int
	Defaults  Defaults
	Regions   []string
	Agents    []Agent
	Notifiers []Notifier
	Checks    []*Check
	Reporting Reporting
	// Maintenance lists the maintenance windows.
	Maintenance []*Maintenance
	// Peers are the evaluators, which watch each other.
	Peers []Peer

	// Digest identifies the configuration's text: agents send it with their
	// results so that an evaluator running another version notices.
	Digest string

	// Files lists the files the config was loaded from, in order.
	Files []string
	// secrets holds every value substituted from the environment.
	secrets []string
}

// fileConfig is the shape of one YAML file.
type fileConfig struct {
	Version     int           `yaml:"version"`
	Defaults    *Defaults     `yaml:"defaults"`
	Regions     []string      `yaml:"regions"`
	Agents      []Agent       `yaml:"agents"`
	Notifiers   []Notifier    `yaml:"notifiers"`
	Checks      []Check       `yaml:"checks"`
	Reporting   *Reporting    `yaml:"reporting"`
	Maintenance []Maintenance `yaml:"maintenance"`
	Peers       []Peer        `yaml:"peers"`
	Src         Source

	raw []byte // the file's bytes, for Config.Digest
}

// Defaults are inherited by every check that does not set its own.
type Defaults struct {
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Quorum   Quorum        `yaml:"quorum"`
	Failure  *FailureRule  `yaml:"failure"`
	Recovery *RecoveryRule `yaml:"recovery"`
	For      time.Duration `yaml:"for"`
	Flap     *FlapRule     `yaml:"flap"`
	Src      Source
}

// FailureRule says when one region counts as failing a check: after N
// consecutive failed probes, or when the share of failures among the last
// Window probes reaches Ratio.
type FailureRule struct {
	Consecutive int     `yaml:"consecutive"`
	Ratio       float64 `yaml:"ratio"`
	Window      int     `yaml:"window"`
	Src         Source
}

// Reporting governs how agents ship results to evaluators and how soon an
// evaluator calls a silent region stale. Agents and evaluators read the same
// block, so the two sides cannot disagree.
type Reporting struct {
	// Heartbeat is the longest an agent goes without sending a batch; an
	// empty batch is its liveness signal. Default 10s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// StaleAfter is how long a region may be silent before the evaluator
	// takes it out of every quorum and raises a meta alert. Default three
	// heartbeats.
	StaleAfter time.Duration `yaml:"stale_after"`
	// BatchSize is the most results in one batch. Default 500.
	BatchSize int `yaml:"batch_size"`
	// BatchDelay is the longest a result waits to be batched. Default 1s.
	BatchDelay time.Duration `yaml:"batch_delay"`
	// SpoolSize bounds each evaluator's on-disk spool; when it is full the
	// oldest batches are dropped, counted and logged. Default 256MiB.
	SpoolSize Size `yaml:"spool_size"`
	// LostAfter is how long an agent may fail to reach every evaluator
	// before it pages through its own notifiers. Default 5m.
	LostAfter time.Duration `yaml:"lost_after"`
	Src       Source
}

// RecoveryRule says when a failing region counts as passing again: after N
// consecutive passing probes.
type RecoveryRule struct {
	Consecutive int `yaml:"consecutive"`
	Src         Source
}

// FlapRule damps an incident that opens and resolves too often: more than
// Transitions changes of state within Window keep it open, marked flapping,
// with one page instead of one per change.
type FlapRule struct {
	Transitions int           `yaml:"transitions"`
	Window      time.Duration `yaml:"window"`
	Src         Source
}

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

// Peer is an evaluator. Every evaluator checks the others' /healthz and
// pages, through its own notifiers, when one has been unreachable for
// reporting.stale_after: a monitor that died does not go unnoticed. An
// evaluator started with --name NAME skips its own entry.
type Peer struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	Src  Source
}

// Agent is an agent allowed to report results for a region.
type Agent struct {
	Region string `yaml:"region"`
	// Name tells apart several agents of one region, each with its own
	// key; "outpost agent --name" picks the entry. Optional.
	Name string `yaml:"name"`
	Key  Secret `yaml:"key"`
	Src  Source
}

// AgentKey returns the key of the agent entry for region (and name, when
// several agents share the region), and whether there is one.
func (c *Config) AgentKey(region, name string) (Secret, bool) {
	for _, a := range c.Agents {
		if a.Region == region && (name == "" || a.Name == "" || a.Name == name) {
			return a.Key, true
		}
	}
	return Secret{}, false
}

// Notifier is a named destination for pages and notices. Exactly one of its
// type blocks is set.
type Notifier struct {
	Name string `yaml:"name"`
	// Routes are the kinds of event the notifier takes: critical (a check
	// DOWN), warning (DEGRADED, disagreements, shape findings) and meta
	// (the monitoring itself: stale regions, UNKNOWN checks, dead peers).
	// Default: all three.
	Routes []string `yaml:"routes"`
	// Escalate sends what this notifier has failed to deliver for After to
	// the notifier To as well: a PagerDuty outage must not swallow pages.
	Escalate  *Escalation        `yaml:"escalate"`
	PagerDuty *PagerDutyNotifier `yaml:"pagerduty"`
	Slack     *SlackNotifier     `yaml:"slack"`
	Webhook   *WebhookNotifier   `yaml:"webhook"`
	Console   *ConsoleNotifier   `yaml:"console"`
	Src       Source
}

// Escalation names a fallback notifier for one that keeps failing.
type Escalation struct {
	To    string        `yaml:"to"`
	After time.Duration `yaml:"after"`
	Src   Source
}

// PagerDutyNotifier sends PagerDuty Events API v2 events.
type PagerDutyNotifier struct {
	RoutingKey Secret `yaml:"routing_key"`
	// URL is the Events API base URL; empty means PagerDuty's own.
	URL string `yaml:"url"`
	Src Source
}

// SlackNotifier posts to a Slack incoming webhook.
type SlackNotifier struct {
	WebhookURL Secret `yaml:"webhook_url"`
	Src        Source
}

// WebhookNotifier POSTs JSON, signed with HMAC-SHA256 when Secret is set.
type WebhookNotifier struct {
	URL    string `yaml:"url"`
	Secret Secret `yaml:"secret"`
	Src    Source
}

// ConsoleNotifier writes notifications to standard output.
type ConsoleNotifier struct {
	Src Source
}

// Check is one thing to probe. Exactly one of its type blocks (HTTP, TCP,
// TLS, DNS, Heartbeat, Series) is set. After Load, every field is defaulted: Interval, Timeout,
// Quorum, Failure and Regions are never zero.
type Check struct {
	ID       string        `yaml:"id"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"`
	Regions  []string      `yaml:"regions"`
	Quorum   Quorum        `yaml:"quorum"`
	Failure  *FailureRule  `yaml:"failure"`
	Recovery *RecoveryRule `yaml:"recovery"`
	// For is how long the check must stay DOWN before an incident opens.
	For  time.Duration `yaml:"for"`
	Flap *FlapRule     `yaml:"flap"`
	// OnDisagreement says what regions that disagree (DNS answers,
	// connected addresses) lead to: page, warn (the default) or ignore.
	OnDisagreement string            `yaml:"on_disagreement"`
	Notify         []string          `yaml:"notify"`
	Labels         map[string]string `yaml:"labels"`
	// Private keeps the check's target and evidence (reasons, addresses,
	// answers) off the status page; its state is still shown.
	Private bool `yaml:"private"`

	HTTP      *HTTPSpec      `yaml:"http"`
	TCP       *TCPSpec       `yaml:"tcp"`
	TLS       *TLSSpec       `yaml:"tls"`
	DNS       *DNSSpec       `yaml:"dns"`
	Heartbeat *HeartbeatSpec `yaml:"heartbeat"`
	Series    *SeriesSpec    `yaml:"series"`

	// Shape tunes the shape detectors (latency distribution, series
	// value). After Load it is set for every check but heartbeats, unless
	// written "shape: false".
	Shape *ShapeSpec `yaml:"shape"`

	Src Source
}

// Type returns the name of the check's type block ("http", "tcp", "tls",
// "dns", "heartbeat", "series").
func (c *Check) Type() string {
	switch {
	case c.HTTP != nil:
		return "http"
	case c.TCP != nil:
		return "tcp"
	case c.TLS != nil:
		return "tls"
	case c.DNS != nil:
		return "dns"
	case c.Heartbeat != nil:
		return "heartbeat"
	case c.Series != nil:
		return "series"
	}
	return ""
}

// HTTPRequest is what one HTTP request sends. It is shared by single-request
// checks and by each step of a multi-step check. In steps, "{{name}}" in the
// URL, headers, query and body is replaced by a value captured earlier.
type HTTPRequest struct {
	URL      string            `yaml:"url"`
	Method   string            `yaml:"method"`
	Headers  map[string]string `yaml:"headers"`
	Query    map[string]string `yaml:"query"`
	Body     string            `yaml:"body"`
	BodyFile string            `yaml:"body_file"`
	Expect   *HTTPExpect       `yaml:"expect"`
}

// HTTPSpec is an HTTP check: one request, or Steps run in order.
type HTTPSpec struct {
	HTTPRequest `yaml:",inline"`

	Steps           []HTTPStep  `yaml:"steps"`
	BasicAuth       *BasicAuth  `yaml:"basic_auth"`
	BearerToken     Secret      `yaml:"bearer_token"`
	FollowRedirects *bool       `yaml:"follow_redirects"`
	MaxRedirects    int         `yaml:"max_redirects"`
	TLS             *TLSOptions `yaml:"tls"`
	IPProtocol      string      `yaml:"ip_protocol"`
	MaxBodyBytes    Size        `yaml:"max_body_bytes"`
	// Resolver is "host:port" of a DNS server to resolve the target through;
	// empty means the system resolver.
	Resolver string `yaml:"resolver"`

	Src Source

	// BodyBytes holds the request body read from BodyFile at load.
	BodyBytes []byte `yaml:"-"`
}

// HTTPStep is one request of a multi-step HTTP check.
type HTTPStep struct {
	Name        string `yaml:"name"`
	HTTPRequest `yaml:",inline"`
	// Capture names values taken from this step's response for later steps.
	Capture map[string]*Capture `yaml:"capture"`
	Src     Source

	BodyBytes []byte `yaml:"-"`
}

// Capture takes one value from a response: a JSON path in the body, a
// header, or the first submatch of a regular expression over the body.
type Capture struct {
	JSON   JSONPath       `yaml:"json"`
	Header string         `yaml:"header"`
	Regex  *regexp.Regexp `yaml:"regex"`
	Src    Source
}

// BasicAuth is HTTP basic authentication; the password is a Secret.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	Src      Source
}

// TLSOptions configure the TLS client of HTTP checks.
type TLSOptions struct {
	ServerName string `yaml:"server_name"`
	CAFile     string `yaml:"ca_file"`
	// InsecureSkipVerify turns off certificate verification. It must be
	// spelled out; there is no shorter alias.
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify"`
	MinVersion         TLSVersion `yaml:"min_version"`
	Src                Source

	// CAPEM holds the contents of CAFile, read at load.
	CAPEM []byte `yaml:"-"`
}

// HTTPExpect is what a response must satisfy. Unset fields are not checked,
// except Status, which defaults to 2xx.
type HTTPExpect struct {
	Status          StatusSet                 `yaml:"status"`
	BodyContains    string                    `yaml:"body_contains"`
	BodyNotContains string                    `yaml:"body_not_contains"`
	BodyRegex       *regexp.Regexp            `yaml:"body_regex"`
	JSON            JSONExpect                `yaml:"json"`
	Headers         map[string]*regexp.Regexp `yaml:"headers"`
	Addresses       []netip.Prefix            `yaml:"addresses"`
	MaxLatency      time.Duration             `yaml:"max_latency"`
	CertMinDays     int                       `yaml:"cert_min_days"`
	// Fresh asserts that a time in the response (a JSON field or a header
	// such as Last-Modified) is recent: a status page or feed that stopped
	// updating fails even though it answers 200.
	Fresh *Freshness `yaml:"fresh"`
	Src   Source
}

// Freshness takes a time from the JSON body or a header and requires it
// to be at most MaxAge old.
type Freshness struct {
	JSON   JSONPath      `yaml:"json"`
	Header string        `yaml:"header"`
	MaxAge time.Duration `yaml:"max_age"`
	Src    Source
}

// TCPSpec is a TCP check: connect, optionally send a line and expect a reply.
type TCPSpec struct {
	Address    string     `yaml:"address"`
	Send       string     `yaml:"send"`
	Expect     *TCPExpect `yaml:"expect"`
	IPProtocol string     `yaml:"ip_protocol"`
	Resolver   string     `yaml:"resolver"`
	Src        Source
}

// TCPExpect is what a TCP check must see.
type TCPExpect struct {
	// Line must match the first line the server sends (after Send, if set).
	Line       *regexp.Regexp `yaml:"line"`
	Addresses  []netip.Prefix `yaml:"addresses"`
	MaxLatency time.Duration  `yaml:"max_latency"`
	Src        Source
}

// TLSSpec is a TLS check: a handshake with chain and hostname verification.
type TLSSpec struct {
	Address            string     `yaml:"address"`
	ServerName         string     `yaml:"server_name"`
	CAFile             string     `yaml:"ca_file"`
	InsecureSkipVerify bool       `yaml:"insecure_skip_verify"`
	MinVersion         TLSVersion `yaml:"min_version"`
	Expect             *TLSExpect `yaml:"expect"`
	IPProtocol         string     `yaml:"ip_protocol"`
	Resolver           string     `yaml:"resolver"`
	Src                Source

	CAPEM []byte `yaml:"-"`
}

// TLSExpect is what a TLS check must see.
type TLSExpect struct {
	CertMinDays int            `yaml:"cert_min_days"`
	Addresses   []netip.Prefix `yaml:"addresses"`
	MaxLatency  time.Duration  `yaml:"max_latency"`
	Src         Source
}

// IP protocol choices for resolving a target.
const (
	IPAny        = ""            // prefer IPv4, fall back to IPv6
	IPv4         = "ipv4"        // IPv4 only
	IPv6         = "ipv6"        // IPv6 only
	IPPreferIPv6 = "prefer-ipv6" // prefer IPv6, fall back to IPv4
	IPPreferIPv4 = "prefer-ipv4" // the default, written out
)

// Redactor returns a function that replaces every value substituted from the
// environment with "<redacted>". Probes pass reasons through it so that no
// credential written as ${ENV} can reach output, logs or pages.
func (c *Config) Redactor() func(string) string {
	return NewRedactor(c.secrets)
}
