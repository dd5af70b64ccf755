package alerting

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
)

// Heartbeat checks are dead-man's switches: a cron job or pipeline pings
// /ping/{token} when it succeeds (and /start when it begins, /fail when it
// fails), and the check is DOWN when the expected ping is late, the job
// reported a failure, or a run has taken longer than max_runtime. They go
// through the same incident and notify pipeline as probed checks.

// maxPingBody bounds the message a POST ping may carry.
const maxPingBody = 10 << 10

// pingState is what the evaluator knows of one heartbeat check's pings.
type pingState struct {
	LastSuccess time.Time
	LastStart   time.Time
	LastFail    time.Time
	// Message is the body of the latest POST ping, truncated.
	Message string
	// Runtime is the last start-to-success time.
	Runtime time.Duration
}

// heartbeats holds ping states by check and the check for each token's
// hash; both are keyed by configuration only, so they are bounded. mu
// guards both maps and the states.
type heartbeats struct {
	mu     sync.Mutex
	states map[string]*pingState
	tokens map[[32]byte]string // sha256(token) -> check id
}

func newHeartbeats() *heartbeats {
	return &heartbeats{states: map[string]*pingState{}, tokens: map[[32]byte]string{}}
}

// reconfigure makes the heartbeat checks of cfg the ones pinged: a check
// that stays keeps its pings (under a new token too), a new one starts
// with none, a removed one is forgotten.
func (h *heartbeats) reconfigure(cfg *checks.Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	states := map[string]*pingState{}
	tokens := map[[32]byte]string{}
	for _, c := range cfg.Checks {
		if c.Heartbeat == nil {
			continue
		}
		st := h.states[c.ID]
		if st == nil {
			st = &pingState{}
		}
		states[c.ID] = st
		tokens[sha256.Sum256([]byte(c.Heartbeat.Token.Value()))] = c.ID
	}
	h.states, h.tokens = states, tokens
}

// lookup finds the check of token. Tokens are compared by their hashes in
// constant time, so response timing reveals nothing about a guess.
func (h *heartbeats) lookup(token string) (string, bool) {
	sum := sha256.Sum256([]byte(token))
	h.mu.Lock()
	defer h.mu.Unlock()
	found := ""
	for k, id := range h.tokens {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			found = id
		}
	}
	return found, found != ""
}

// heartbeatVerdict is the pure verdict on a heartbeat check at now: its
// state (OK or DOWN) and why. started is when the evaluator started; a
// check never pinged since is judged from then, so a restart does not make
// every heartbeat late at once.
func heartbeatVerdict(h *checks.HeartbeatSpec, st pingState, started, now time.Time) (decide.CheckState, string) {
	if !st.LastFail.IsZero() && st.LastFail.After(st.LastSuccess) {
		msg := "the job reported a failure"
		if st.Message != "" {
			msg += ": " + st.Message
		}
		return decide.StateDown, msg
	}
	if h.MaxRuntime > 0 && st.LastStart.After(st.LastSuccess) && now.Sub(st.LastStart) > h.MaxRuntime {
		return decide.StateDown, fmt.Sprintf("running for %s since its start ping, max_runtime %s", now.Sub(st.LastStart).Round(time.Second), h.MaxRuntime)
	}
	base := st.LastSuccess
	if base.IsZero() {
		base = started
	}
	due, ok := h.Due(base)
	if !ok {
		return decide.StateOK, ""
	}
	if now.After(due.Add(h.Grace)) {
		if st.LastSuccess.IsZero() {
			return decide.StateDown, fmt.Sprintf("no ping since the evaluator started at %s; one was due by %s (grace %s)", started.UTC().Format(time.DateTime), due.UTC().Format(time.DateTime), h.Grace)
		}
		return decide.StateDown, fmt.Sprintf("last ping at %s; the next was due by %s (grace %s)", st.LastSuccess.UTC().Format(time.DateTime), due.UTC().Format(time.DateTime), h.Grace)
	}
	return decide.StateOK, ""
}

// evaluateHeartbeat decides about heartbeat check cd at now and queues
// what the decision changes. Its mutex is held.
func (e *Evaluator) evaluateHeartbeat(cd *checkDecider, now time.Time) {
	e.beats.mu.Lock()
	ps := e.beats.states[cd.c.ID]
	var st pingState
	if ps != nil { // nil only for a moment in a reload
		st = *ps
	}
	e.beats.mu.Unlock()
	state, why := heartbeatVerdict(cd.c.Heartbeat, st, e.started, now)
	d := decide.Decision{Check: cd.c.ID, State: state, Summary: fmt.Sprintf("%s %s", cd.c.ID, state)}
	if why != "" {
		d.Summary += ": " + why
	} else if !st.LastSuccess.IsZero() {
		d.Summary += fmt.Sprintf(": last ping at %s", st.LastSuccess.UTC().Format(time.DateTime))
		if st.Runtime > 0 {
			d.Summary += fmt.Sprintf(", ran %s", st.Runtime.Round(time.Second))
		}
	}
	cd.last = d
	e.observe(cd.id, d.State, now)
	next, events := decide.Step(cd.state, d, cd.c, e.maintenanceFor(cd.c, now), now)
	for _, ev := range events {
		e.emit(cd, ev, nil)
	}
	if !reflect.DeepEqual(next, cd.state) {
		cd.state = next
		cd.save = &savedDecider{State: next}
	}
}

