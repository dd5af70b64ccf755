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
	for _, want := range []string{"level=WARN", `key=outpost:check:web-home`, "route=critical", "details.quorum=2/3",
		`evidence.us-east="FAILING: status 503, want 200 (status 503, connected 203.0.113.10:443, 120ms)"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page line lacks %s:\n%s", want, page)
		}
	}
	if !strings.Contains(resolve, "level=INFO") || !strings.Contains(resolve, "action="+notify.ActionResolve) {
		t.Errorf("resolve line: %s", resolve)
	}
}
