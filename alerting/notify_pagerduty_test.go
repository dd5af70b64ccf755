package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outposthq/outpost/checks"
)

func TestPagerDutyTriggerAndResolve(t *testing.T) {
	fake := newFakePagerDuty(t)
	h := startPipe(t, t.TempDir(), map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	down := pageDown("outpost:check:web-home")
	h.enqueue(down, "oncall")
	waitFor(t, "the trigger", func() bool { return h.count("oncall", resultDelivered) == 1 })
	h.enqueue(resolveOf(down), "oncall")
	waitFor(t, "the resolve", func() bool { return h.count("oncall", resultDelivered) == 2 })

	if bad := fake.invalidReasons(); len(bad) > 0 {
		t.Fatalf("the fake refused events: %v", bad)
	}
	evs := fake.events()
	trig, res := evs[0], evs[1]
	if trig.EventAction != "trigger" || res.EventAction != "resolve" {
		t.Fatalf("actions %q, %q", trig.EventAction, res.EventAction)
	}
	if trig.DedupKey != down.Key || res.DedupKey != down.Key {
		t.Errorf("dedup keys %q, %q, want %q", trig.DedupKey, res.DedupKey, down.Key)
	}
	if trig.RoutingKey != testRoutingKey || res.RoutingKey != testRoutingKey {
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
		Check   string                    `json:"check"`
		Quorum  string                    `json:"quorum"`
		Regions map[string]RegionEvidence `json:"regions"`
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
			fake := newFakePagerDuty(t)
			fake.failNext(3, tc.status)
			h := startPipe(t, t.TempDir(), map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
			h.enqueue(pageDown("k1"), "oncall")
			// Each wait is at most 1s, 2s, 4s (or what Retry-After asks):
			// all three within a minute, so one log line.
			for i := 1; i <= 3; i++ {
				h.clock.WaitTimersCreated(t, i, 10*time.Second)
				h.clock.Advance(time.Second << (i - 1))
			}
			waitFor(t, "the page", func() bool { return len(fake.events()) == 1 })
			// Long after, still exactly one page and no further request.
			h.clock.Advance(24 * time.Hour)
			h.enqueue(pageDown("k2"), "oncall") // a later page is not blocked
			waitFor(t, "the second page", func() bool { return h.count("oncall", resultDelivered) == 2 })
			if got := fake.requestCount(); got != 5 {
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
	fake := newFakePagerDuty(t)
	fake.failNext(1, http.StatusBadRequest)
	h := startPipe(t, t.TempDir(), map[string]Notifier{"oncall": newTestPagerDuty(t, fake.URL())})
	h.enqueue(pageDown("k1"), "oncall")
	waitFor(t, "the refusal to be counted", func() bool { return h.count("oncall", resultFailed) == 1 })
	h.clock.Advance(time.Hour)
	if got := fake.requestCount(); got != 1 {
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
	h.enqueue(pageDown("k1"), "oncall")
	waitFor(t, "the trigger sent again", func() bool { return h.count("oncall", resultDelivered) == 1 })
	if got := len(fake.events()); got != 1 {
		t.Errorf("%d events accepted, want 1", got)
	}
}

func TestPagerDutyClassification(t *testing.T) {
	cases := []struct {
		status int
		ok     bool
		retry  bool
	}{
		{http.StatusAccepted, true, false},
		{http.StatusOK, true, false},
		{http.StatusBadRequest, false, false},
		{http.StatusUnauthorized, false, false},
		{http.StatusForbidden, false, false},
		{http.StatusNotFound, false, false},
		{http.StatusMovedPermanently, false, false},
		{http.StatusRequestTimeout, false, true},
		{http.StatusTooManyRequests, false, true},
		{http.StatusInternalServerError, false, true},
		{http.StatusBadGateway, false, true},
		{http.StatusServiceUnavailable, false, true},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := statusServer(t, tc.status, `{"status":"x","message":"y"}`)
			retry, err := newTestPagerDuty(t, srv.URL).Notify(context.Background(), pageDown("k"))
			if (err == nil) != tc.ok || retry != tc.retry {
				t.Errorf("Notify = (%v, %v), want ok=%v retry=%v", retry, err, tc.ok, tc.retry)
			}
			var de *DeliveryError
			if err != nil && (!errors.As(err, &de) || de.StatusCode != tc.status) {
				t.Errorf("error %v is not a DeliveryError with status %d", err, tc.status)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		retry, err := newTestPagerDuty(t, "http://"+closedAddr(t)).Notify(context.Background(), pageDown("k"))
		if err == nil || !retry {
			t.Errorf("Notify = (%v, %v), want a retryable error", retry, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		fake := newFakePagerDuty(t)
		fake.setHang(true)
		pd := pdWithTimeout(t, fake.URL(), 100*time.Millisecond)
		start := time.Now()
		retry, err := pd.Notify(context.Background(), pageDown("k"))
		if err == nil || !retry || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Notify = (%v, %v), want a retryable deadline error", retry, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v: the deadline did not hold", took)
		}
	})
	t.Run("2xx with garbage body is delivered", func(t *testing.T) {
		srv := statusServer(t, http.StatusAccepted, `not json`)
		if retry, err := newTestPagerDuty(t, srv.URL).Notify(context.Background(), pageDown("k")); err != nil || retry {
			t.Errorf("Notify = (%v, %v), want success: the event was accepted", retry, err)
		}
	})
}

func TestPagerDutyEventLimits(t *testing.T) {
	pd := newTestPagerDuty(t, "http://127.0.0.1:1")
	n := pageDown(strings.Repeat("k", 400))
	n.Summary = strings.Repeat("é", 800) // 1600 bytes
	ev := pd.event(n)
	if got := ev.Payload.Summary; len(got) > 1024 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("summary of %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if len(ev.DedupKey) > 255 {
		t.Errorf("dedup_key of %d bytes", len(ev.DedupKey))
	}
	other := pd.event(pageDown(strings.Repeat("k", 399) + "j"))
	if other.DedupKey == ev.DedupKey {
		t.Error("two long keys map to one dedup_key")
	}
	if again := pd.event(n); again.DedupKey != ev.DedupKey {
		t.Error("dedup_key is not deterministic")
	}
	body, _ := json.Marshal(ev)
	if _, problems := validatePDEvent(body); len(problems) > 0 {
		t.Errorf("event invalid: %v", problems)
	}
	for _, tc := range []struct {
		route, severity, want string
	}{
		{RouteCritical, SeverityCritical, "critical"},
		{RouteWarning, SeverityWarning, "warning"},
		{RouteMeta, SeverityWarning, "error"},
		{RouteMeta, SeverityInfo, "info"},
		{"", SeverityWarning, "warning"},
		{"", "", "error"},
	} {
		if got := pdSeverity(Notification{Route: tc.route, Severity: tc.severity}); got != tc.want {
			t.Errorf("pdSeverity(%q, %q) = %q, want %q", tc.route, tc.severity, got, tc.want)
		}
	}
}

// pdWithTimeout is a PagerDuty notifier with a short attempt timeout.
func pdWithTimeout(t testing.TB, url string, timeout time.Duration) *PagerDutyNotifier {
	t.Helper()
	pd, err := NewPagerDutyNotifier(&checks.PagerDutyNotifier{RoutingKey: checks.NewSecret(testRoutingKey), URL: url}, NotifierOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pd.CloseIdleConnections)
	return pd
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
