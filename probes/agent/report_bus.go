package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/wire"
)

// BusLabel is the evaluator label of the bus in the reporter's metrics and
// logs, and the name of its spool's subdirectory.
const BusLabel = "nats"

// BusOptions make a Reporter publish to NATS JetStream (see package bus)
// instead of POSTing to evaluators. Everything else stays: batches are
// sealed, spooled under SpoolDir/nats and delivered in order by one sender,
// with the same retries and metrics (labelled evaluator="nats").
//
// A sealed batch is split by shard (checks.Shard of each result's check)
// into one batch per shard, each with a sequence number of its own and
// bound for bus.ResultsSubject; an empty batch, bound for
// bus.LiveSubject, is sealed every reporting.heartbeat. The parts of one
// sealed batch are spooled together, in one file (one write and sync,
// however many shards), and published one at a time, in order, each
// awaiting its acknowledgement; the file leaves the spool once every part
// was acknowledged (a re-send JetStream already holds is acknowledged as a
// duplicate through Nats-Msg-Id). LastReached is the last time a sealed
// batch was wholly acknowledged: with a bus, "no evaluator reachable"
// means that JetStream has not taken the agent's batches for that long.
// outpost_reporter_batches_sent_total counts sealed batches, not messages.
type BusOptions struct {
	// JetStream publishes; the caller connects (bus.Connect) and closes.
	JetStream jetstream.JetStream
	// Stream, when set, is the stream every publish must land in
	// (checks.NATSBus.Stream); a subject some other stream captures is
	// then refused by the server instead of stored there.
	Stream string
	// Shards is checks.NATSBus.Shards.
	Shards int
	// Timeout bounds one publish and its acknowledgement; zero means
	// bus.RequestTimeout.
	Timeout time.Duration
}

func (o BusOptions) check() error {
	switch {
	case o.JetStream == nil:
		return errors.New("bus: no JetStream connection")
	case o.Shards < 1 || o.Shards > checks.MaxShards:
		return fmt.Errorf("bus: %d shards, want 1 to %d", o.Shards, checks.MaxShards)
	}
	return nil
}

// newBusDestination is the one destination of a reporter with a bus.
func (r *Reporter) newBusDestination(o BusOptions) *evaluator {
	r.shards = o.Shards
	e := r.newDestination(BusLabel, filepath.Join(r.spoolDir, BusLabel))
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = bus.RequestTimeout
	}
	opts := []jetstream.PublishOpt{}
	if o.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(o.Stream))
	}
	// acked, owned by the sender, is the highest part acknowledged: a
	// retry of a spooled batch resumes after it. Sequence numbers increase
	// across batches, so it holds across them too.
	var acked uint64
	e.deliver = func(ctx context.Context, _ uint64, data []byte) (int, bool, string, string, error) {
		var parts []busPart
		if err := json.Unmarshal(data, &parts); err != nil || len(parts) == 0 {
			// Not what this reporter spools: nothing will make it
			// publishable.
			return http.StatusBadRequest, false, "", "not a batch sealed for the bus", nil
		}
		for _, p := range parts {
			if p.Seq <= acked {
				continue
			}
			// Every acknowledgement counts as reaching the bus, and every
			// part has its own deadline, however many a batch has.
			e.answerDue.Store(r.clock.Now().Add(timeout).UnixNano())
			err := r.publish(ctx, o.JetStream, timeout, p, opts)
			if err == nil {
				r.lastReached.Store(r.clock.Now().UnixNano())
			}
			if errors.Is(err, nats.ErrMaxPayload) {
				// This part only; the others go on.
				e.rejected.WithLabelValues(strconv.Itoa(http.StatusRequestEntityTooLarge)).Inc()
				if ok, n := e.rejectLog.Allow(r.clock.Now()); ok {
					e.log.Error("a batch is larger than the NATS server takes: dropped it", "seq", p.Seq, "bytes", len(p.Batch), "refused_since_last_log", n)
				}
			} else if err != nil {
				return 0, false, "", "", err
			}
			acked = p.Seq
		}
		return http.StatusOK, true, "", "", nil
	}
	return e
}

// busPart is one message of a batch sealed for the bus, as spooled: the
// parts of one sealed batch are a JSON array of them.
type busPart struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Batch   json.RawMessage `json:"batch"` // the message body, a wire.Batch
}

// sealForBus is seal with a bus: results split by shard, or the liveness
// signal when there are none, each part numbered, all spooled as one
// entry under the number of the last part (so that a restarted reporter
// numbers above them all). r.seqMu is held.
func (r *Reporter) sealForBus(results []wire.Result, now time.Time) {
	groups := [][]wire.Result{nil}
	if len(results) > 0 {
		groups = splitByShard(results, r.shards)
	}
	var spooled bytes.Buffer
	var last uint64
	n := 0
	spooled.WriteByte('[')
	for _, g := range groups {
		subject := bus.LiveSubject(r.region)
		if len(g) > 0 {
			subject = bus.ResultsSubject(checks.Shard(g[0].Check, r.shards), r.region)
		}
		r.encodeLocked(g, now, func(seq uint64, body []byte, results []wire.Result) {
			if last != 0 {
				spooled.WriteByte(',')
			}
			// Written by hand: json.Marshal would scan and copy every
			// body again. A subject is letters, digits, '.', '_' and '-'.
			fmt.Fprintf(&spooled, `{"seq":%d,"subject":%q,"batch":`, seq, subject)
			spooled.Write(body)
			spooled.WriteByte('}')
			last = seq
			n += len(results)
		})
	}
	spooled.WriteByte(']')
	if last == 0 {
		return // nothing could be encoded: dropped and counted
	}
	r.metrics.results.Add(float64(n))
	r.spoolBatch(r.evals[0], last, spooled.Bytes(), now)
}

// publish makes one attempt at publishing p, signed now, and returns nil
// once JetStream acknowledged it, nats.ErrMaxPayload (wrapped) for a
// message larger than the server takes, and another error for all that
// may pass on a retry (no connection, no stream yet, no acknowledgement
// within timeout).
func (r *Reporter) publish(ctx context.Context, js jetstream.JetStream, timeout time.Duration, p busPart, opts []jetstream.PublishOpt) error {
	msg := nats.NewMsg(p.Subject)
	msg.Data = p.Batch
	ts, sig := wire.Sign(r.key, r.clock.Now(), p.Batch)
	msg.Header.Set(wire.HeaderRegion, r.region)
	msg.Header.Set(wire.HeaderAgent, r.agent)
	msg.Header.Set(wire.HeaderTimestamp, ts)
	msg.Header.Set(wire.HeaderSignature, sig)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := js.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgID(bus.MsgID(r.region, r.agent, p.Seq)))...); err != nil {
		return fmt.Errorf("publish to %s: %w", p.Subject, err)
	}
	return nil
}

// splitByShard groups results by the shard of their check, shards in
// ascending order, results in their order within each.
func splitByShard(results []wire.Result, shards int) [][]wire.Result {
	of := make([]int, len(results))
	for i, res := range results {
		of[i] = checks.Shard(res.Check, shards)
	}
	order := make([]int, len(results))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return of[a] - of[b] })
	var parts [][]wire.Result
	for i, idx := range order {
		if i == 0 || of[idx] != of[order[i-1]] {
			parts = append(parts, nil)
		}
		parts[len(parts)-1] = append(parts[len(parts)-1], results[idx])
	}
	return parts
}
