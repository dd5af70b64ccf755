package notifytest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting/notify"
)

// AssertNotifyLeaksNoSecret makes one attempt to deliver n with nf and
// fails t if the error it returns holds any of secrets, however it is
// printed (%v, %+v, %#v, %q), unwrapped or not. It returns what Notify
// returned, for the caller's own assertions. Give it a destination that
// fails (refuses, echoes the request, is unreachable): a delivered
// notification has no error to leak through.
func AssertNotifyLeaksNoSecret(t testing.TB, nf notify.Notifier, n notify.Notification, secrets ...string) (bool, error) {
	t.Helper()
	retry, err := nf.Notify(context.Background(), n)
	AssertNoSecret(t, "Notify's error", err, secrets...)
	return retry, err
}

// AssertNoSecret fails t if v, printed every usual way (and, for an
// error, each error it wraps), holds any of secrets; what names v in the
// failure message, which never quotes the secret itself.
func AssertNoSecret(t testing.TB, what string, v any, secrets ...string) {
	t.Helper()
	if v == nil {
		return
	}
	var texts []string
	for _, f := range []string{"%v", "%+v", "%#v", "%q", "%s"} {
		texts = append(texts, fmt.Sprintf(f, v))
	}
	if err, ok := v.(error); ok {
		for _, e := range unwrapAll(err) {
			texts = append(texts, e.Error(), fmt.Sprintf("%#v", e))
		}
	}
	for i, s := range secrets {
		if len(s) < 4 {
			t.Fatalf("secret #%d is too short to look for", i)
		}
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s holds secret #%d (%d bytes)", what, i, len(s))
				break
			}
		}
	}
}

func unwrapAll(err error) []error {
	var out []error
	queue := []error{err}
	for len(queue) > 0 && len(out) < 64 {
		e := queue[0]
		queue = queue[1:]
		if e == nil {
			continue
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			queue = append(queue, u.Unwrap())
		case interface{ Unwrap() []error }:
			queue = append(queue, u.Unwrap()...)
		}
	}
	return out
}
