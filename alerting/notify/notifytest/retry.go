package notifytest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
)

// RetryTests checks an HTTP receiver's classification of answers, as every
// receiver must: 2xx delivered; a redirect and other 4xx refused for good;
// 408, 429 and 5xx worth another attempt; a refused connection worth
// another attempt with an error that names no URL; Retry-After kept in the
// DeliveryError with the status. build makes the receiver under test against base URL url;
// secretPath is a part of its URL that must never appear in an error.
func RetryTests(t *testing.T, secretPath string, build func(t *testing.T, url string) notify.Notifier) {
	t.Helper()
	cases := []struct {
		status int
		ok     bool
		retry  bool
	}{
		{http.StatusOK, true, false},
		{http.StatusAccepted, true, false},
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
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := NewStatusServer(t, tc.status, `{"status":"invalid_payload"}`)
			retry, err := build(t, srv.URL).Notify(context.Background(), PageDown("k"))
			if (err == nil) != tc.ok || retry != tc.retry {
				t.Errorf("Notify = (%v, %v), want ok=%v retry=%v", retry, err, tc.ok, tc.retry)
			}
			var de *notify.DeliveryError
			if err != nil && (!errors.As(err, &de) || de.StatusCode != tc.status) {
				t.Errorf("error %v is not a DeliveryError with status %d", err, tc.status)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		retry, err := build(t, "http://"+ClosedAddr(t)).Notify(context.Background(), PageDown("k"))
		if err == nil || !retry {
			t.Fatalf("Notify = (%v, %v), want a retryable error", retry, err)
		}
		if secretPath != "" && strings.Contains(err.Error(), secretPath) {
			t.Errorf("error names the URL: %v", err)
		}
	})
	t.Run("retry-after", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		t.Cleanup(srv.Close)
		_, err := build(t, srv.URL).Notify(context.Background(), PageDown("k"))
		var de *notify.DeliveryError
		if !errors.As(err, &de) || de.RetryAfter != 30*time.Second {
			t.Errorf("err = %#v, want a DeliveryError asking for 30s", err)
		}
	})
}
