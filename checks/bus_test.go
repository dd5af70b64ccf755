package checks

import (
	"strings"
	"testing"
)

func TestShardIsFNV1a(t *testing.T) {
	// Fixed vectors: agents and evaluators of every version must agree on
	// where a check lives, so these never change.
	for _, tc := range []struct {
		id     string
		shards int
		want   int
	}{
		{"", 64, int(uint32(2166136261) % 64)},
		{"a", 1 << 30, int(uint32(0xe40c292c) % (1 << 30))},
		{"foobar", 1 << 30, int(uint32(0xbf9cf968) % (1 << 30))},
		{"web-home", 1, 0},
	} {
		if got := Shard(tc.id, tc.shards); got != tc.want {
			t.Errorf("Shard(%q, %d) = %d, want %d", tc.id, tc.shards, got, tc.want)
		}
	}
}

func TestParseShardSet(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "0-31", want: "0-31"},
		{in: "7", want: "7"},
		{in: "32-47, 0-15", want: "0-15,32-47"},
		{in: "0-3,4-7,6", want: "0-7"},
		{in: "", err: "no shards"},
		{in: "3-1", err: "runs backwards"},
		{in: "0-64", err: "outside 0-63"},
		{in: "a-b", err: "not a shard"},
		{in: "-1", err: "not a shard"},
	} {
		got, err := ParseShardSet(tc.in, 64)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseShardSet(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseShardSet(%q): %v", tc.in, err)
		case got.String() != tc.want:
			t.Errorf("ParseShardSet(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	s, _ := ParseShardSet("0-2,10", 64)
	if !s.Contains(2) || s.Contains(3) || !s.Contains(10) || len(s.List()) != 4 {
		t.Errorf("set %s: Contains/List wrong: %v", s, s.List())
	}
}

const busHead = `
version: 1
regions: [us, eu]
checks:
  - id: x
    http: {url: "http://127.0.0.1:1/"}
`

func TestBusDefaultsAndOwners(t *testing.T) {
	cfg := mustLoad(t, busHead+`
bus:
  nats: {url: "nats://127.0.0.1:4222", token: "${TOK}"}
  evaluators:
    - {name: a1, shards: "0-31"}
    - {name: a2, shards: "0-31"}
    - {name: b1, shards: 32-63}
`, map[string]string{"TOK": "s3cret"})
	n := cfg.Bus.NATS
	if !cfg.Bus.Enabled() || n.Shards != DefaultShards || n.Stream != DefaultBusStream || n.Replicas != 1 ||
		n.Retention != DefaultBusRetention || n.Duplicates != DefaultBusDuplicates || n.MaxBytes != DefaultBusMaxBytes {
		t.Errorf("defaults not applied: %+v", n)
	}
	if got := cfg.Bus.Owners(5); strings.Join(got, ",") != "a1,a2" {
		t.Errorf("Owners(5) = %v", got)
	}
	if s, ok := cfg.Bus.Owned("b1"); !ok || s.String() != "32-63" {
		t.Errorf("Owned(b1) = %s, %v", s, ok)
	}
	if _, ok := cfg.Bus.Owned("nobody"); ok {
		t.Error("an unlisted evaluator owns shards")
	}
	if n.Token.Value() != "s3cret" {
		t.Error("token not read from the environment")
	}

	plain := mustLoad(t, busHead, nil)
	if plain.Bus.Enabled() {
		t.Error("a config without bus: has a bus")
	}
	all := mustLoad(t, busHead+"bus: {nats: {url: nats://h:4222, shards: 8}}\n", nil)
	if s, ok := all.Bus.Owned("anyone"); !ok || s.String() != "0-7" {
		t.Errorf("without evaluators every evaluator owns every shard; got %s, %v", s, ok)
	}
}

func TestBusRefusals(t *testing.T) {
	for _, tc := range []struct{ bus, want string }{
		{`bus: {evaluators: [{name: a, shards: "0-63"}]}`, "bus.evaluators: shards need a bus"},
		{`bus: {nats: {shards: 8}}`, "bus.nats.url is required"},
		{`bus: {nats: {url: "http://h:4222"}}`, `is not a nats://`},
		{`bus: {nats: {url: "nats://u:p@h:4222"}}`, "credentials in the URL"},
		{`bus: {nats: {url: "nats://h", token: "${T}", creds_file: /x}}`, "use one of user/password"},
		{`bus: {nats: {url: "nats://h", user: u}}`, "user and password go together"},
		{`bus: {nats: {url: "nats://h", shards: 0}}`, "shards 0 must be between 1 and 1024"},
		{`bus: {nats: {url: "nats://h", replicas: 2}}`, "want 1, 3 or 5"},
		{`bus: {nats: {url: "nats://h", stream: "a.b"}}`, `nats.stream "a.b"`},
		{`bus: {nats: {url: "nats://h", shards: 8}, evaluators: [{name: a, shards: "0-6"}]}`, "shards 7 have no evaluator"},
		{`bus: {nats: {url: "nats://h", shards: 8}, evaluators: [{name: a, shards: "0-8"}]}`, "shard 8 is outside 0-7"},
		{`bus: {nats: {url: "nats://h", shards: 8}, evaluators: [{name: a, shards: "0-7"}, {name: a, shards: "0-7"}]}`, `evaluator "a" is listed twice`},
		{`bus: {nats: {url: "nats://h", shards: 8}, evaluators: [{name: a, shards: "x"}]}`, `"x" is not a shard`},
	} {
		_, err := loadString(t, busHead+tc.bus+"\n", map[string]string{"T": "t"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got error %v\nwant one containing %q", tc.bus, err, tc.want)
		}
	}
}

func TestBusSecretsNeededByAgentsAndEvaluators(t *testing.T) {
	yaml := busHead + `bus: {nats: {url: "nats://h", user: outpost, password: "${NATS_PASSWORD}"}}` + "\n"
	cfg, err := LoadBytesFor("test.yaml", []byte(yaml), mapEnv(nil), Needs{})
	if err != nil {
		t.Fatalf("a process that needs no bus failed on its unset password: %v", err)
	}
	for name, needs := range map[string]Needs{"agent": AgentNeeds("us", ""), "evaluator": EvaluatorNeeds()} {
		if err := cfg.RequireSecrets(needs); err == nil || !strings.Contains(err.Error(), "NATS_PASSWORD") {
			t.Errorf("%s: unset bus password not reported: %v", name, err)
		}
	}
}

func TestForEvaluatorSplitsChecksByShard(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nregions: [us]\nchecks:\n")
	for i := range 40 {
		b.WriteString("  - {id: c" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ", http: {url: \"http://127.0.0.1:1/\"}}\n")
	}
	b.WriteString(`bus:
  nats: {url: "nats://h", shards: 4}
  evaluators:
    - {name: a1, shards: "0-1"}
    - {name: a2, shards: "0-1"}
    - {name: b1, shards: "2-3"}
`)
	cfg := mustLoad(t, b.String(), nil)
	a, err := cfg.ForEvaluator("a1")
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := cfg.ForEvaluator("b1")
	if len(a.Checks)+len(bb.Checks) != 40 || len(a.Checks) == 0 || len(bb.Checks) == 0 {
		t.Fatalf("a1 has %d checks and b1 %d, want a split of 40", len(a.Checks), len(bb.Checks))
	}
	for _, c := range a.Checks {
		if s := Shard(c.ID, 4); s > 1 {
			t.Errorf("a1 got %s of shard %d", c.ID, s)
		}
	}
	if a2, _ := cfg.ForEvaluator("a2"); len(a2.Checks) != len(a.Checks) {
		t.Error("the HA pair a1/a2 does not hold the same checks")
	}
	if len(cfg.Checks) != 40 {
		t.Error("ForEvaluator changed the full configuration")
	}
	if _, err := cfg.ForEvaluator("zz"); err == nil || !strings.Contains(err.Error(), "a1, a2, b1") {
		t.Errorf("an unlisted evaluator: %v", err)
	}
	if _, err := cfg.ForEvaluator(""); err == nil || !strings.Contains(err.Error(), "--name") {
		t.Errorf("no name: %v", err)
	}
}
