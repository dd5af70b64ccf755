package alerting

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/outposthq/outpost/checks"
)

// DefaultPagerDutyURL is the Events API base URL used when a notifier sets
// none; events go to URL + "/v2/enqueue".
const DefaultPagerDutyURL = "https://events.pagerduty.com"

// pagerDutyClient is PagerDuty's payload.client and the text of the link.
const pagerDutyClient = "Outpost"

// maxPDDetailsBytes keeps an event well below the Events API's 512 KiB
// limit; bigger custom details lose their per-region observations.
const maxPDDetailsBytes = 256 << 10

// PagerDutyNotifier sends PagerDuty Events API v2 events through
// go-pagerduty: a trigger with the incident's evidence, or a resolve, both
// with the notification's key as dedup_key. It never retries by itself.
type PagerDutyNotifier struct {
	client     *pagerduty.Client
	routingKey string
	timeout    time.Duration
	redact     func(string) string
	transport  http.RoundTripper
}

var _ Notifier = (*PagerDutyNotifier)(nil)

// NewPagerDutyNotifier returns a notifier for cfg. cfg.URL, when set, is
// the Events API base URL (without the trailing "/v2/enqueue").
func NewPagerDutyNotifier(cfg *checks.PagerDutyNotifier, opts NotifierOptions) (*PagerDutyNotifier, error) {
	if cfg == nil || cfg.RoutingKey.IsZero() {
		return nil, errors.New("pagerduty: routing_key is required")
	}
	base := strings.TrimSuffix(cfg.URL, "/")
	if base == "" {
		base = DefaultPagerDutyURL
	}
	opts = opts.withDefaults()
	key := cfg.RoutingKey.Value()
	p := &PagerDutyNotifier{
		routingKey: key,
		timeout:    opts.Timeout,
		redact:     opts.redactor(key),
		transport:  opts.Transport,
	}
	p.client = pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(base))
	p.client.HTTPClient = &recordingClient{client: newHTTPClient(opts)}
	return p, nil
}

// CloseIdleConnections closes the notifier's idle connections.
func (p *PagerDutyNotifier) CloseIdleConnections() { closeIdle(p.transport) }

// Notify sends n as one event: a resolve for ActionResolve, a trigger
// otherwise (PagerDuty has no one-shot notices; a notice becomes a trigger
// under its key).
func (p *PagerDutyNotifier) Notify(ctx context.Context, n Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	call := &pdCall{}
	ctx = context.WithValue(ctx, pdCallKey{}, call)
	_, err := p.client.ManageEventWithContext(ctx, p.event(n))
	switch {
	case call.status/100 == 2:
		// Accepted. An unreadable body after a 2xx (err != nil) must not
		// cause a second event.
		return false, nil
	case call.status != 0:
		return statusError("pagerduty", call.answer, pdMessage(call.body), p.redact)
	case call.err != nil:
		return failed("pagerduty", call.err, p.redact)
	case err != nil:
		// No request was made (the event or the URL is unusable): another
		// attempt would fail the same way.
		return false, fmt.Errorf("pagerduty: %s", p.redact(err.Error()))
	}
	return false, nil
}

