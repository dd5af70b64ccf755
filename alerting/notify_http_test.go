package alerting

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// recordingServer answers status with body and records each request.
type recordingServer struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	status int
	body   string
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func statusServer(t testing.TB, status int, body string) *recordingServer {
	t.Helper()
	s := &recordingServer{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{path: r.URL.Path, header: r.Header.Clone(), body: b})
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if status/100 == 3 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

const slackPath = "/services/T0000/B0000/XXXXslacksecretXXXX"

func newTestSlack(t testing.TB, url string) *SlackNotifier {
	t.Helper()
	s, err := NewSlackNotifier(&checks.SlackNotifier{WebhookURL: checks.NewSecret(url)}, NotifierOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.CloseIdleConnections)
	return s
}

func TestSlackNotifier(t *testing.T) {
	srv := statusServer(t, http.StatusOK, "ok")
	s := newTestSlack(t, srv.URL+slackPath)
	down := pageDown("outpost:check:web-home")
	down.Summary = "web-home <DOWN> & out"
	if retry, err := s.Notify(context.Background(), down); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 || reqs[0].path != slackPath || reqs[0].header.Get("Content-Type") != "application/json" {
		t.Fatalf("requests %+v", reqs)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type     string     `json:"type"`
			Text     *slackText `json:"text"`
			Elements []slackText
		} `json:"blocks"`
	}
	if err := json.Unmarshal(reqs[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "web-home &lt;DOWN&gt; &amp; out") || !strings.Contains(msg.Text, "CRITICAL") {
		t.Errorf("text %q", msg.Text)
	}
	all := string(reqs[0].body)
	for _, want := range []string{"us-east", "status 503, want 200", "203.0.113.10:443", "eu-west", "connection refused", "status page", down.Link} {
		if !strings.Contains(all, want) {
			t.Errorf("message lacks %q: %s", want, all)
		}
	}
}

func TestWebhookNotifier(t *testing.T) {
	const secret = "whsec-0123456789abcdef"
	srv := statusServer(t, http.StatusNoContent, "")
	clk := clocktest.New(t0)
	w, err := NewWebhookNotifier(&checks.WebhookNotifier{URL: srv.URL + "/hook", Secret: checks.NewSecret(secret)}, NotifierOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.CloseIdleConnections)
	down := pageDown("outpost:check:web-home")
	if retry, err := w.Notify(context.Background(), down); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	ts := r.header.Get("X-Outpost-Timestamp")
	if ts != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("timestamp %q, want the clock's %d", ts, t0.Unix())
	}
	// Verify as a receiver would, independently of SignWebhook.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(r.body)))
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.header.Get("X-Outpost-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	var got Notification
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, down) {
		t.Errorf("body decodes to\n%+v\nwant\n%+v", got, down)
	}
	if strings.Contains(string(r.body), secret) {
		t.Error("the secret is in the body")
	}

	// Without a secret there is no signature.
	w2, err := NewWebhookNotifier(&checks.WebhookNotifier{URL: srv.URL + "/hook"}, NotifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w2.CloseIdleConnections)
	if _, err := w2.Notify(context.Background(), down); err != nil {
		t.Fatal(err)
	}
	if r := srv.requests()[1]; r.header.Get("X-Outpost-Signature") != "" || r.header.Get("X-Outpost-Timestamp") == "" {
		t.Errorf("unsigned delivery headers: %v", r.header)
	}
}

func TestHTTPNotifierClassification(t *testing.T) {
	cases := []struct {
		status int
		ok     bool
		retry  bool
	}{
		{http.StatusOK, true, false},
		{http.StatusNoContent, true, false},
		{http.StatusFound, false, false},
		{http.StatusBadRequest, false, false},
		{http.StatusForbidden, false, false},
		{http.StatusNotFound, false, false},
		{http.StatusGone, false, false},
		{http.StatusRequestTimeout, false, true},
		{http.StatusTooManyRequests, false, true},
		{http.StatusInternalServerError, false, true},
		{http.StatusServiceUnavailable, false, true},
	}
	kinds := map[string]func(t *testing.T, url string) Notifier{
		"slack": func(t *testing.T, url string) Notifier { return newTestSlack(t, url+slackPath) },
		"webhook": func(t *testing.T, url string) Notifier {
			w, err := NewWebhookNotifier(&checks.WebhookNotifier{URL: url + "/hook", Secret: checks.NewSecret("whsec-secret")}, NotifierOptions{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.CloseIdleConnections)
			return w
		},
	}
	for kind, build := range kinds {
		for _, tc := range cases {
			t.Run(kind+"/"+http.StatusText(tc.status), func(t *testing.T) {
				srv := statusServer(t, tc.status, "invalid_payload")
				retry, err := build(t, srv.URL).Notify(context.Background(), pageDown("k"))
				if (err == nil) != tc.ok || retry != tc.retry {
					t.Errorf("Notify = (%v, %v), want ok=%v retry=%v", retry, err, tc.ok, tc.retry)
				}
			})
		}
		t.Run(kind+"/connection refused", func(t *testing.T) {
			retry, err := build(t, "http://"+closedAddr(t)).Notify(context.Background(), pageDown("k"))
			if err == nil || !retry {
				t.Errorf("Notify = (%v, %v), want a retryable error", retry, err)
			}
			if strings.Contains(err.Error(), "/services/") || strings.Contains(err.Error(), "/hook") {
				t.Errorf("error names the URL: %v", err)
			}
		})
	}
	t.Run("retry-after", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		t.Cleanup(srv.Close)
		_, err := newTestSlack(t, srv.URL+slackPath).Notify(context.Background(), pageDown("k"))
		de, ok := err.(*DeliveryError)
		if !ok || de.RetryAfter != 30*time.Second {
			t.Errorf("err = %#v, want a DeliveryError asking for 30s", err)
		}
	})
}
