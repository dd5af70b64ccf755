package console

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// TestConsoleLogsOneLinePerNotification: a page is one warning line with
// its key, route, details and each region's evidence; a resolve is info.
func TestConsoleLogsOneLinePerNotification(t *testing.T) {
	var logs notifytest.LogBuffer
	c := New(slog.New(slog.NewTextHandler(&logs, nil)))
	down := notifytest.PageDown("outpost:check:web-home")
	down.Runbook = "https://runbooks.example.com/web-home"
	if retry, err := c.Notify(context.Background(), down); retry || err != nil {
		t.Fatalf("Notify = (%v, %v), want (false, nil): the console never fails", retry, err)
	}
	if _, err := c.Notify(context.Background(), notifytest.ResolveOf(down)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per notification:\n%s", len(lines), logs.String())
	}
	page, resolve := lines[0], lines[1]
	for _, want := range []string{"level=WARN", "severity=critical", `key=outpost:check:web-home`, "route=critical", "details.quorum=2/3",
		"source=evaluator-eu", "group=web", `target="GET https://www.example.com/"`, "runbook=https://runbooks.example.com/web-home",
		`evidence.us-east="FAILING: status 503, want 200 (status 503, connected 203.0.113.10:443, 120ms, probed 3s ago); system=[203.0.113.10]"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page line lacks %s:\n%s", want, page)
		}
	}
	// A resolve is good news: INFO, whatever the severity of what it ends.
	for _, want := range []string{"level=INFO", "severity=info", "action=" + notify.ActionResolve, "resolved after 10m0s"} {
		if !strings.Contains(resolve, want) {
			t.Errorf("resolve line lacks %s:\n%s", want, resolve)
		}
	}
	resolveCritical := notifytest.ResolveOf(down)
	resolveCritical.Severity = notify.SeverityCritical // as a producer may leave it
	var more notifytest.LogBuffer
	if _, err := New(slog.New(slog.NewTextHandler(&more, nil))).Notify(context.Background(), resolveCritical); err != nil {
		t.Fatal(err)
	}
	if line := more.String(); !strings.Contains(line, "level=INFO") || !strings.Contains(line, "severity=info") {
		t.Errorf("a resolve marked critical: %s", line)
	}
}
