// Package notifytest is the importable test kit of every receiver and of
// the outbox: a fake PagerDuty Events v2 endpoint that validates each event
// against the documented schema, a recording HTTP server, a recording and
// scriptable notifier, the notifications the tests page with, and the
// retry-classification table every HTTP receiver must pass. It talks only to
// loopback servers it starts itself. Only tests import it; it imports only
// notify of Outpost's.
package notifytest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakePagerDuty is a PagerDuty Events API v2 endpoint on loopback. It
// checks every request against the documented schema
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/),
// answers 202 {"status":"success","dedup_key":...} to a valid event and 400
// {"status":"invalid event",...} to an invalid one, and can be told to
// answer other statuses to the next requests, to every request, or to the
// events of one dedup key. It records accepted events.
type FakePagerDuty struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	accepted []Event
	invalid  []string // why requests were refused as invalid
	requests int
	// failures are statuses to answer to the next requests, in order.
	failures []int
	// always, when set, is answered to every request.
	always int
	// byKey are statuses answered to every event with that dedup_key.
	byKey map[string]int
	// hang, when set, delays answers until the request's context ends.
	hang bool
	// retryAfter is the Retry-After of a 429 answer ("1" when empty).
	retryAfter string
	// notify receives a value after every request (buffered, lossy).
	notify chan struct{}
}

// Event is an Events v2 event, decoded strictly.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
	Images      []Image  `json:"images,omitempty"`
	Links       []Link   `json:"links,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
}

// Payload is an event's payload.
type Payload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Group         string          `json:"group,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails json.RawMessage `json:"custom_details,omitempty"`
}

// Image is one of an event's images.
type Image struct {
	Src  string `json:"src"`
	Href string `json:"href,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// Link is one of an event's links.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// maxEventBytes is the Events API's limit on one event.
const maxEventBytes = 512 << 10

// NewFakePagerDuty starts a fake on loopback, closed when t ends.
func NewFakePagerDuty(t testing.TB) *FakePagerDuty {
	t.Helper()
	f := &FakePagerDuty{t: t, notify: make(chan struct{}, 1000)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL to configure (events go to URL + "/v2/enqueue").
func (f *FakePagerDuty) URL() string { return f.srv.URL }

// FailNext makes the next n requests answer status.
func (f *FakePagerDuty) FailNext(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.failures = append(f.failures, status)
	}
}

// SetAlways makes every request answer status (0: behave normally).
func (f *FakePagerDuty) SetAlways(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always = status
}

// FailKey makes every event with dedup_key key answer status (0: behave
// normally again), whatever the other events get: a destination that
// refuses one incident's events only.
func (f *FakePagerDuty) FailKey(key string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKey == nil {
		f.byKey = map[string]int{}
	}
	if status == 0 {
		delete(f.byKey, key)
		return
	}
	f.byKey[key] = status
}

// SetRetryAfter sets the Retry-After header of 429 answers (seconds or an
// HTTP date; the default is "1").
func (f *FakePagerDuty) SetRetryAfter(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAfter = v
}

// SetHang makes the fake hold every request until the client gives up.
func (f *FakePagerDuty) SetHang(hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = hang
}

// Events returns the events accepted so far, in order.
func (f *FakePagerDuty) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.accepted...)
}

// RequestCount returns how many requests arrived, valid or not.
func (f *FakePagerDuty) RequestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// InvalidReasons lists why requests were refused as invalid.
func (f *FakePagerDuty) InvalidReasons() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.invalid...)
}

func (f *FakePagerDuty) serve(w http.ResponseWriter, r *http.Request) {
	defer func() {
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var keyOf struct {
		DedupKey string `json:"dedup_key"`
	}
	_ = json.Unmarshal(body, &keyOf) // an invalid body is refused below
	f.mu.Lock()
	f.requests++
	status := f.always
	if status == 0 {
		status = f.byKey[keyOf.DedupKey]
	}
	if status == 0 && len(f.failures) > 0 {
		status, f.failures = f.failures[0], f.failures[1:]
	}
	hang, retryAfter := f.hang, cmp.Or(f.retryAfter, "1")
	f.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	if err != nil {
		f.reject(w, http.StatusBadRequest, "unreadable body: "+err.Error())
		return
	}
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"status":"unavailable","message":"fake answered %d"}`, status)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		f.reject(w, http.StatusNotFound, fmt.Sprintf("%s %s: want POST /v2/enqueue", r.Method, r.URL.Path))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.reject(w, http.StatusBadRequest, "Content-Type "+ct)
		return
	}
	if len(body) > maxEventBytes {
		f.reject(w, http.StatusBadRequest, fmt.Sprintf("event of %d bytes, larger than 512 KB", len(body)))
		return
	}
	ev, problems := ValidateEvent(body)
	if len(problems) > 0 {
		f.reject(w, http.StatusBadRequest, strings.Join(problems, "; "))
		return
	}
	if ev.DedupKey == "" {
		ev.DedupKey = fmt.Sprintf("generated-%d", f.RequestCount())
	}
	f.mu.Lock()
	f.accepted = append(f.accepted, ev)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func (f *FakePagerDuty) reject(w http.ResponseWriter, status int, why string) {
	f.mu.Lock()
	f.invalid = append(f.invalid, why)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{why}})
}

