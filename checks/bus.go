package checks

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bus moves results from agents to evaluators through NATS JetStream
// instead of HTTP, and splits the checks among evaluators by shard: past
// what one evaluator holds (see docs/scale.md). Without a bus block agents
// POST their batches to every evaluator, as always.
type Bus struct {
	NATS *NATSBus `yaml:"nats"`
	// Evaluators say which shards each evaluator decides. Every shard must
	// have an owner; two evaluators owning the same shards are an HA pair.
	// Without the list, every evaluator owns every shard.
	Evaluators []ShardOwner `yaml:"evaluators"`
	Src        Source
}

// NATSBus is the NATS connection and JetStream layout. Every process reads
// its own credentials from its environment: one config serves agents and
// evaluators, each with a NATS user of its own permissions.
type NATSBus struct {
	// URL is one or more server URLs, comma-separated (nats://, tls://).
	URL string `yaml:"url"`
	// User and Password, or Token, or CredsFile (a .creds file holding a
	// user JWT and its NKey seed) authenticate; at most one kind.
	User      string  `yaml:"user"`
	Password  Secret  `yaml:"password"`
	Token     Secret  `yaml:"token"`
	CredsFile string  `yaml:"creds_file"`
	TLS       *BusTLS `yaml:"tls"`
	// Stream is the JetStream stream that holds results and liveness
	// messages. Default OUTPOST.
	Stream string `yaml:"stream"`
	// Shards is the number of shards checks are hashed into (see
	// Shard). Default 64. Changing it moves most checks.
	Shards int `yaml:"shards"`
	// Replicas of the stream and buckets (1, 3 or 5). Default 1.
	Replicas int `yaml:"replicas"`
	// Retention is how long the stream keeps a message: an evaluator
	// down for longer loses what it missed. Default 24h.
	Retention time.Duration `yaml:"retention"`
	// MaxBytes bounds the stream; the oldest messages go first. Default
	// 1GiB.
	MaxBytes Size `yaml:"max_bytes"`
	// Duplicates is JetStream's duplicate window: a message re-sent
	// within it with the same Nats-Msg-Id is dropped by the server (the
	// evaluator's sequence check catches older re-sends). Default 10m.
	Duplicates time.Duration `yaml:"duplicates"`
	Src        Source
}

// BusTLS is the TLS client of the NATS connection.
type BusTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	Src        Source
}

// ShardOwner is an evaluator and the shards whose checks it decides.
type ShardOwner struct {
	// Name is the evaluator's name ("outpost evaluator --name"); it also
	// names its durable consumer.
	Name   string   `yaml:"name"`
	Shards ShardSet `yaml:"shards"`
	Src    Source
}

// ShardSet is a set of shards written as ranges and numbers: "0-31",
// "0-15,32-47", "7". Its zero value is empty.
type ShardSet struct {
	ranges [][2]int // sorted, disjoint, inclusive
}

// Bus defaults and limits.
const (
	DefaultBusStream     = "OUTPOST"
	DefaultShards        = 64
	MaxShards            = 1024
	DefaultBusRetention  = 24 * time.Hour
	DefaultBusMaxBytes   = 1 << 30
	DefaultBusDuplicates = 10 * time.Minute
)

// ParseShardSet parses "0-31", "0-15,32-47" or "7" against n shards.
func ParseShardSet(s string, n int) (ShardSet, error) {
	var set ShardSet
	if strings.TrimSpace(s) == "" {
		return set, fmt.Errorf("no shards; write them as 0-31 or 0-15,32-47")
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		switch {
		case err1 != nil || err2 != nil:
			return ShardSet{}, fmt.Errorf("%q is not a shard or a range of shards such as 0-31", part)
		case a > b:
			return ShardSet{}, fmt.Errorf("range %q runs backwards", part)
		case a < 0 || (n > 0 && b >= n):
			return ShardSet{}, fmt.Errorf("shard %s is outside 0-%d", part, n-1)
		}
		set.ranges = append(set.ranges, [2]int{a, b})
	}
	slices.SortFunc(set.ranges, func(x, y [2]int) int { return x[0] - y[0] })
	merged := set.ranges[:1]
	for _, r := range set.ranges[1:] {
		last := &merged[len(merged)-1]
		if r[0] <= last[1]+1 {
			last[1] = max(last[1], r[1])
		} else {
			merged = append(merged, r)
		}
	}
	set.ranges = merged
	return set, nil
}

// AllShards is the set of every one of n shards.
func AllShards(n int) ShardSet { return ShardSet{ranges: [][2]int{{0, n - 1}}} }

// Contains reports whether shard is in the set.
func (s ShardSet) Contains(shard int) bool {
	for _, r := range s.ranges {
		if shard >= r[0] && shard <= r[1] {
			return true
		}
	}
	return false
}

