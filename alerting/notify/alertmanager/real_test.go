package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// alertmanagerPath finds Debian's prometheus-alertmanager (or an upstream
// alertmanager on PATH); the test skips without it, except in CI.
func alertmanagerPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("prometheus-alertmanager not found: CI must install it (apt-get install prometheus-alertmanager)")
	}
	t.Skip("prometheus-alertmanager not found; install it (apt-get install prometheus-alertmanager) to run the test against a real Alertmanager")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAlertmanager runs a real Alertmanager, clustering off, with a
// configuration that routes everything nowhere, and returns its base URL
// once it is ready.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := alertmanagerPath(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
		logs := &notifytest.LogBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		base := "http://" + addr
		ready := false
		clocktest.WaitFor(t, 30*time.Second, "alertmanager to be ready", func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			resp, err := http.Get(base + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
			return ready
		})
		if !ready {
			cancel()
			if attempt < 3 {
				continue // the port was taken meanwhile
			}
			t.Fatalf("alertmanager exited:\n%s", logs.String())
		}
		t.Cleanup(func() {
			cancel()
			<-exited
			if t.Failed() {
				t.Logf("alertmanager output:\n%s", logs.String())
			}
		})
		return base
	}
}

// gotAlert is what GET /api/v2/alerts shows of an alert.
type gotAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Status       struct {
		State string `json:"state"`
	} `json:"status"`
}

