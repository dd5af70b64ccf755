package alerting

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// On-demand confirmation (a second opinion): when a region first fails a
// check, the evaluator asks every other live region of the check to run it
// at once instead of at its next interval, so that an outage seen
// everywhere reaches quorum within about one probe timeout.

const (
	// confirmPollWait is how long a confirmation long-poll is held open.
	confirmPollWait = 20 * time.Second
	// confirmTTL drops requests no agent collected in time: by then the
	// regular schedule has answered the question.
	confirmTTL = time.Minute
	// maxConfirmPollers bounds the long-polls held per region.
	maxConfirmPollers = 32
)

// confirmer holds pending confirmation requests per region. Its maps are
// keyed by configured regions and checks only, so they are bounded.
type confirmer struct {
	mu      sync.Mutex
	pending map[string]map[string]confirmAsk // region -> check -> the request
	wake    map[string]chan struct{}         // closed when a region gets requests
	pollers map[string]int
}

// confirmAsk is one pending request: since when, and how many runs.
type confirmAsk struct {
	at   time.Time
	runs int
}

func newConfirmer() *confirmer {
	return &confirmer{pending: map[string]map[string]confirmAsk{}, wake: map[string]chan struct{}{}, pollers: map[string]int{}}
}

// request asks region to run check now, runs times back to back.
func (c *confirmer) request(region, check string, runs int, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[region]
	if p == nil {
		p = map[string]confirmAsk{}
		c.pending[region] = p
	}
	if ask, ok := p[check]; !ok || ask.runs < runs {
		if ok {
			now = ask.at
		}
		p[check] = confirmAsk{at: now, runs: runs}
	}
	if w, ok := c.wake[region]; ok {
		close(w)
		delete(c.wake, region)
	}
}

// take returns and clears region's live requests, or a channel that is
// closed when some arrive.
func (c *confirmer) take(region string, now time.Time) (wire.ConfirmRequest, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out wire.ConfirmRequest
	for id, ask := range c.pending[region] {
		if now.Sub(ask.at) > confirmTTL {
			continue
		}
		out.Checks = append(out.Checks, id)
		if ask.runs > 1 {
			if out.Runs == nil {
				out.Runs = map[string]int{}
			}
			out.Runs[id] = ask.runs
		}
	}
	delete(c.pending, region)
	if len(out.Checks) > 0 {
		slices.Sort(out.Checks)
		return out, nil
	}
	w, ok := c.wake[region]
	if !ok {
		w = make(chan struct{})
		c.wake[region] = w
	}
	return wire.ConfirmRequest{}, w
}

// noteFirstFailures requests confirmations for the checks whose result in
// region just turned from passing (or nothing) to failing: every other
// live region of the check runs it as many times back to back as its
// failure rule needs to trip, and region itself the runs it still needs.
// Confirmation runs never ask for more confirmations.
func (e *Evaluator) noteFirstFailures(region string, firsts []string, now time.Time) {
	var asks map[string]*wire.ConfirmRequest // over the bus, by region
	for _, id := range firsts {
		c := e.plan.Load().checks[id]
		if c == nil {
			continue
		}
		need := confirmRuns(c)
		for _, other := range c.Regions {
			runs := need
			if other == region {
				runs = need - 1 // its first failure is in
			}
			if runs < 1 {
				continue
			}
			if rs := e.regions[other]; rs != nil && rs.isLive() {
				e.confirm.request(other, id, runs, now)
				if e.bus != nil {
					asks = addAsk(asks, other, id, runs)
				}
			}
		}
	}
	if len(asks) > 0 {
		e.bus.publishConfirms(asks)
	}
}

// addAsk adds to asks the request that region run check runs times.
func addAsk(asks map[string]*wire.ConfirmRequest, region, check string, runs int) map[string]*wire.ConfirmRequest {
	if asks == nil {
		asks = map[string]*wire.ConfirmRequest{}
	}
	req := asks[region]
	if req == nil {
		req = &wire.ConfirmRequest{}
		asks[region] = req
	}
	req.Checks = append(req.Checks, check)
	if runs > 1 {
		if req.Runs == nil {
			req.Runs = map[string]int{}
		}
		req.Runs[check] = runs
	}
	return asks
}