// servePing records a ping: GET, HEAD or POST /ping/{token}, /start or
// /fail. A wrong token is a plain 404 that reveals nothing, and takes one
// from its source's allowance of wrong tokens (see pinglimit.go); a
// source that has spent it is answered 429 with Retry-After for every
// wrong token, while its right tokens are still served. Both are counted
// in outpost_ping_refused_total.
func (e *Evaluator) servePing(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	now := e.clock.Now()
	id, ok := e.beats.lookup(req.PathValue("token"))
	if !ok {
		e.wrongToken(w, req, now)
		return
	}
	var msg string
	if req.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(req.Body, maxPingBody))
		msg = strings.ToValidUTF8(strings.TrimSpace(string(body)), "?")
	}
	e.beats.mu.Lock()
	st := e.beats.states[id]
	if st == nil { // removed by a reload since the lookup
		e.beats.mu.Unlock()
		http.NotFound(w, req)
		return
	}
	switch req.PathValue("event") {
	case "":
		if !st.LastStart.IsZero() && st.LastStart.After(st.LastSuccess) {
			st.Runtime = now.Sub(st.LastStart)
		}
		st.LastSuccess = now
	case "start":
		st.LastStart = now
	case "fail":
		st.LastFail = now
	default:
		e.beats.mu.Unlock()
		http.NotFound(w, req)
		return
	}
	if msg != "" {
		st.Message = msg
	}
	e.savePing(id, st)
	e.beats.mu.Unlock()
	// Not the request's context: a ping that hangs up must not cut short
	// the delivery of what it decided, nor of what others queued.
	e.evaluate(context.Background(), now, id)
	if req.Header.Get(headerForwarded) == "" {
		e.forwardPing(req.PathValue("token"), req.PathValue("event"), msg)
	}
	// "ok" means the ping is on disk: a restart right after it still
	// knows the job ran. The wait shares its fsync with every other change.
	if e.state != nil {
		if err := e.state.Sync(req.Context()); err != nil {
			e.logStateError("heartbeat ping not saved; answered 503", id, err)
			http.Error(w, "ping recorded but not saved to disk; retry", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// wrongToken answers a ping with a token of no check: 404, or 429 once
// its source has spent its allowance of wrong tokens.
func (e *Evaluator) wrongToken(w http.ResponseWriter, req *http.Request, now time.Time) {
	src := sourceOf(req)
	reason := "wrong_token"
	if full, wait := e.pings.exhausted(src, now); full {
		reason = "rate_limited"
		w.Header().Set("Retry-After", retryAfter(wait))
		http.Error(w, "too many wrong tokens from this address; retry later", http.StatusTooManyRequests)
	} else {
		e.pings.wrong(src, now)
		http.NotFound(w, req)
	}
	e.metrics.pingRefused(reason).Inc()
	// The token is never logged: a near miss would give a secret away.
	if ok, suppressed := e.refusalLog.Allow("ping/"+reason, now); ok {
		e.log.Warn("heartbeat ping refused", "reason", reason, "source", src.String(), "suppressed", suppressed)
	}
}

// headerForwarded marks a ping one evaluator passes to another, which
// records it but does not pass it on again.
const headerForwarded = "X-Outpost-Forwarded-By"

// maxForwards bounds the ping forwards in flight: a ping flood is not
// multiplied without limit.
const maxForwards = 32

// forwardPing passes a ping to every peer, so that a job may ping any one
// evaluator and all of them know. It does not wait for the peers.
func (e *Evaluator) forwardPing(token, event, msg string) {
	path := "/ping/" + token
	if event != "" {
		path += "/" + event
	}
	e.forward("ping", http.MethodPost, path, []byte(msg), nil)
}

// forward passes a request that changed this evaluator's state (a ping, a
// silence) to every peer, marked with headerForwarded so that the peer
// does not pass it on again, at most maxForwards at a time, each within
// peerCheckTimeout. header, if set, adds the request's own headers.
func (e *Evaluator) forward(what, method, path string, body []byte, header func(http.Header)) {
	for _, w := range e.peers {
		select {
		case e.forwardSlots <- struct{}{}:
		default:
			e.log.Warn(what+" not forwarded: too many forwards in flight", "peer", w.peer.Name)
			continue
		}
		e.peerWG.Add(1)
		go func() {
			defer e.peerWG.Done()
			defer func() { <-e.forwardSlots }()
			ctx, cancel := context.WithTimeout(context.Background(), peerCheckTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(w.peer.URL, "/")+path, bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set(headerForwarded, e.name)
			if header != nil {
				header(req.Header)
			}
			resp, err := e.peerClient.Do(req)
			if err != nil {
				if ok, suppressed := e.limiter.Allow("forward/"+what+"/"+w.peer.Name, e.clock.Now()); ok {
					e.log.Warn(what+" not forwarded", "peer", w.peer.Name, "err", shortErr(err), "suppressed", suppressed)
				}
				return
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				if ok, suppressed := e.limiter.Allow("forward/"+what+"/"+w.peer.Name, e.clock.Now()); ok {
					e.log.Warn(what+" not taken by a peer", "peer", w.peer.Name, "status", resp.StatusCode, "suppressed", suppressed)
				}
			}
		}()
	}
}
