// Package pagerduty is the PagerDuty Events API v2 receiver: one event per
// notification, the notification's key as dedup_key, through go-pagerduty
// with an HTTP client of Outpost's own that bounds and classifies every
// answer. It imports notify, never another receiver.
package pagerduty

import (
	"bytes"
	"cmp"
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

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// DefaultURL is the Events API base URL used when a notifier sets
// none; events go to URL + "/v2/enqueue".
const DefaultURL = "https://events.pagerduty.com"

// pagerDutyClient is PagerDuty's payload.client and the text of the link.
const pagerDutyClient = "Outpost"

// maxPDDetailsBytes keeps an event below the Events API's 512 KiB limit,
// with room for the rest of the event; bigger custom details lose their
// per-region observations first, then checks of a group.
const maxPDDetailsBytes = 400 << 10

// Limits of the Events API v2 that Outpost respects.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

// Notifier sends PagerDuty Events API v2 events through
// go-pagerduty: a trigger with the incident's evidence, or a resolve, both
// with the notification's key as dedup_key. It never retries by itself.
type Notifier struct {
	client     *pd.Client
	routingKey string
	timeout    time.Duration
	redact     func(string) string
	transport  http.RoundTripper
}

// New returns a notifier for cfg. cfg.URL, when set, is
// the Events API base URL (without the trailing "/v2/enqueue").
func New(cfg *checks.PagerDutyNotifier, opts notify.Options) (*Notifier, error) {
	if cfg == nil || cfg.RoutingKey.IsZero() {
		return nil, errors.New("pagerduty: routing_key is required")
	}
	base := strings.TrimSuffix(cfg.URL, "/")
	if base == "" {
		base = DefaultURL
	}
	opts = opts.WithDefaults()
	key := cfg.RoutingKey.Value()
	p := &Notifier{
		routingKey: key,
		timeout:    opts.Timeout,
		redact:     opts.Redactor(key),
		transport:  opts.Transport,
	}
	p.client = pd.NewClient("", pd.WithV2EventsAPIEndpoint(base))
	p.client.HTTPClient = &recordingClient{client: notify.NewHTTPClient(opts)}
	return p, nil
}

// CloseIdleConnections closes the notifier's idle connections.
func (p *Notifier) CloseIdleConnections() { notify.CloseIdle(p.transport) }

// Notify sends n as one event: a resolve for notify.ActionResolve, a trigger
// otherwise (PagerDuty has no one-shot notices; a notice becomes a trigger
// under its key).
func (p *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	call := &pdCall{}
	ctx = context.WithValue(ctx, pdCallKey{}, call)
	_, err := p.client.ManageEventWithContext(ctx, p.event(n))
	switch {
	case call.Status/100 == 2:
		// Accepted. An unreadable body after a 2xx (err != nil) must not
		// cause a second event.
		return false, nil
	case call.Status != 0:
		return notify.StatusError("pagerduty", call.Answer, pdMessage(call.Body), p.redact)
	case call.err != nil:
		return notify.Failed("pagerduty", call.err, p.redact)
	case err != nil:
		// No request was made (the event or the URL is unusable): another
		// attempt would fail the same way.
		return false, fmt.Errorf("pagerduty: %s", p.redact(err.Error()))
	}
	return false, nil
}

// event builds the Events v2 event for n.
func (p *Notifier) event(n notify.Notification) *pd.V2Event {
	ev := &pd.V2Event{
		RoutingKey: p.routingKey,
		Action:     notify.ActionTrigger,
		DedupKey:   pdDedupKey(n.Key),
	}
	if n.Action == notify.ActionResolve {
		// A resolve is routing_key, event_action and dedup_key only:
		// PagerDuty takes nothing else from it.
		ev.Action = notify.ActionResolve
		return ev
	}
	ev.Client, ev.ClientURL = pagerDutyClient, n.Link
	if n.Link != "" {
		text := pagerDutyClient + " status"
		if n.Check != "" {
			text += ": " + n.Check
		}
		ev.Links = append(ev.Links, map[string]string{"href": n.Link, "text": wire.Clip(text, notify.MaxFieldBytes)})
	}
	if n.Runbook != "" {
		ev.Links = append(ev.Links, map[string]string{"href": n.Runbook, "text": "Runbook"})
	}
	source := n.Source
	if source == "" {
		source = "outpost"
	}
	ev.Payload = &pd.V2Payload{
		Summary:   wire.Clip(n.Summary, maxSummary),
		Source:    wire.Clip(source, notify.MaxFieldBytes),
		Severity:  notify.SeverityOf(n),
		Timestamp: n.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Component: cmp.Or(n.Component, n.Check),
		Group:     n.Group,
		Class:     cmp.Or(n.Class, n.Kind),
		Details:   pdDetails(n),
	}
	if n.Time.IsZero() {
		ev.Payload.Timestamp = ""
	}
	return ev
}

// pdDedupKey returns key if it fits PagerDuty's 255 bytes, else a prefix
// of it and a hash of the whole, the same on every evaluator.
func pdDedupKey(key string) string {
	if len(key) <= maxDedupKey {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	prefix := key[:maxDedupKey-len(h)-1]
	for len(prefix) > 0 && prefix[len(prefix)-1]&0xC0 == 0x80 {
		prefix = prefix[:len(prefix)-1]
	}
	return prefix + "~" + h
}

// pdDetails is payload.custom_details: the check, kind and details, and
// per region what it saw.
func pdDetails(n notify.Notification) map[string]any {
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
	for k, v := range map[string]string{"target": n.Target, "runbook": n.Runbook, "link": n.Link} {
		if v != "" {
			d[k] = v
		}
	}
	if len(n.Evidence) > 0 {
		regions := make(map[string]notify.RegionEvidence, len(n.Evidence))
		for _, ev := range n.Evidence {
			regions[ev.Region] = ev
		}
		d["regions"] = regions
		if b, err := json.Marshal(d); err != nil || len(b) > maxPDDetailsBytes/4 {
			short := make(map[string]string, len(n.Evidence))
			for _, ev := range n.Evidence {
				short[ev.Region] = wire.Clip(notify.EvidenceLine(ev), 512)
			}
			d["regions"] = short
		}
	}
	if len(n.Members) > 0 {
		pdMembers(d, n.Members)
	}
	return d
}

// pdMember is one check of a group or storm event in custom_details.
type pdMember struct {
	Check   string `json:"check"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Summary string `json:"summary"`
	// Regions is what each region saw: full evidence while it fits,
	// one line per region when it does not.
	Regions any `json:"regions,omitempty"`
}

// pdMembers puts every member of a group into d["checks"], each with its
// evidence, within maxPDDetailsBytes: full evidence while it fits, then
// one line per region, then as many checks as fit, with the number left
// out in d["checks_omitted"].
func pdMembers(d map[string]any, members []notify.Member) {
	full := make([]pdMember, len(members))
	lines := make([]pdMember, len(members))
	for i, m := range members {
		full[i] = pdMember{Check: m.Check, Kind: m.Kind, State: m.State, Summary: wire.Clip(m.Summary, maxSummary)}
		lines[i] = full[i]
		regions := make(map[string]notify.RegionEvidence, len(m.Evidence))
		short := make(map[string]string, len(m.Evidence))
		for _, ev := range m.Evidence {
			regions[ev.Region] = ev
			short[ev.Region] = wire.Clip(notify.EvidenceLine(ev), 256)
		}
		if len(regions) > 0 {
			full[i].Regions, lines[i].Regions = regions, short
		}
	}
	base, _ := json.Marshal(d)
	room := maxPDDetailsBytes - len(base) - 64
	for _, list := range [][]pdMember{full, lines} {
		if b, err := json.Marshal(list); err == nil && len(b) <= room {
			d["checks"] = list
			return
		}
	}
	used, kept := 2, 0
	for _, m := range lines {
		b, _ := json.Marshal(m)
		if used+len(b)+1 > room {
			break
		}
		used += len(b) + 1
		kept++
	}
	d["checks"] = lines[:kept]
	d["checks_omitted"] = len(lines) - kept
}

// pdMessage extracts the text of an Events API error answer
// ({"status": ..., "message": ..., "errors": [...]}).
func pdMessage(body []byte) string {
	var r pd.V2EventResponse
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
	notify.Answer
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
		call.err = notify.TransportError(req.Context(), err)
		return nil, call.err
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, notify.MaxAnswerBytes))
	_ = resp.Body.Close()
	call.Status = resp.StatusCode
	call.RetryAfter = notify.RetryAfter(resp.Header.Get("Retry-After"))
	call.Body = body
	if rerr != nil && resp.StatusCode/100 != 2 {
		call.Status, call.err = 0, notify.TransportError(req.Context(), rerr)
		return nil, call.err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
