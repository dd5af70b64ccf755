package checks

import (
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
	// Meta governs the pages about monitoring itself.
	Meta Meta
	// Maintenance lists the maintenance windows.
	Maintenance []*Maintenance
	// Peers are the evaluators, which watch each other.
	Peers []Peer
	// API configures the evaluator's HTTP API (silences).
	API API
	// Bus, when its NATS block is set, carries results over NATS
	// JetStream and shards the checks among evaluators.
	Bus Bus
	// ExternalURL is where people reach the evaluators' status page
	// (https://outpost.example.com, without /status): pages link each
	// check to ExternalURL + "/status?check=ID". Empty: pages carry no
	// link.
	ExternalURL string

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
	Meta        *Meta         `yaml:"meta"`
	Maintenance []Maintenance `yaml:"maintenance"`
	Peers       []Peer        `yaml:"peers"`
	API         *API          `yaml:"api"`
	Bus         *Bus          `yaml:"bus"`
	ExternalURL string        `yaml:"external_url"`
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
	// MaxResultAge is the checks' default freshness horizon (see
	// Check.MaxResultAge); zero means each check's own default.
	MaxResultAge time.Duration `yaml:"max_result_age"`
	// Grouping and Storm are the notifiers' defaults (see Notifier).
	Grouping *Grouping   `yaml:"grouping"`
	Storm    *StormGuard `yaml:"storm"`
	// Repeat is the notifiers' default reminder interval (see
	// Notifier.Repeat); zero means none.
	Repeat time.Duration `yaml:"repeat"`
	Src    Source
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

// RecoveryRule says when a failing region counts as passing again: after N
// consecutive passing probes.
type RecoveryRule struct {
	Consecutive int `yaml:"consecutive"`
	Src         Source
}

func validateRecovery(r *RecoveryRule, check, label string, errs *errorList) {
	if r.Consecutive < 1 || r.Consecutive > maxWindow {
		errs.add(r.Src.At("consecutive"), check, "%s.consecutive: %d must be between 1 and %d", label, r.Consecutive, maxWindow)
	}
}

// FlapRule damps an incident that opens and resolves too often: more than
// Transitions changes of state within Window keep it open, marked flapping,
// with one page instead of one per change.
type FlapRule struct {
	Transitions int           `yaml:"transitions"`
	Window      time.Duration `yaml:"window"`
	Src         Source
}

func validateFlap(f *FlapRule, check, label string, errs *errorList) {
	if f.Transitions < 2 || f.Transitions > 100 {
		errs.add(f.Src.At("transitions"), check, "%s.transitions: %d must be between 2 and 100", label, f.Transitions)
	}
	if f.Window < time.Minute {
		errs.add(f.Src.At("window"), check, "%s.window: %s must be at least 1m", label, f.Window)
	}
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

// Agent is an agent allowed to report results for a region. Its key is
// its identity: an entry with a Name verifies only the batches of the
// agent of that name ("outpost agent --name"); an entry without one
// verifies the batches of any agent of the region (and "outpost validate"
// warns about it, see Config.Warnings). Several entries of one region and
// name are several keys of that agent, such as during a key rotation.
type Agent struct {
	Region string `yaml:"region"`
	// Name is the agent this key belongs to. Optional: without it the key
	// may sign for any agent of the region.
	Name string `yaml:"name"`
	Key  Secret `yaml:"key"`
	Src  Source
}

// AgentKey returns the key the agent name of region signs with, and
// whether there is one: that of the first entry of region named name, or
// else of the first entry of region without a name. With name empty, the
// first entry of region.
func (c *Config) AgentKey(region, name string) (Secret, bool) {
	if i := c.agentIndex(region, name); i >= 0 {
		return c.Agents[i].Key, true
	}
	return Secret{}, false
}

// DefaultMaxResultAge is c's freshness horizon unless configured: two
// intervals after its probe ended (a result is stamped with its probe's
// start, and may wait up to the batch delay to be sent). Under it the
// latest result of a region that probes on schedule is always fresh, even
// when every probe runs into its timeout.
func DefaultMaxResultAge(c *Check, r Reporting) time.Duration {
	return 2*c.Interval + c.Timeout + r.BatchDelay
}

// Check is one thing to probe. Exactly one of its type blocks (HTTP, TCP,
// TLS, DNS, Heartbeat, Series) is set. After Load, every field is defaulted: Interval, Timeout,
// Quorum, Failure and Regions are never zero.
type Check struct {
	// ID names the check in pages, metrics and the status page: letters,
	// digits, '.', '_' and '-', unique across the configuration.
	ID string `yaml:"id"`
	// Interval is how often each region probes; defaults.interval (30s)
	// unless set.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe: 10s, or 80% of the interval if that is
	// shorter; below Interval.
	Timeout time.Duration `yaml:"timeout"`
	// Regions are the declared regions that run the check; every region
	// unless set.
	Regions []string `yaml:"regions"`
	// Quorum is how many live regions must fail for the check to be DOWN.
	Quorum Quorum `yaml:"quorum"`
	// Failure says when one region counts as failing.
	Failure *FailureRule `yaml:"failure"`
	// Recovery says when a failing region counts as passing again.
	Recovery *RecoveryRule `yaml:"recovery"`
	// For is how long the check must stay DOWN before an incident opens.
	For  time.Duration `yaml:"for"`
	Flap *FlapRule     `yaml:"flap"`
	// MaxResultAge is the check's freshness horizon: how old a result may
	// be, from its probe's start, and still describe the present. A result
	// that arrives older (replayed from a spool after a partition, say)
	// is history: it is shown and counted in metrics, never judged. A
	// region whose latest result has aged past it does not count towards
	// the check's quorum until a fresh one arrives. After Load it is never
	// zero: by default DefaultMaxResultAge.
	MaxResultAge time.Duration `yaml:"max_result_age"`
	// OnDisagreement says what regions that disagree (DNS answers,
	// connected addresses) lead to: page, warn (the default) or ignore.
	OnDisagreement string `yaml:"on_disagreement"`
	// Notify names the notifiers that hear about the check (each takes
	// only its routes); every notifier unless set.
	Notify []string `yaml:"notify"`
	// Labels are extra labels of the check, with Prometheus label names;
	// the label group (else service, else team) is its pages' group.
	Labels map[string]string `yaml:"labels"`
	// Private keeps the check's target and evidence (reasons, addresses,
	// answers) off the status page; its state is still shown.
	Private bool `yaml:"private"`
	// Runbook is an http(s) URL of what to do when the check pages; every
	// page of the check links to it.
	Runbook string `yaml:"runbook"`

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
	for _, t := range c.typeBlocks() {
		if t.set {
			return t.name
		}
	}
	return ""
}

// typeBlock is one of the type blocks of a check or a notifier, by its
// YAML key, and whether it is written.
type typeBlock struct {
	name string
	set  bool
}

// typeBlocks lists the check's type blocks in the order Type, validation
// and the schema (schema.go) take them; exactly one must be set.
func (c *Check) typeBlocks() []typeBlock {
	return []typeBlock{{"http", c.HTTP != nil}, {"tcp", c.TCP != nil}, {"tls", c.TLS != nil}, {"dns", c.DNS != nil}, {"heartbeat", c.Heartbeat != nil}, {"series", c.Series != nil}}
}

// IP protocol choices for resolving a target.
const (
	IPAny        = ""            // prefer IPv4, fall back to IPv6
	IPv4         = "ipv4"        // IPv4 only
	IPv6         = "ipv6"        // IPv6 only
	IPPreferIPv6 = "prefer-ipv6" // prefer IPv6, fall back to IPv4
	IPPreferIPv4 = "prefer-ipv4" // the default, written out
)

// ipProtocols are the values ip_protocol may take.
var ipProtocols = []string{IPAny, IPv4, IPv6, IPPreferIPv4, IPPreferIPv6}

// Redactor returns a function that replaces every value substituted from the
// environment with "<redacted>", in every form NewRedactor knows (quoted,
// URL-encoded, base64), and the "user:password" of every check's
// basic_auth, which travels in base64 in an Authorization header. Probes
// pass reasons and observations through it so that no credential written
// as ${ENV} can reach output, logs or pages.
func (c *Config) Redactor() func(string) string {
	secrets := slices.Clone(c.secrets)
	for _, ch := range c.Checks {
		if ch.HTTP != nil && ch.HTTP.BasicAuth != nil {
			if a := ch.HTTP.BasicAuth; a.Password.Value() != "" {
				secrets = append(secrets, a.Username+":"+a.Password.Value())
			}
		}
	}
	return NewRedactor(secrets)
}
