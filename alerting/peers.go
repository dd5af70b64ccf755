package alerting

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Monitors watching monitors: every evaluator checks the other evaluators'
// /healthz and pages, through its own notifiers, when one has been
// unreachable for reporting.stale_after. Each survivor pages with the same
// dedup key, so PagerDuty sees one incident however many survive.

// peerCheckTimeout bounds one /healthz request.
const peerCheckTimeout = 5 * time.Second

// peerWatch is what the evaluator knows of one peer.
type peerWatch struct {
	peer     checks.Peer
	mu       sync.Mutex
	lastOK   time.Time
	lastFail time.Time // when the latest failed check ended
	lastErr  string
	// answered is whether the latest failed check got an answer: the
	// peer is up but unhealthy, rather than unreachable.
	answered bool
	down     bool
	inFlight bool
}

func newPeerWatches(cfg *checks.Config, self string, started time.Time) []*peerWatch {
	var out []*peerWatch
	for _, p := range cfg.Peers {
		if p.Name == self {
			continue
		}
		out = append(out, &peerWatch{peer: p, lastOK: started})
	}
	return out
}

// peerKey is the dedup key of the "evaluator unreachable" page for peer.
func peerKey(peer string) string { return "outpost:peer:" + peer }

// checkPeers starts a /healthz request to every peer not already being
// checked, and sends the pages their states call for. It runs from the
// liveness tick; requests run on their own goroutines, bounded by the
// number of peers.
func (e *Evaluator) checkPeers(ctx context.Context, now time.Time) {
	for _, w := range e.peers {
		w.mu.Lock()
		start := !w.inFlight && now.Sub(e.lastPeerCheck) >= e.peerEvery
		if start {
			w.inFlight = true
		}
		lastOK, lastErr, answered, wasDown := w.lastOK, w.lastErr, w.answered, w.down
		down := now.Sub(lastOK) > e.staleAfter
		w.down = down
		w.mu.Unlock()
		if start {
			e.peerWG.Add(1)
			go e.probePeer(ctx, w)
		}
		switch {
		case down && !wasDown:
			e.send(ctx, notify.Notification{Kind: notify.KindPeerDown, Key: peerKey(w.peer.Name), Action: notify.ActionTrigger, Route: checks.RouteMeta,
				Severity: notify.SeverityCritical, Time: now,
				Summary: fmt.Sprintf("evaluator %s %s since %s (seen from %s): %s", w.peer.Name, peerTrouble(answered), lastOK.UTC().Format(time.TimeOnly), e.name, lastErr),
				Details: map[string]string{"action": notify.ActionTrigger, "route": checks.RouteMeta, "peer": w.peer.Name, "url": w.peer.URL}})
		case !down && wasDown:
			e.send(ctx, notify.Notification{Kind: notify.KindPeerDown, Key: peerKey(w.peer.Name), Action: notify.ActionResolve, Route: checks.RouteMeta,
				Severity: notify.SeverityCritical, Time: now,
				Summary: fmt.Sprintf("evaluator %s answering again (seen from %s)", w.peer.Name, e.name),
				Details: map[string]string{"action": notify.ActionResolve, "route": checks.RouteMeta, "peer": w.peer.Name}})
		}
	}
	if now.Sub(e.lastPeerCheck) >= e.peerEvery {
		e.lastPeerCheck = now
	}
}

// probePeer asks one peer's /healthz and records the outcome at the
// evaluator's clock time of the answer.
func (e *Evaluator) probePeer(ctx context.Context, w *peerWatch) {
	defer e.peerWG.Done()
	ctx, cancel := context.WithTimeout(ctx, peerCheckTimeout)
	defer cancel()
	answered := false
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(w.peer.URL, "/")+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := e.peerClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode != http.StatusOK {
			// The peer answered: it is up but says what is wrong with it
			// (an evaluator that cannot write its data dir says so).
			answered = true
			line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
			if line == "" {
				return fmt.Errorf("/healthz answered %d", resp.StatusCode)
			}
			return fmt.Errorf("/healthz answered %d: %s", resp.StatusCode, line)
		}
		return nil
	}()
	now := e.clock.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight = false
	if err == nil {
		w.lastOK, w.lastErr, w.answered = now, "", false
		return
	}
	w.lastFail, w.lastErr, w.answered = now, shortErr(err), answered
}

// SentByPeer says whether a notification this evaluator made at t is sent
// by a peer ahead of it in peer order. Evaluators decide alike from the
// same batches, so channels without dedup of their own (Slack, webhooks,
// the console) take each notification from the first healthy evaluator
// only; PagerDuty folds its copies by dedup key and gets every
// evaluator's (the safer side). It returns the peer that sends, if any.
func (e *Evaluator) SentByPeer(t time.Time) (notify.PeerVerdict, string) {
	if !slices.ContainsFunc(e.config().Peers, func(p checks.Peer) bool { return p.Name == e.name }) {
		return notify.PeerNone, "" // not among the peers: the only sender
	}
	verdict := notify.PeerNone
	for _, p := range e.config().Peers {
		if p.Name == e.name {
			return verdict, ""
		}
		w := e.peerWatch(p.Name)
		if w == nil {
			continue
		}
		w.mu.Lock()
		lastOK, lastFail := w.lastOK, w.lastFail
		w.mu.Unlock()
		switch {
		case !lastOK.Before(t) && lastOK.After(lastFail):
			return notify.PeerSends, p.Name
		case !lastFail.Before(t) && lastFail.After(lastOK):
			// Down since t: the next peer ahead, if any, decides.
		default:
			verdict = notify.PeerUnsure
		}
	}
	return verdict, ""
}

// peerWatch returns the watch of the peer named name, or nil.
func (e *Evaluator) peerWatch(name string) *peerWatch {
	for _, w := range e.peers {
		if w.peer.Name == name {
			return w
		}
	}
	return nil
}

// peerTrouble names what is wrong with a peer whose checks fail.
func peerTrouble(answered bool) string {
	if answered {
		return "unhealthy"
	}
	return "unreachable"
}

// shortErr keeps a peer error readable in a page: the URL is already in
// the details.
func shortErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial tcp") {
		msg = msg[i+2:]
	}
	return wire.Clip(msg, 200)
}
