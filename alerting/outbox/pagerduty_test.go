package outbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
)

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	down := notifytest.PageDown("outpost:check:web-home")
	h.enqueue(down, "oncall")
	waitFor(t, "the trigger", func() bool { return h.count("oncall", resultDelivered) == 1 })
	h.enqueue(notifytest.ResolveOf(down), "oncall")
	waitFor(t, "the resolve", func() bool { return h.count("oncall", resultDelivered) == 2 })

	if bad := fake.InvalidReasons(); len(bad) > 0 {
		t.Fatalf("the fake refused events: %v", bad)
	}
	evs := fake.Events()
	trig, res := evs[0], evs[1]
	if trig.EventAction != "trigger" || res.EventAction != "resolve" {
		t.Fatalf("actions %q, %q", trig.EventAction, res.EventAction)
	}
	if trig.DedupKey != down.Key || res.DedupKey != down.Key {
		t.Errorf("dedup keys %q, %q, want %q", trig.DedupKey, res.DedupKey, down.Key)
	}
	if trig.RoutingKey != notifytest.RoutingKey || res.RoutingKey != notifytest.RoutingKey {
		t.Errorf("routing keys %q, %q", trig.RoutingKey, res.RoutingKey)
	}
	if res.Payload != nil {
		t.Errorf("resolve carries a payload: %+v", res.Payload)
	}
	if trig.Client != "Outpost" || len(trig.Links) != 1 || trig.Links[0].Href != down.Link {
		t.Errorf("client %q, links %+v", trig.Client, trig.Links)
	}
	pl := trig.Payload
	if pl.Summary != down.Summary || pl.Source != "evaluator-eu" || pl.Severity != "critical" ||
		pl.Component != "web-home" || pl.Group != "web" || pl.Class != "http" || pl.Timestamp != "2030-01-02T12:00:00.000Z" {
		t.Errorf("payload %+v", pl)
	}
	var details struct {
		Check   string                           `json:"check"`
		Quorum  string                           `json:"quorum"`
		Regions map[string]notify.RegionEvidence `json:"regions"`
	}
	if err := json.Unmarshal(pl.CustomDetails, &details); err != nil {
		t.Fatalf("custom_details: %v", err)
	}
	us := details.Regions["us-east"]
	if details.Check != "web-home" || details.Quorum != "2/3" || len(details.Regions) != 3 ||
		us.State != "FAILING" || us.Reason != "status 503, want 200" || us.StatusCode != 503 ||
		us.ConnectedAddr != "203.0.113.10:443" || us.ResolvedIPs[0] != "203.0.113.10" ||
		us.Phases["connect"] != 0.011 || us.DNSAnswers["system"][0] != "203.0.113.10" ||
		details.Regions["eu-west"].Reason != "connect: connection refused" {
		t.Errorf("custom_details %s", pl.CustomDetails)
	}
	if got := h.count("oncall", resultDelivered); got != 2 {
		t.Errorf("delivered = %v, want 2", got)
	}
	if got := h.pendingGauge("oncall"); got != 0 {
		t.Errorf("pending = %v, want 0", got)
	}
}

func TestPagerDutyRetriesThroughOutage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"500", http.StatusInternalServerError}, {"503", http.StatusServiceUnavailable}, {"429", http.StatusTooManyRequests}} {
		t.Run(tc.name, func(t *testing.T) {
			fake := notifytest.NewFakePagerDuty(t)
			fake.FailNext(3, tc.status)
			h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
			h.enqueue(notifytest.PageDown("k1"), "oncall")
			// Each wait is at most 1s, 2s, 4s (or what Retry-After asks):
			// all three within a minute, so one log line.
			for i := 1; i <= 3; i++ {
				h.clock.WaitTimersCreated(t, i, 10*time.Second)
				h.clock.Advance(time.Second << (i - 1))
			}
			waitFor(t, "the page", func() bool { return len(fake.Events()) == 1 })
			// Long after, still exactly one page and no further request.
			h.clock.Advance(24 * time.Hour)
			h.enqueue(notifytest.PageDown("k2"), "oncall") // a later page is not blocked
			waitFor(t, "the second page", func() bool { return h.count("oncall", resultDelivered) == 2 })
			if got := fake.RequestCount(); got != 5 {
				t.Errorf("%d requests, want 3 failed + 2 accepted", got)
			}
			if got := h.count("oncall", resultRetried); got != 3 {
				t.Errorf("retried = %v, want 3", got)
			}
			if got := h.count("oncall", resultDelivered); got != 2 {
				t.Errorf("delivered = %v, want 2", got)
			}
			if logs := h.logs.String(); strings.Count(logs, "will retry") != 1 || !strings.Contains(logs, "status "+tc.name) {
				t.Errorf("want one rate-limited retry line naming the status, got:\n%s", logs)
			}
		})
	}
}

func TestPagerDutyPermanentFailureIsNotRetried(t *testing.T) {
	fake := notifytest.NewFakePagerDuty(t)
	fake.FailNext(1, http.StatusBadRequest)
	h := startPipe(t, t.TempDir(), map[string]notify.Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h.enqueue(notifytest.PageDown("k1"), "oncall")
	// The refusal is counted, then logged: wait for both.
	waitFor(t, "the refusal to be counted and logged", func() bool {
		return h.count("oncall", resultFailed) == 1 && strings.Contains(h.logs.String(), "refused for good")
	})
	h.clock.Advance(time.Hour)
	if got := fake.RequestCount(); got != 1 {
		t.Errorf("%d requests, want 1 (no retry)", got)
	}
	if got := h.clock.TimersCreated(); got != 0 {
		t.Errorf("%d backoff timers, want none", got)
	}
	if got := h.pendingGauge("oncall"); got != 0 {
		t.Errorf("pending = %v, want 0", got)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "refused for good") || !strings.Contains(logs, "status 400") {
		t.Errorf("logs:\n%s", logs)
	}
	// The refused trigger is forgotten: the same trigger later is sent.
	h.enqueue(notifytest.PageDown("k1"), "oncall")
	waitFor(t, "the trigger sent again", func() bool { return h.count("oncall", resultDelivered) == 1 })
	if got := len(fake.Events()); got != 1 {
		t.Errorf("%d events accepted, want 1", got)
	}
}
