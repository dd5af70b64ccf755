package checks

import (
	"slices"
	"strings"
	"testing"
)

// rolesYAML is one configuration for every role, with a secret of each kind.
const rolesYAML = `regions: [us-east, eu-west]
agents:
  - region: us-east
    key: ${OUTPOST_KEY_US_EAST}
  - region: eu-west
    key: ${OUTPOST_KEY_EU_WEST}
notifiers:
  - name: oncall
    pagerduty:
      routing_key: ${PAGERDUTY_ROUTING_KEY}
    routes: [critical, meta]
  - name: chat
    slack:
      webhook_url: ${SLACK_WEBHOOK}
  - name: log
    console: {}
checks:
  - id: home
    http: {url: https://example.com/}
  - id: eu-api
    regions: [eu-west]
    http:
      url: https://eu.example.com/
      bearer_token: ${API_TOKEN}
  - id: backup
    heartbeat:
      every: 24h
      token: ${BACKUP_PING_TOKEN}
  - id: other
    heartbeat:
      every: 24h
      token: ${OTHER_PING_TOKEN}
`

func unset(name string) string {
	return "environment variable " + name + " is not set (use ${" + name + ":-default} to give a default)"
}

func TestEachRoleNeedsOnlyItsSecrets(t *testing.T) {
	t.Parallel()
	all := map[string]string{
		"OUTPOST_KEY_US_EAST": "key-us-east-0001", "OUTPOST_KEY_EU_WEST": "key-eu-west-0001",
		"PAGERDUTY_ROUTING_KEY": "pd-routing-key-0001", "SLACK_WEBHOOK": "https://hooks.slack.example/services/T0",
		"API_TOKEN": "api-token-0001", "BACKUP_PING_TOKEN": "backup-ping-token-0001", "OTHER_PING_TOKEN": "other-ping-token-0001",
	}
	only := func(names ...string) map[string]string {
		m := map[string]string{}
		for _, n := range names {
			m[n] = all[n]
		}
		return m
	}
	var (
		usKey   = `test.yaml:4:10: agents[0].key: ` + unset("OUTPOST_KEY_US_EAST")
		euKey   = `test.yaml:6:10: agents[1].key: ` + unset("OUTPOST_KEY_EU_WEST")
		pd      = `test.yaml:10:20: notifiers[0].pagerduty.routing_key: ` + unset("PAGERDUTY_ROUTING_KEY")
		slack   = `test.yaml:14:20: notifiers[1].slack.webhook_url: ` + unset("SLACK_WEBHOOK")
		api     = `test.yaml:24:21: check "eu-api": http.bearer_token: ` + unset("API_TOKEN")
		backup  = `test.yaml:28:14: check "backup": heartbeat.token: ` + unset("BACKUP_PING_TOKEN")
		other   = `test.yaml:32:14: check "other": heartbeat.token: ` + unset("OTHER_PING_TOKEN")
		allKeys = []string{"OUTPOST_KEY_US_EAST", "OUTPOST_KEY_EU_WEST"}
	)
	tests := []struct {
		name  string
		needs Needs
		env   map[string]string
		want  []string // errors, in file order; none: the load succeeds
	}{
		{"validate needs everything", AllSecrets(), only("OUTPOST_KEY_US_EAST"),
			[]string{euKey, pd, slack, api, backup, other}},
		{"validate with everything", AllSecrets(), all, nil},
		{"agent with only its own key", AgentNeeds("us-east", ""), only("OUTPOST_KEY_US_EAST"), nil},
		{"agent without its own key", AgentNeeds("us-east", ""), only("OUTPOST_KEY_EU_WEST"), []string{usKey}},
		{"agent needs its checks' credentials", AgentNeeds("eu-west", "a"), only("OUTPOST_KEY_EU_WEST"), []string{api}},
		{"agent of the other region", AgentNeeds("eu-west", "a"), only("OUTPOST_KEY_EU_WEST", "API_TOKEN"), nil},
		{"evaluator without the notifiers' secrets", EvaluatorNeeds(),
			only(append(allKeys, "BACKUP_PING_TOKEN", "OTHER_PING_TOKEN")...), []string{pd, slack}},
		{"evaluator without an agent key", EvaluatorNeeds(),
			only("OUTPOST_KEY_EU_WEST", "PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK", "BACKUP_PING_TOKEN", "OTHER_PING_TOKEN"), []string{usKey}},
		{"evaluator without a heartbeat token", EvaluatorNeeds(),
			only(append(allKeys, "PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK", "BACKUP_PING_TOKEN")...), []string{other}},
		{"evaluator does not probe", EvaluatorNeeds(),
			only(append(allKeys, "PAGERDUTY_ROUTING_KEY", "SLACK_WEBHOOK", "BACKUP_PING_TOKEN", "OTHER_PING_TOKEN")...), nil},
		{"nothing needed", Needs{}, nil, nil},
		{"union", AgentNeeds("us-east", "").Union(Needs{Notifiers: true}), only("OUTPOST_KEY_US_EAST"), []string{pd, slack}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := LoadBytesFor("test.yaml", []byte(rolesYAML), mapEnv(tc.env), tc.needs)
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err == nil && cfg == nil {
				t.Fatal("no config and no error")
			}
		})
	}
}

func TestMissingSecretsAreKnownButNotErrors(t *testing.T) {
	t.Parallel()
	cfg, err := LoadBytesFor("test.yaml", []byte(rolesYAML), mapEnv(map[string]string{"OUTPOST_KEY_US_EAST": "key-us-east-0001"}), AgentNeeds("us-east", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.MissingNotifiers(); !slices.Equal(got, []string{"oncall", "chat"}) {
		t.Errorf("MissingNotifiers = %v, want [oncall chat]", got)
	}
	if k := cfg.Agents[1].Key; !k.Missing() || k.IsZero() || k.Value() != "" {
		t.Errorf("the other region's key: missing %v, zero %v", k.Missing(), k.IsZero())
	}
	if k, ok := cfg.AgentKey("us-east", ""); !ok || k.Missing() || k.Value() != "key-us-east-0001" {
		t.Errorf("own key: %v %v", ok, k.Missing())
	}
	// What "outpost check --only eu-api" asks once it knows the check.
	err = cfg.RequireSecrets(Needs{Checks: func(c *Check) bool { return c.ID == "eu-api" }})
	if want := `test.yaml:24:21: check "eu-api": http.bearer_token: ` + unset("API_TOKEN"); err == nil || err.Error() != want {
		t.Errorf("RequireSecrets = %v, want %s", err, want)
	}
	if err := cfg.RequireSecrets(Needs{Checks: func(c *Check) bool { return c.ID == "home" }}); err != nil {
		t.Errorf("RequireSecrets for a check without secrets: %v", err)
	}
}
