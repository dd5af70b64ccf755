package notify

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/probes/clock"
)

// PeerVerdict is what an evaluator knows, for a notification it made at
// some moment, of the peers ahead of it in peer order.
type PeerVerdict int

const (
	// PeerUnsure: no check of a peer ahead has ended since the moment.
	PeerUnsure PeerVerdict = iota
	// PeerSends: a peer ahead answered healthy since the moment: it was up
	// when it made the same notification, and its outbox sends it.
	PeerSends
	// PeerNone: this evaluator is the first in peer order (or not in it),
	// or every peer ahead failed a check since the moment: it sends.
	PeerNone
)

// OneCopy gives a channel without dedup of its own (Slack, a webhook, the
// console) one copy of each notification however many evaluators make it:
// only the first healthy evaluator in peer order sends. Every evaluator
// decides alike from the same batches, so the others hold each
// notification until they know whether an evaluator ahead of them was up
// when it was made (it sends, so they drop theirs) or is down (they send).
// No consensus of its own: it rests on the evaluators' health checks of
// each other. PagerDuty is not wrapped: it folds copies by dedup key, and
// every evaluator sending is the safer side.
type OneCopy struct {
	Notifier Notifier
	// Name is the notifier's name, for logs.
	Name string
	// SentByPeer says whether a peer ahead sends a notification made at t
	// (alerting.Evaluator.SentByPeer); nil means no peer does.
	SentByPeer func(t time.Time) (PeerVerdict, string)
	// Clock times the waits; Poll is how often to look again while unsure
	// (at most every second; 500ms if zero).
	Clock clock.Clock
	Poll  time.Duration
	// LeftToPeer counts the notifications left to a peer; may be nil.
	LeftToPeer prometheus.Counter
	Log        *slog.Logger
}

// heldTooLong is how close to its deadline a held attempt gives up, with a
// retryable error, for the outbox to try again later.
const heldTooLong = time.Second

// Notify sends n unless a peer ahead sends it, waiting within ctx while
// that is not known yet.
func (o *OneCopy) Notify(ctx context.Context, n Notification) (retry bool, err error) {
	clk := o.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	poll := o.Poll
	if poll <= 0 || poll > time.Second {
		poll = 500 * time.Millisecond
	}
	for {
		verdict, peer := PeerNone, ""
		if o.SentByPeer != nil {
			verdict, peer = o.SentByPeer(n.Time)
		}
		switch verdict {
		case PeerNone:
			return o.Notifier.Notify(ctx, n)
		case PeerSends:
			if o.LeftToPeer != nil {
				o.LeftToPeer.Inc()
			}
			if o.Log != nil {
				o.Log.Debug("notification left to the evaluator ahead in peer order", "notifier", o.Name, "key", n.Key, "peer", peer)
			}
			return false, nil
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < poll+heldTooLong {
			return true, fmt.Errorf("%s: held until it is known whether the evaluator ahead in peer order is up", o.Name)
		}
		t := clk.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return true, ctx.Err()
		case <-t.C():
		}
	}
}

// CloseIdleConnections passes the outbox's Close on to the notifier.
func (o *OneCopy) CloseIdleConnections() {
	if c, ok := o.Notifier.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