// ValidateEvent decodes body as an Events v2 event, refusing unknown
// fields, and lists what breaks the schema.
func ValidateEvent(body []byte) (Event, []string) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, []string{"decoding: " + err.Error()}
	}
	if dec.More() {
		return ev, []string{"trailing data after the event"}
	}
	var p []string
	if ev.RoutingKey == "" {
		p = append(p, "'routing_key' is missing or empty")
	}
	switch ev.EventAction {
	case "trigger", "acknowledge", "resolve":
	default:
		p = append(p, fmt.Sprintf("'event_action' %q: want trigger, acknowledge or resolve", ev.EventAction))
	}
	if len(ev.DedupKey) > 255 {
		p = append(p, fmt.Sprintf("'dedup_key' is %d bytes, the most is 255", len(ev.DedupKey)))
	}
	if ev.EventAction != "trigger" && ev.DedupKey == "" {
		p = append(p, "'dedup_key' is required for "+ev.EventAction)
	}
	if ev.EventAction == "trigger" {
		switch {
		case ev.Payload == nil:
			p = append(p, "'payload' is required for trigger")
		default:
			pl := ev.Payload
			if pl.Summary == "" {
				p = append(p, "'payload.summary' is required")
			}
			if n := len([]rune(pl.Summary)); n > 1024 {
				p = append(p, fmt.Sprintf("'payload.summary' is %d characters, the most is 1024", n))
			}
			if len(pl.Summary) > 1024 {
				p = append(p, fmt.Sprintf("'payload.summary' is %d bytes", len(pl.Summary)))
			}
			if pl.Source == "" {
				p = append(p, "'payload.source' is required")
			}
			switch pl.Severity {
			case "critical", "error", "warning", "info":
			default:
				p = append(p, fmt.Sprintf("'payload.severity' %q: want critical, error, warning or info", pl.Severity))
			}
			if pl.Timestamp != "" {
				if _, err := time.Parse(time.RFC3339Nano, pl.Timestamp); err != nil {
					p = append(p, "'payload.timestamp' is not ISO 8601: "+pl.Timestamp)
				}
			}
			if len(pl.CustomDetails) > 0 && pl.CustomDetails[0] != '{' {
				p = append(p, "'payload.custom_details' must be an object")
			}
		}
	}
	for i, l := range ev.Links {
		if l.Href == "" {
			p = append(p, fmt.Sprintf("'links[%d].href' is required", i))
		} else if !absoluteURL(l.Href) {
			p = append(p, fmt.Sprintf("'links[%d].href' %q is not an absolute http(s) URL", i, l.Href))
		}
	}
	if ev.ClientURL != "" && !absoluteURL(ev.ClientURL) {
		p = append(p, fmt.Sprintf("'client_url' %q is not an absolute http(s) URL", ev.ClientURL))
	}
	for i, im := range ev.Images {
		if im.Src == "" {
			p = append(p, fmt.Sprintf("'images[%d].src' is required", i))
		}
	}
	if len(body) > 512<<10 {
		p = append(p, "event larger than 512 KiB")
	}
	return ev, p
}

// absoluteURL reports whether s is an absolute http or https URL, as
// PagerDuty renders links and client_url.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