// event builds the Events v2 event for n.
func (p *PagerDutyNotifier) event(n Notification) *pagerduty.V2Event {
	ev := &pagerduty.V2Event{
		RoutingKey: p.routingKey,
		Action:     ActionTrigger,
		DedupKey:   pdDedupKey(n.Key),
		Client:     pagerDutyClient,
		ClientURL:  n.Link,
	}
	if n.Link != "" {
		ev.Links = []any{map[string]string{"href": n.Link, "text": pagerDutyClient + " status"}}
	}
	if n.Action == ActionResolve {
		ev.Action = ActionResolve
		return ev
	}
	source := n.Source
	if source == "" {
		source = "outpost"
	}
	ev.Payload = &pagerduty.V2Payload{
		Summary:   truncate(n.Summary, maxPDSummary),
		Source:    truncate(source, maxFieldBytes),
		Severity:  pdSeverity(n),
		Timestamp: n.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Component: cmpOr(n.Component, n.Check),
		Group:     n.Group,
		Class:     cmpOr(n.Class, n.Kind),
		Details:   pdDetails(n),
	}
	if n.Time.IsZero() {
		ev.Payload.Timestamp = ""
	}
	return ev
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pdSeverity maps the route to PagerDuty's severity: critical pages at
// critical, warnings at warning, the monitoring's own trouble at error. A
// notice marked info stays info.
func pdSeverity(n Notification) string {
	if n.Severity == SeverityInfo {
		return SeverityInfo
	}
	switch n.Route {
	case RouteCritical:
		return SeverityCritical
	case RouteWarning:
		return SeverityWarning
	case RouteMeta:
		return SeverityError
	}
	switch n.Severity {
	case SeverityCritical, SeverityError, SeverityWarning:
		return n.Severity
	}
	return SeverityError
}

// pdDedupKey returns key if it fits PagerDuty's 255 bytes, else a prefix
// of it and a hash of the whole, the same on every evaluator.
func pdDedupKey(key string) string {
	if len(key) <= maxPDDedupKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	prefix := key[:maxPDDedupKey-len(h)-1]
	for len(prefix) > 0 && prefix[len(prefix)-1]&0xC0 == 0x80 {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + "~" + h
}

// pdDetails is payload.custom_details: the check, kind and details, and
// per region what it saw.
func pdDetails(n Notification) map[string]any {
	d := make(map[string]any, len(n.Details)+4)
	for _, k := range slices.Sorted(maps.Keys(n.Details)) {
		d[k] = n.Details[k]
	}
	d["kind"] = n.Kind
	if n.Check != "" {
		d["check"] = n.Check
	}
	if n.Region != "" {
		d["region"] = n.Region
	}
	if len(n.Evidence) > 0 {
		regions := make(map[string]RegionEvidence, len(n.Evidence))
		for _, ev := range n.Evidence {
			ev2 := ev
			ev2.Region = ""
			regions[ev.Region] = ev2
		}
		d["regions"] = regions
		if b, err := json.Marshal(d); err != nil || len(b) > maxPDDetailsBytes {
			short := make(map[string]string, len(n.Evidence))
			for _, ev := range n.Evidence {
				short[ev.Region] = truncate(evidenceLine(ev), 512)
			}
			d["regions"] = short
		}
	}
	return d
}

// pdMessage extracts the text of an Events API error answer
// ({"status": ..., "message": ..., "errors": [...]}).
func pdMessage(body []byte) string {
	var r pagerduty.V2EventResponse
	if err := json.Unmarshal(body, &r); err != nil || (r.Status == "" && r.Message == "") {
		return ""
	}
	parts := []string{}
	for _, s := range append([]string{r.Status, r.Message}, r.Errors...) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// pdCall records what the HTTP exchange of one event gave, beneath
// go-pagerduty, which neither exposes the status of an accepted event nor
// keeps transport errors as values.
type pdCall struct {
	answer
	err error
}

type pdCallKey struct{}

// recordingClient is the HTTP client handed to go-pagerduty: it records
// the exchange in the request's pdCall and bounds the answer it reads.
type recordingClient struct {
	client *http.Client
}

func (c *recordingClient) Do(req *http.Request) (*http.Response, error) {
	call, _ := req.Context().Value(pdCallKey{}).(*pdCall)
	if call == nil {
		call = &pdCall{}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		call.err = transportError(req.Context(), err)
		return nil, call.err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
	call.status = resp.StatusCode
	call.retryAfter = retryAfter(resp.Header.Get("Retry-After"))
	call.body = body
	if rerr != nil && resp.StatusCode/100 != 2 {
		call.status, call.err = 0, transportError(req.Context(), rerr)
		return nil, call.err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
