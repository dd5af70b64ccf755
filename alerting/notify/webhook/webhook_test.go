package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

func TestWebhookNotifier(t *testing.T) {
	const secret = "whsec-0123456789abcdef"
	srv := notifytest.NewStatusServer(t, http.StatusNoContent, "")
	clk := clocktest.New(notifytest.T0)
	w, err := New(&checks.WebhookNotifier{URL: srv.URL + "/hook", Secret: checks.NewSecret(secret)}, notify.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.CloseIdleConnections)
	down := notifytest.PageDown("outpost:check:web-home")
	if retry, err := w.Notify(context.Background(), down); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	ts := r.Header.Get("X-Outpost-Timestamp")
	if ts != strconv.FormatInt(notifytest.T0.Unix(), 10) {
		t.Errorf("timestamp %q, want the clock's %d", ts, notifytest.T0.Unix())
	}
	// Verify as a receiver would, independently of Sign.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(r.Body)))
	want := "v1=" + hex.EncodeToString(mac.Sum(nil))
	if got := r.Header.Get("X-Outpost-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
	var got notify.Notification
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, down) {
		t.Errorf("body decodes to\n%+v\nwant\n%+v", got, down)
	}
	if strings.Contains(string(r.Body), secret) {
		t.Error("the secret is in the body")
	}

	// Without a secret there is no signature.
	w2, err := New(&checks.WebhookNotifier{URL: srv.URL + "/hook"}, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w2.CloseIdleConnections)
	if _, err := w2.Notify(context.Background(), down); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests()[1]; r.Header.Get("X-Outpost-Signature") != "" || r.Header.Get("X-Outpost-Timestamp") == "" {
		t.Errorf("unsigned delivery headers: %v", r.Header)
	}
}

// TestWebhookRetryClassification: the classification every HTTP receiver
// must pass.
func TestWebhookRetryClassification(t *testing.T) {
	notifytest.RetryTests(t, "/hook", func(t *testing.T, url string) notify.Notifier {
		w, err := New(&checks.WebhookNotifier{URL: url + "/hook", Secret: checks.NewSecret("whsec-secret")}, notify.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.CloseIdleConnections)
		return w
	})
}
