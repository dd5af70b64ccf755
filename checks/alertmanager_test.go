package checks

import (
	"slices"
	"testing"
	"time"
)

func TestAlertmanagerNotifier(t *testing.T) {
	yml := `version: 1
notifiers:
  - name: am
    routes: [critical, warning]
    alertmanager:
      urls: [http://am1.example.com:9093, "https://am.example.com/prefix/"]
      basic_auth: {username: outpost, password: "${API_TOKEN}"}
  - name: am-fast
    alertmanager: {urls: [http://am1.example.com:9093], bearer_token: "${API_TOKEN}", resend: 15s, timeout: 3s}
checks:
  - id: a
    http: {url: "https://example.com/"}
`
	cfg, err := LoadBytes("am.yaml", []byte(yml), mapEnv(fixtureEnv))
	if err != nil {
		t.Fatal(err)
	}
	am := cfg.Notifiers[0].Alertmanager
	if am == nil || !slices.Equal(am.URLs, []string{"http://am1.example.com:9093", "https://am.example.com/prefix/"}) ||
		am.Resend != DefaultAlertmanagerResend || am.Timeout != 0 || am.BasicAuth.Password.Value() != fixtureEnv["API_TOKEN"] {
		t.Errorf("am: %+v", am)
	}
	fast := cfg.Notifiers[1].Alertmanager
	if fast.Resend != 15*time.Second || fast.Timeout != 3*time.Second || fast.BearerToken.Value() != fixtureEnv["API_TOKEN"] {
		t.Errorf("am-fast: %+v", fast)
	}
	if r := cfg.Redactor()("token " + fixtureEnv["API_TOKEN"]); r == "token "+fixtureEnv["API_TOKEN"] {
		t.Errorf("the bearer token is not redacted: %q", r)
	}
}
