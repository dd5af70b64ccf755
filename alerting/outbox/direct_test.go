package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
)

type refusing struct{}

func (refusing) Notify(context.Context, notify.Notification) (bool, error) {
	return false, errors.New("refused, token=s3cr3t")
}

// TestDeliverNow: the last resort of a producer whose Enqueue failed
// delivers at once to the notifiers whose routes take the notification,
// records nothing, and says which notifier failed, redacted.
func TestDeliverNow(t *testing.T) {
	pager, chat := &notifytest.Recorder{}, &notifytest.Recorder{}
	h := newPipe(t, t.TempDir(), map[string]notify.Notifier{"pager": pager, "chat": chat, "broken": refusing{}}, func(o *Options) {
		o.Routes = map[string][]string{"pager": {checks.RouteMeta}, "chat": {checks.RouteWarning}, "broken": {checks.RouteMeta}}
		o.Redact = func(s string) string { return strings.ReplaceAll(s, "s3cr3t", "<redacted>") }
	})
	n := notify.Notification{Kind: notify.KindEvaluatorFault, Key: "outpost:evaluator-fault:eval-a:data_dir", Action: notify.ActionTrigger,
		Route: checks.RouteMeta, Summary: "evaluator eval-a cannot write its data dir /d: no space left on device"}
	err := h.p.DeliverNow(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "broken: refused, token=<redacted>") {
		t.Fatalf("DeliverNow = %v, want the broken notifier's error, redacted", err)
	}
	if got := pager.Delivered(); len(got) != 1 || got[0].Key != n.Key {
		t.Fatalf("pager got %+v", got)
	}
	if got := chat.Delivered(); len(got) != 0 {
		t.Errorf("chat, which does not take meta, got %+v", got)
	}
	if p := h.p.Pending("pager"); p != 0 {
		t.Errorf("%d pending for pager: DeliverNow recorded the notification", p)
	}
	if err := h.p.DeliverNow(context.Background(), notify.Notification{Summary: "no key"}); !errors.Is(err, notify.ErrInvalidNotification) {
		t.Errorf("DeliverNow of an invalid notification = %v", err)
	}
}
