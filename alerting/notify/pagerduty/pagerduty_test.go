package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
)

func TestPagerDutyClassification(t *testing.T) {
	notifytest.RetryTests(t, "", func(t *testing.T, url string) notify.Notifier { return newTestPagerDuty(t, url) })
	t.Run("timeout", func(t *testing.T) {
		fake := notifytest.NewFakePagerDuty(t)
		fake.SetHang(true)
		pd := pdWithTimeout(t, fake.URL(), 100*time.Millisecond)
		start := time.Now()
		retry, err := pd.Notify(context.Background(), notifytest.PageDown("k"))
		if err == nil || !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Notify = (%v, %v), want a retryable deadline error", retry, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v: the deadline did not hold", took)
		}
	})
	t.Run("2xx with garbage body is delivered", func(t *testing.T) {
		srv := notifytest.NewStatusServer(t, http.StatusAccepted, `not json`)
		if retry, err := newTestPagerDuty(t, srv.URL).Notify(context.Background(), notifytest.PageDown("k")); err != nil || retry {
			t.Errorf("Notify = (%v, %v), want success: the event was accepted", retry, err)
		}
	})
}

func TestPagerDutyEventLimits(t *testing.T) {
	pd := newTestPagerDuty(t, "http://127.0.0.1:1")
	n := notifytest.PageDown(strings.Repeat("k", 400))
	n.Summary = strings.Repeat("é", 800) // 1600 bytes
	ev := pd.event(n)
	if got := ev.Payload.Summary; len(got) > 1024 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("summary of %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if len(ev.DedupKey) > 255 {
		t.Errorf("dedup_key of %d bytes", len(ev.DedupKey))
	}
	other := pd.event(notifytest.PageDown(strings.Repeat("k", 399) + "j"))
	if other.DedupKey == ev.DedupKey {
		t.Error("two long keys map to one dedup_key")
	}
	if again := pd.event(n); again.DedupKey != ev.DedupKey {
		t.Error("dedup_key is not deterministic")
	}
	body, _ := json.Marshal(ev)
	if _, problems := notifytest.ValidateEvent(body); len(problems) > 0 {
		t.Errorf("event invalid: %v", problems)
	}
}

// pdWithTimeout is a PagerDuty notifier with a short attempt timeout.
func pdWithTimeout(t testing.TB, url string, timeout time.Duration) *Notifier {
	t.Helper()
	pd, err := New(&checks.PagerDutyNotifier{RoutingKey: checks.NewSecret(notifytest.RoutingKey), URL: url}, notify.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pd.CloseIdleConnections)
	return pd
}

func newTestPagerDuty(t testing.TB, url string) *Notifier {
	return pdWithTimeout(t, url, 5*time.Second)
}

// TestPagerDutyGroupFitsOneEvent: a storm's page with thousands of checks,
// each with long evidence, stays one valid event under 512 KB: evidence
// shrinks to one line per region, then checks are left out and counted.
func TestPagerDutyGroupFitsOneEvent(t *testing.T) {
	pd := newTestPagerDuty(t, "http://127.0.0.1:1")
	for _, tc := range []struct {
		members     int
		wantFull    bool
		wantOmitted bool
		reasonBytes int
	}{
		{members: 10, wantFull: true, reasonBytes: 100},
		{members: 300, reasonBytes: 900},
		{members: notify.MaxMembers, wantOmitted: true, reasonBytes: 1000},
	} {
		n := notify.Notification{Kind: notify.KindStorm, Key: "outpost:storm:critical", Action: notify.ActionTrigger,
			Route: notify.RouteCritical, Summary: "storm", Time: notifytest.T0}
		base := notifytest.PageDown("k").Evidence
		for i := range tc.members {
			ev := append([]notify.RegionEvidence(nil), base...)
			for j := range ev {
				ev[j].Reason = strings.Repeat("r", tc.reasonBytes)
			}
			n.Members = append(n.Members, notify.Member{Key: fmt.Sprint("k", i), Check: fmt.Sprint("check-", i),
				Kind: "check_down", State: notify.MemberFiring, Summary: "down", Evidence: ev})
		}
		body, err := json.Marshal(pd.event(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > 512<<10 {
			t.Errorf("%d members: event of %d bytes", tc.members, len(body))
		}
		if _, problems := notifytest.ValidateEvent(body); len(problems) > 0 {
			t.Errorf("%d members: invalid event: %v", tc.members, problems)
		}
		var ev struct {
			Payload struct {
				CustomDetails struct {
					Checks []struct {
						Regions json.RawMessage `json:"regions"`
					} `json:"checks"`
					Omitted int `json:"checks_omitted"`
				} `json:"custom_details"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		d := ev.Payload.CustomDetails
		full := len(d.Checks) > 0 && strings.Contains(string(d.Checks[0].Regions), `"phases_seconds"`)
		if full != tc.wantFull || (d.Omitted > 0) != tc.wantOmitted || len(d.Checks)+d.Omitted != tc.members {
			t.Errorf("%d members: full evidence %v, %d listed, %d omitted", tc.members, full, len(d.Checks), d.Omitted)
		}
	}
}

// TestPagerDutyEventCarriesLinksAndEvidence: a trigger links the check's
// status page and its runbook, names the evaluator as source, the group,
// the target, and each region's evidence under its own name with its
// probe time and age; a resolve is only the dedup key.
func TestPagerDutyEventCarriesLinksAndEvidence(t *testing.T) {
	pd := newTestPagerDuty(t, "http://127.0.0.1:1")
	n := notifytest.PageDown("outpost:web-home:down")
	n.Runbook = "https://runbooks.example.com/web-home"
	body, _ := json.Marshal(pd.event(n))
	ev, problems := notifytest.ValidateEvent(body)
	if len(problems) > 0 {
		t.Fatalf("invalid event: %v", problems)
	}
	if ev.Client != "Outpost" || ev.ClientURL != n.Link || len(ev.Links) != 2 || ev.Links[0].Href != n.Link || ev.Links[1].Href != n.Runbook {
		t.Errorf("client %q, client_url %q, links %+v", ev.Client, ev.ClientURL, ev.Links)
	}
	if p := ev.Payload; p.Source != n.Source || p.Group != n.Group || p.Severity != "critical" || p.Component != n.Check {
		t.Errorf("payload %+v", p)
	}
	var d struct {
		Target  string                           `json:"target"`
		Runbook string                           `json:"runbook"`
		Regions map[string]notify.RegionEvidence `json:"regions"`
	}
	if err := json.Unmarshal(ev.Payload.CustomDetails, &d); err != nil {
		t.Fatal(err)
	}
	if d.Target != n.Target || d.Runbook != n.Runbook || len(d.Regions) != len(n.Evidence) {
		t.Errorf("custom_details: %s", ev.Payload.CustomDetails)
	}
	for _, want := range n.Evidence {
		got := d.Regions[want.Region]
		if got.Region != want.Region || got.State != want.State || !got.ProbedAt.Equal(want.ProbedAt) || got.AgeSeconds == nil || *got.AgeSeconds != *want.AgeSeconds {
			t.Errorf("regions[%s] = %+v, want %+v", want.Region, got, want)
		}
	}

	body, _ = json.Marshal(pd.event(notifytest.ResolveOf(n)))
	var resolve map[string]any
	if err := json.Unmarshal(body, &resolve); err != nil {
		t.Fatal(err)
	}
	if len(resolve) != 3 || resolve["event_action"] != "resolve" || resolve["dedup_key"] != n.Key {
		t.Errorf("resolve event %s, want routing_key, event_action and dedup_key only", body)
	}
}
