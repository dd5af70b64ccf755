package checks

import "testing"

// TestPageKeys: external_url and runbook load as written; Target says
// what each type of check probes, without a URL's user and password.
func TestPageKeys(t *testing.T) {
	t.Parallel()
	cfg, err := LoadBytes("page.yaml", []byte(`version: 1
external_url: https://outpost.example.com/
checks:
  - id: web
    runbook: https://wiki.example.com/runbooks/web
    http: {url: "https://bot:pw@www.example.com/health"}
  - id: steps
    http:
      steps:
        - {name: login, method: POST, url: "https://www.example.com/login"}
        - {name: home, url: "https://www.example.com/"}
  - id: db
    tcp: {address: "db.example.com:5432"}
  - id: cert
    tls: {address: "192.0.2.1:443", server_name: www.example.com}
  - id: www-a
    dns: {name: www.example.com, resolvers: [system, "9.9.9.9:53"]}
  - id: backup
    heartbeat: {every: 24h, token: "${PING_TOKEN}"}
`), mapEnv(map[string]string{"PING_TOKEN": "ping-token-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExternalURL != "https://outpost.example.com/" || cfg.Checks[0].Runbook != "https://wiki.example.com/runbooks/web" || cfg.Checks[1].Runbook != "" {
		t.Errorf("external_url %q, runbooks %q, %q", cfg.ExternalURL, cfg.Checks[0].Runbook, cfg.Checks[1].Runbook)
	}
	for i, want := range []string{
		"GET https://www.example.com/health",
		"POST https://www.example.com/login (+1 more steps)",
		"tcp db.example.com:5432",
		"tls 192.0.2.1:443 (www.example.com)",
		"dns A www.example.com via system, 9.9.9.9:53",
		"",
	} {
		if got := cfg.Checks[i].Target(); got != want {
			t.Errorf("%s: Target() = %q, want %q", cfg.Checks[i].ID, got, want)
		}
	}
}