// activeAlerts returns the active alerts of the Alertmanager at base with
// dedup key key.
func activeAlerts(t *testing.T, base, key string) []gotAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?filter=" + `dedup_key%3D%22` + key + `%22`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []gotAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRealAlertmanager sends Outpost's incidents to two real
// Alertmanagers and checks what their API shows: the labels and
// annotations of the alert, that it stays active past its endsAt thanks
// to the re-sends (and does not without them), that a change of failing
// regions leaves one alert, and that a resolve ends it, also from a
// notifier that did not fire it (after a restart).
func TestRealAlertmanager(t *testing.T) {
	am1, am2 := startAlertmanager(t), startAlertmanager(t)
	const resend = time.Second
	labels := func(check string) map[string]string {
		if check == "web-home" {
			return map[string]string{"service": "web", "team": "edge", "severity": "ignored-clash"}
		}
		return nil
	}
	build := func(resend time.Duration) *Notifier {
		n, err := New(&checks.AlertmanagerNotifier{URLs: []string{am1, am2 + "/"}, Resend: resend}, notify.Options{Timeout: 5 * time.Second}, Env{Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.CloseIdleConnections)
		return n
	}
	n := build(resend)
	down := notifytest.PageDown("outpost-web-home-down")
	down.Runbook = "https://runbooks.example.com/web-home"
	down.Time = time.Now().Add(-time.Minute).Truncate(time.Second)
	if retry, err := n.Notify(context.Background(), down); err != nil {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}

	var first gotAlert
	for _, base := range []string{am1, am2} {
		var got []gotAlert
		clocktest.WaitFor(t, 10*time.Second, "the alert in "+base, func() bool {
			got = activeAlerts(t, base, down.Key)
			return len(got) == 1
		})
		a := got[0]
		want := map[string]string{
			"alertname": "OutpostCheckDown", "check": "web-home", "severity": "critical", "kind": "check_down",
			"route": "critical", "regions": "eu-west,us-east", "dedup_key": down.Key,
			"service": "web", "team": "edge", "exported_severity": "ignored-clash",
		}
		for k, v := range want {
			if a.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q (labels %v)", base, k, a.Labels[k], v, a.Labels)
			}
		}
		if len(a.Labels) != len(want) {
			t.Errorf("%s: labels %v, want %v", base, a.Labels, want)
		}
		for k, v := range map[string]string{
			"summary":           down.Summary,
			"evidence_us_east":  notify.EvidenceLine(down.Evidence[0]),
			"evidence_eu_west":  notify.EvidenceLine(down.Evidence[1]),
			"evidence_ap_south": notify.EvidenceLine(down.Evidence[2]),
			"runbook_url":       down.Runbook,
			"status_url":        down.Link,
			"target":            down.Target,
		} {
			if a.Annotations[k] != v {
				t.Errorf("%s: annotation %s = %q, want %q", base, k, a.Annotations[k], v)
			}
		}
		if a.Status.State != "active" || a.GeneratorURL != down.Link || !a.StartsAt.Equal(down.Time) {
			t.Errorf("%s: state %q, generatorURL %q, startsAt %s", base, a.Status.State, a.GeneratorURL, a.StartsAt)
		}
		first = a
	}

	// Past the endsAt of the first post, the alert is still active:
	// re-sent, with a later endsAt.
	clocktest.WaitFor(t, 30*time.Second, "the first endsAt to pass with the alert active", func() bool {
		got := activeAlerts(t, am1, down.Key)
		return time.Now().After(first.EndsAt.Add(resend)) && len(got) == 1 && got[0].EndsAt.After(first.EndsAt) && got[0].Status.State == "active"
	})

	// Without re-sends (a notifier closed after its post) an alert ends
	// at its endsAt: what the re-sends prevent.
	quiet := build(resend)
	other := notifytest.PageDown("outpost-api-down")
	other.Check = "api"
	if _, err := quiet.Notify(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	quiet.CloseIdleConnections()
	clocktest.WaitFor(t, 10*time.Second, "the unrefreshed alert to show", func() bool { return len(activeAlerts(t, am1, other.Key)) == 1 })
	clocktest.WaitFor(t, 30*time.Second, "the unrefreshed alert to end", func() bool { return len(activeAlerts(t, am1, other.Key)) == 0 })
	clocktest.WaitFor(t, 10*time.Second, "the re-sent alert to be active", func() bool { return len(activeAlerts(t, am1, down.Key)) == 1 })

	// A third region fails: the alert of the old set ends, one remains.
	worse := down
	worse.Evidence = append([]notify.RegionEvidence(nil), down.Evidence...)
	worse.Evidence[2].State = notify.StateFailing
	if _, err := n.Notify(context.Background(), worse); err != nil {
		t.Fatal(err)
	}
	clocktest.WaitFor(t, 10*time.Second, "one alert with three regions", func() bool {
		got := activeAlerts(t, am1, down.Key)
		return len(got) == 1 && got[0].Labels["regions"] == "ap-south,eu-west,us-east" && got[0].StartsAt.Equal(down.Time)
	})

	// The resolve ends it in both.
	if _, err := n.Notify(context.Background(), notifytest.ResolveOf(down)); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{am1, am2} {
		clocktest.WaitFor(t, 10*time.Second, "the alert to be resolved in "+base, func() bool { return len(activeAlerts(t, base, down.Key)) == 0 })
	}
	if n.Firing() != 0 {
		t.Errorf("%d alerts still re-sent after the resolve", n.Firing())
	}

	// After a restart: a notifier that never fired the alert resolves it,
	// whatever failing regions it was fired with, long before the
	// alert's endsAt (4 minutes away with a resend of 1m).
	n.CloseIdleConnections()
	before := build(time.Minute)
	again := notifytest.PageDown("outpost-db-down")
	again.Check = "db"
	if _, err := before.Notify(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	clocktest.WaitFor(t, 10*time.Second, "the db alert", func() bool { return len(activeAlerts(t, am2, again.Key)) == 1 })
	before.CloseIdleConnections()
	restarted := build(time.Minute)
	resolve := notifytest.ResolveOf(again)
	resolve.Details = map[string]string{"opened_at": again.Time.Format(time.RFC3339)}
	if _, err := restarted.Notify(context.Background(), resolve); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{am1, am2} {
		clocktest.WaitFor(t, 10*time.Second, "the db alert to be resolved in "+base, func() bool { return len(activeAlerts(t, base, again.Key)) == 0 })
	}
}
