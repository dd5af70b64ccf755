package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

// TestAgentPageNamesWhatIsUnreachable: an agent that POSTs pages that the
// evaluators are unreachable; one that publishes to a bus cannot see the
// evaluators at all, and pages that the bus is. Either way one key per
// agent, so its resolve ends its own page.
func TestAgentPageNamesWhatIsUnreachable(t *testing.T) {
	since := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		bus, trigger, resolve string
	}{
		{"", "evaluators unreachable from eu-west (agent a1) since 12:00:00: results are spooled, nobody is deciding on them",
			"an evaluator answers eu-west (agent a1) again"},
		{"the bus (NATS)", "the bus (NATS) unreachable from eu-west (agent a1) since 12:00:00: results are spooled, no evaluator gets them",
			"the bus (NATS) takes the results of eu-west (agent a1) again"},
	} {
		rec := &notifytest.Recorder{}
		p := notify.AgentPager{Notifier: rec, Region: "eu-west", Agent: "a1", Bus: tc.bus}
		p.PageEvaluators(context.Background(), true, since, since.Add(5*time.Minute))
		p.PageEvaluators(context.Background(), false, since, since.Add(6*time.Minute))
		got := rec.Delivered()
		if len(got) != 2 {
			t.Fatalf("bus %q: %d notifications, want 2", tc.bus, len(got))
		}
		if got[0].Action != notify.ActionTrigger || got[0].Summary != tc.trigger {
			t.Errorf("bus %q: trigger %q %q, want %q", tc.bus, got[0].Action, got[0].Summary, tc.trigger)
		}
		if got[1].Action != notify.ActionResolve || got[1].Summary != tc.resolve {
			t.Errorf("bus %q: resolve %q %q, want %q", tc.bus, got[1].Action, got[1].Summary, tc.resolve)
		}
		if key := notify.EvaluatorsLostKey("eu-west", "a1"); got[0].Key != key || got[1].Key != key || !strings.Contains(key, "a1") {
			t.Errorf("bus %q: keys %q and %q, want %q", tc.bus, got[0].Key, got[1].Key, key)
		}
	}
}