// List returns the set's shards in order.
func (s ShardSet) List() []int {
	var out []int
	for _, r := range s.ranges {
		for i := r[0]; i <= r[1]; i++ {
			out = append(out, i)
		}
	}
	return out
}

// IsZero reports whether the set is empty.
func (s ShardSet) IsZero() bool { return len(s.ranges) == 0 }

// String writes the set as it is parsed: "0-31,40".
func (s ShardSet) String() string {
	parts := make([]string, len(s.ranges))
	for i, r := range s.ranges {
		if r[0] == r[1] {
			parts[i] = strconv.Itoa(r[0])
		} else {
			parts[i] = strconv.Itoa(r[0]) + "-" + strconv.Itoa(r[1])
		}
	}
	return strings.Join(parts, ",")
}

// Equal reports whether s and o hold the same shards.
func (s ShardSet) Equal(o ShardSet) bool {
	return slices.Equal(s.ranges, o.ranges)
}

func (s *ShardSet) decodeScalar(sc scalar) error {
	// The shard count is checked in validateBus, once it is known.
	set, err := ParseShardSet(sc.Value, 0)
	if err != nil {
		return err
	}
	*s = set
	return nil
}

// Shard is the shard of a check: FNV-1a (32 bits) of its id, modulo
// shards. It is part of the wire contract: agents and evaluators of every
// version must agree on it.
func Shard(checkID string, shards int) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(checkID); i++ {
		h ^= uint32(checkID[i])
		h *= prime32
	}
	return int(h % uint32(shards))
}

// Enabled reports whether results travel over the bus.
func (b *Bus) Enabled() bool { return b.NATS != nil }

// Owned returns the shards evaluator name decides, and whether it is
// listed at all. Without an evaluators list every evaluator owns every
// shard.
func (b *Bus) Owned(name string) (ShardSet, bool) {
	if b.NATS == nil {
		return ShardSet{}, false
	}
	if len(b.Evaluators) == 0 {
		return AllShards(b.NATS.Shards), true
	}
	for _, o := range b.Evaluators {
		if o.Name == name {
			return o.Shards, true
		}
	}
	return ShardSet{}, false
}

// Owners returns the evaluators that own shard, in config order.
func (b *Bus) Owners(shard int) []string {
	var names []string
	for _, o := range b.Evaluators {
		if o.Shards.Contains(shard) {
			names = append(names, o.Name)
		}
	}
	return names
}

