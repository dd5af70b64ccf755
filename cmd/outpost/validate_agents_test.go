package main

import (
	"strings"
	"testing"
)

// TestValidateWarnsAboutRegionOnlyAgents: an agents: entry without a name
// is valid (exit 0) but warned about, with its position; named entries
// are not.
func TestValidateWarnsAboutRegionOnlyAgents(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "agents.yaml", `regions: [us-east]
agents:
  - {region: us-east, name: a, key: "${K_A}"}
  - {region: us-east, key: "${K_ANY}"}
checks:
  - id: a
    tcp: {address: '127.0.0.1:1'}
`)
	code, out, errOut := runCLI(t, map[string]string{"K_A": "key-a-00000001", "K_ANY": "key-any-000001"}, "validate", "-c", cfg)
	want := "warning: " + cfg + `:4:5: agents[1]: no name: this key may sign for any agent of region "us-east"; add name: (the agent's --name) so that it signs for that agent only`
	if code != exitOK || !strings.Contains(out, "ok: 1 check(s)") || strings.TrimSpace(errOut) != want {
		t.Errorf("code %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}
}