// confirmRuns is how many runs of c a region needs to trip its failure
// rule: the consecutive count, or 1 for a ratio rule, which a burst of
// runs cannot honestly satisfy (it measures a share over a window of
// scheduled probes; see docs/config.md).
func confirmRuns(c *checks.Check) int {
	if c.Failure == nil {
		return checks.DefaultConsecutive
	}
	if c.Failure.Ratio > 0 {
		return 1
	}
	return min(max(c.Failure.Consecutive, 1), wire.MaxConfirmRuns)
}

func (r *regionState) isLive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live.State == decide.RegionLive
}

// WaitConfirmations returns the checks the evaluator wants region to run
// now and how many times, waiting up to wait for some to be requested, or
// until ctx ends (then with no checks). The in-process agent of "outpost
// run" calls it; remote agents reach it through GET /v1/confirm.
func (e *Evaluator) WaitConfirmations(ctx context.Context, region string, wait time.Duration) wire.ConfirmRequest {
	req, woken := e.confirm.take(region, e.clock.Now())
	if len(req.Checks) > 0 {
		return req
	}
	t := e.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-woken:
		req, _ = e.confirm.take(region, e.clock.Now())
		return req
	case <-t.C():
	case <-ctx.Done():
	}
	return wire.ConfirmRequest{}
}

// serveConfirm answers an agent's long-poll: 200 with the checks to run
// now, 204 when none were requested within confirmPollWait, 401 when the
// poll is not signed by a key of the region, 429 when the region already
// holds too many polls. Unsigned polls take from their source's allowance
// of wrong credentials, shared with /ping's wrong tokens; once it is spent
// they are answered 429 with Retry-After. Signed polls never take from
// it, nor are they refused for it.
func (e *Evaluator) serveConfirm(w http.ResponseWriter, req *http.Request) {
	now := e.clock.Now()
	region, agent := req.Header.Get(wire.HeaderRegion), req.Header.Get(wire.HeaderAgent)
	r := e.regions[region]
	if r == nil || len(r.keys.Load().forAgent(agent)) == 0 {
		e.unsignedPoll(w, req, now, "unknown region or no agent key for it")
		return
	}
	if err := wire.Verify(r.keys.Load().forAgent(agent), req.Header.Get(wire.HeaderTimestamp), req.Header.Get(wire.HeaderSignature), wire.ConfirmPayload(region, agent), now); err != nil {
		e.unsignedPoll(w, req, now, err.Error())
		return
	}
	e.confirm.mu.Lock()
	if e.confirm.pollers[region] >= maxConfirmPollers {
		e.confirm.mu.Unlock()
		http.Error(w, "too many confirmation polls for this region", http.StatusTooManyRequests)
		return
	}
	e.confirm.pollers[region]++
	e.confirm.mu.Unlock()
	defer func() {
		e.confirm.mu.Lock()
		e.confirm.pollers[region]--
		e.confirm.mu.Unlock()
	}()
	cr := e.WaitConfirmations(req.Context(), region, confirmPollWait)
	if len(cr.Checks) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(cr)
}

// unsignedPoll answers a confirmation poll that failed authentication
// with msg: 401, or 429 once its source has spent its allowance of wrong
// credentials.
func (e *Evaluator) unsignedPoll(w http.ResponseWriter, req *http.Request, now time.Time, msg string) {
	src := sourceOf(req)
	if full, wait := e.pings.exhausted(src, now); full {
		e.refuse("poll_rate_limited", src, now)
		w.Header().Set("Retry-After", retryAfter(wait))
		http.Error(w, "too many unauthenticated requests from this address; retry later", http.StatusTooManyRequests)
		return
	}
	e.pings.wrong(src, now)
	e.refuse("poll_unauthorized", src, now)
	http.Error(w, msg, http.StatusUnauthorized)
}
