package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// agentSim plays one agent: it seals results into batches exactly as
// probes/agent's Reporter does (wire.Batch, a sequence number that starts
// from the clock in nanoseconds and only grows, the configuration digest)
// and its senders sign every request at send time with wire.Sign.
type agentSim struct {
	region, name string
	key          []byte
	digest       string
	lastSeq      uint64
}

func newAgentSim(region, name, digest string) *agentSim {
	return &agentSim{region: region, name: name, key: regionKey(region), digest: digest}
}

// nextSeq is the agent's rule: the clock in nanoseconds, or one more than
// the last if the clock has not moved past it.
func (a *agentSim) nextSeq(now time.Time) uint64 {
	s := uint64(now.UnixNano())
	if s <= a.lastSeq {
		s = a.lastSeq + 1
	}
	a.lastSeq = s
	return s
}

// seal returns the JSON of the next batch holding results.
func (a *agentSim) seal(results []wire.Result, now time.Time) []byte {
	if results == nil {
		results = []wire.Result{}
	}
	b := wire.Batch{V: wire.WireVersion, Agent: a.name, Region: a.region, Seq: a.nextSeq(now),
		ConfigDigest: a.digest, Created: now, Results: results}
	body, err := json.Marshal(b)
	if err != nil {
		panic(err) // a wire.Batch of these results always encodes
	}
	return body
}

// placeholderBatch is the JSON of a's batch of results with
// seqPlaceholder as its seq, and the offset of the seq's digits.
func placeholderBatch(a *agentSim, results []wire.Result, now time.Time) ([]byte, int) {
	b := wire.Batch{V: wire.WireVersion, Agent: a.name, Region: a.region, Seq: seqPlaceholder,
		ConfigDigest: a.digest, Created: now, Results: results}
	body, err := json.Marshal(b)
	if err != nil {
		panic(err) // a batch of these results always encodes
	}
	return body, bytes.Index(body, []byte(`"seq":`+strconv.FormatUint(seqPlaceholder, 10))) + len(`"seq":`)
}

// result is one HTTP probe's outcome as an agent reports it: a pass (200
// from the target) or a refused connection.
func (a *agentSim) result(check string, ok bool, at time.Time) wire.Result {
	r := wire.Result{V: wire.WireVersion, Check: check, Type: "http", Region: a.region, Agent: a.name,
		Time: at, OK: ok, Duration: 0.0012,
		Phases:   wire.Phases{Connect: 0.0002, Processing: 0.0008, Transfer: 0.0001},
		Observed: wire.Observed{ConnectedAddr: "127.0.0.1:9"}}
	if ok {
		r.Observed.StatusCode, r.Observed.HTTPVersion, r.Observed.BodyBytes = 200, "HTTP/1.1", 3
	} else {
		r.Reason = "dial tcp 127.0.0.1:9: connect: connection refused"
		r.Duration, r.Phases, r.Observed = 0.0003, wire.Phases{Connect: 0.0003}, wire.Observed{}
	}
	return r
}

// sendStats count what senders delivered.
type sendStats struct {
	batches, results, retries, rejected atomic.Int64
	firstReject                         atomic.Pointer[string]
}

// post delivers one batch to base, signing it now, retrying network
// errors, 429 and 5xx with a capped backoff until ctx ends, as an agent's
// sender does. A refusal (other 4xx) is counted and dropped.
func post(ctx context.Context, client *http.Client, base string, a *agentSim, body []byte, n int, st *sendStats) error {
	backoff := 100 * time.Millisecond
	for {
		err := postOnce(ctx, client, base, a, body)
		switch {
		case err == nil:
			st.batches.Add(1)
			st.results.Add(int64(n))
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if re, ok := err.(refusal); ok {
			st.rejected.Add(1)
			msg := re.Error()
			st.firstReject.CompareAndSwap(nil, &msg)
			return nil
		}
		st.retries.Add(1)
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

type refusal struct{ msg string }

func (r refusal) Error() string { return r.msg }

func postOnce(ctx context.Context, client *http.Client, base string, a *agentSim, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+wire.ResultsPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts, sig := wire.Sign(a.key, time.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "outpost-bench")
	req.Header.Set(wire.HeaderRegion, a.region)
	req.Header.Set(wire.HeaderAgent, a.name)
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("%s: %s", resp.Status, answer)
	}
	return refusal{fmt.Sprintf("%s %s: %s: %s", a.region, a.name, resp.Status, bytes.TrimSpace(answer))}
}

// sender delivers one agent's batches to one evaluator, one at a time and
// in order, like an agent's sender per evaluator. Its queue is unbounded
// (the agent's is a disk spool of 256 MiB); the deepest it got is kept.
type sender struct {
	base   string
	a      *agentSim
	client *http.Client
	st     *sendStats

	mu       sync.Mutex
	queue    []queued
	maxDepth int
	wake     chan struct{}
}

type queued struct {
	body []byte
	n    int
}

func newSender(base string, a *agentSim, client *http.Client, st *sendStats) *sender {
	return &sender{base: base, a: a, client: client, st: st, wake: make(chan struct{}, 1)}
}

func (s *sender) enqueue(body []byte, n int) {
	s.mu.Lock()
	s.queue = append(s.queue, queued{body, n})
	s.maxDepth = max(s.maxDepth, len(s.queue))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// depth returns the batches waiting now and the most that ever waited.
func (s *sender) depth() (now, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.maxDepth
}

func (s *sender) run(ctx context.Context) {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		q := s.queue[0]
		s.mu.Unlock()
		if post(ctx, s.client, s.base, s.a, q.body, q.n, s.st) != nil {
			return
		}
		s.mu.Lock()
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
	}
}

func newClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
}
