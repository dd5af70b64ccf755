package checks

import (
	"slices"
	"strings"
	"testing"
)

const namedAgentsYAML = `version: 1
regions: [us-east, eu-west]
agents:
  - {region: us-east, key: "${K_ANY}"}
  - {region: us-east, name: a, key: "${K_A}"}
  - {region: us-east, name: b, key: "${K_B}"}
  - {region: eu-west, name: c, key: "${K_C}"}
checks:
  - id: home
    http: {url: "https://example.com/"}
`

func TestAgentKeyIsTheAgentsOwn(t *testing.T) {
	t.Parallel()
	env := map[string]string{"K_ANY": "key-any-00001", "K_A": "key-a-0000001", "K_B": "key-b-0000001", "K_C": "key-c-0000001"}
	cfg, err := LoadBytes("agents.yaml", []byte(namedAgentsYAML), mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, region, agent, want string
	}{
		// Its own entry, even listed after the region-only one.
		{"named", "us-east", "b", "key-b-0000001"},
		{"unlisted name takes the region-only key", "us-east", "z", "key-any-00001"},
		{"no name takes the first entry", "us-east", "", "key-any-00001"},
		{"named only region", "eu-west", "c", "key-c-0000001"},
		{"unlisted name in a named-only region", "eu-west", "z", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, ok := cfg.AgentKey(c.region, c.agent)
			if got := k.Value(); ok != (c.want != "") || got != c.want {
				t.Errorf("AgentKey(%q, %q) = %q, %v; want %q", c.region, c.agent, got, ok, c.want)
			}
		})
	}
	// An agent needs only its own key: b's, not a's nor the region-only one.
	delete(env, "K_A")
	delete(env, "K_ANY")
	if _, err := LoadBytesFor("agents.yaml", []byte(namedAgentsYAML), mapEnv(env), AgentNeeds("us-east", "b")); err != nil {
		t.Errorf("agent b without the other keys: %v", err)
	}
	if _, err := LoadBytesFor("agents.yaml", []byte(namedAgentsYAML), mapEnv(env), AgentNeeds("us-east", "z")); err == nil || !strings.Contains(err.Error(), "K_ANY") {
		t.Errorf("agent z without the region-only key: %v, want K_ANY unset", err)
	}
}

func TestWarningsNameRegionOnlyAgents(t *testing.T) {
	t.Parallel()
	env := map[string]string{"K_ANY": "key-any-00001", "K_A": "key-a-0000001", "K_B": "key-b-0000001", "K_C": "key-c-0000001"}
	cfg, err := LoadBytes("agents.yaml", []byte(namedAgentsYAML), mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`agents.yaml:4:5: agents[0]: no name: this key may sign for any agent of region "us-east"; add name: (the agent's --name) so that it signs for that agent only`}
	if got := cfg.Warnings(); !slices.Equal(got, want) {
		t.Errorf("Warnings =\n%q\nwant\n%q", got, want)
	}
}