func validateBus(b *Bus, regions []string, errs *errorList) {
	add := func(src *Source, key, format string, args ...any) {
		errs.add(src.At(key), "", "bus."+format, args...)
	}
	if b.NATS == nil {
		if b.Src.Has("evaluators") {
			add(&b.Src, "evaluators", "evaluators: shards need a bus; add a nats: block")
		} else if b.Src.Pos.Line > 0 {
			add(&b.Src, "nats", "nats: is required in a bus block (the only bus there is)")
		}
		return
	}
	n := b.NATS
	switch {
	case strings.TrimSpace(n.URL) == "":
		add(&n.Src, "url", "nats.url is required, such as nats://nats.internal:4222")
	default:
		for raw := range strings.SplitSeq(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || u.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
				add(&n.Src, "url", "nats.url: %s is not a nats://, tls://, ws:// or wss:// URL with a host", quoteURL(raw, n.Src.fromEnv("url")))
			} else if u.User != nil {
				add(&n.Src, "url", "nats.url: credentials in the URL would show in logs; use user/password, token or creds_file")
			}
		}
	}
	kinds := 0
	if n.User != "" || n.Src.Has("password") {
		kinds++
		if n.User == "" || !n.Src.Has("password") {
			add(&n.Src, "user", "nats: user and password go together")
		}
	}
	if n.Src.Has("token") {
		kinds++
	}
	if n.CredsFile != "" {
		kinds++
	}
	if kinds > 1 {
		add(&n.Src, "user", "nats: use one of user/password, token or creds_file")
	}
	if n.TLS != nil && (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		add(&n.TLS.Src, "cert_file", "nats.tls: cert_file and key_file go together")
	}
	if n.Stream == "" {
		n.Stream = DefaultBusStream
	} else if !streamNameRE(n.Stream) {
		add(&n.Src, "stream", "nats.stream %q: want letters, digits, '_' or '-'", clipName(n.Stream))
	}
	if !n.Src.Has("shards") {
		n.Shards = DefaultShards
	} else if n.Shards < 1 || n.Shards > MaxShards {
		add(&n.Src, "shards", "nats.shards %d must be between 1 and %d", n.Shards, MaxShards)
		n.Shards = DefaultShards
	}
	if !n.Src.Has("replicas") {
		n.Replicas = 1
	} else if n.Replicas != 1 && n.Replicas != 3 && n.Replicas != 5 {
		add(&n.Src, "replicas", "nats.replicas %d: want 1, 3 or 5", n.Replicas)
	}
	if n.Retention == 0 {
		n.Retention = DefaultBusRetention
	} else if n.Retention < time.Minute {
		add(&n.Src, "retention", "nats.retention %s is below the minimum of 1m", n.Retention)
	}
	if !n.Src.Has("max_bytes") {
		n.MaxBytes = DefaultBusMaxBytes
	} else if n.MaxBytes < 1<<20 {
		add(&n.Src, "max_bytes", "nats.max_bytes must be at least 1MiB")
	}
	if n.Duplicates == 0 {
		n.Duplicates = min(DefaultBusDuplicates, n.Retention)
	} else if n.Duplicates < time.Second || n.Duplicates > n.Retention {
		add(&n.Src, "duplicates", "nats.duplicates %s must be between 1s and the retention %s", n.Duplicates, n.Retention)
	}

	for _, r := range regions {
		if strings.Contains(r, ".") {
			// A region is one token of the bus's subjects.
			add(&b.Src, "nats", "nats: region %q has a '.', which a bus subject cannot carry in one token; rename the region", r)
		}
	}
	names := map[string]bool{}
	for i := range b.Evaluators {
		o := &b.Evaluators[i]
		label := fmt.Sprintf("evaluators[%d]", i)
		switch {
		case o.Name == "":
			add(&o.Src, "name", "%s: name is required (the evaluator's --name)", label)
		case !idRE.MatchString(o.Name):
			add(&o.Src, "name", "%s: name %q: want at most 128 letters, digits, '.', '_' or '-'", label, clipName(o.Name))
		case strings.Contains(o.Name, "."):
			add(&o.Src, "name", "%s: name %q: a '.' cannot be in a JetStream consumer's name", label, o.Name)
		case names[o.Name]:
			add(&o.Src, "name", "%s: evaluator %q is listed twice", label, o.Name)
		}
		names[o.Name] = true
		if o.Shards.IsZero() {
			add(&o.Src, "shards", "%s: shards are required, such as \"0-31\"", label)
		} else if last := o.Shards.ranges[len(o.Shards.ranges)-1][1]; last >= n.Shards {
			add(&o.Src, "shards", "%s: shard %d is outside 0-%d (nats.shards is %d)", label, last, n.Shards-1, n.Shards)
		}
	}
	if len(b.Evaluators) > 0 {
		var orphans []string
		for s := 0; s < n.Shards; s++ {
			if len(b.Owners(s)) == 0 {
				orphans = append(orphans, strconv.Itoa(s))
			}
		}
		if len(orphans) > 0 {
			var set ShardSet
			set, _ = ParseShardSet(strings.Join(orphans, ","), n.Shards)
			add(&b.Src, "evaluators", "evaluators: shards %s have no evaluator; their checks would never be decided", set)
		}
	}
}

// requireBusSecrets passes the bus credentials to need: every process
// that talks to the bus (agents and evaluators) needs them.
func (c *Config) requireBusSecrets(need func(*Secret)) {
	if c.Bus.NATS != nil {
		need(&c.Bus.NATS.Password)
		need(&c.Bus.NATS.Token)
	}
}

func streamNameRE(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func quoteURL(raw string, fromEnv bool) string {
	if fromEnv {
		return "the value of the environment variable"
	}
	return strconv.Quote(clipName(strings.TrimSpace(raw)))
}

// ForEvaluator returns the part of c that evaluator name decides: c itself
// without a bus, else a copy whose Checks are those of the shards name
// owns (the rest shared with c). It is an error for a bus with an
// evaluators list not to name it.
func (c *Config) ForEvaluator(name string) (*Config, error) {
	if !c.Bus.Enabled() {
		return c, nil
	}
	owned, ok := c.Bus.Owned(name)
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("bus.evaluators assigns shards by evaluator name; start the evaluator with --name (one of %s)", c.Bus.names())
		}
		return nil, fmt.Errorf("evaluator %q owns no shards: bus.evaluators lists %s", name, c.Bus.names())
	}
	view := *c
	view.Checks = make([]*Check, 0, len(c.Checks)*len(owned.List())/c.Bus.NATS.Shards+1)
	for _, ch := range c.Checks {
		if owned.Contains(Shard(ch.ID, c.Bus.NATS.Shards)) {
			view.Checks = append(view.Checks, ch)
		}
	}
	return &view, nil
}

// HasCheck reports whether c declares a check of that id.
func (c *Config) HasCheck(id string) bool {
	return slices.ContainsFunc(c.Checks, func(ch *Check) bool { return ch.ID == id })
}

func (b *Bus) names() string {
	names := make([]string, len(b.Evaluators))
	for i, o := range b.Evaluators {
		names[i] = o.Name
	}
	return strings.Join(names, ", ")
}
