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
// into one batch per shard, each with a sequence number of its own, and
// each is published to bus.ResultsSubject; an empty batch goes to
// bus.LiveSubject every reporting.heartbeat. A batch leaves the spool once
// JetStream acknowledged it (a re-send it already holds is acknowledged as
// a duplicate through Nats-Msg-Id), and LastReached is the last
// acknowledgement: with a bus, "no evaluator reachable" means that
// JetStream has not taken a batch for that long.
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
	e.deliver = func(ctx context.Context, seq uint64, body []byte) (int, bool, string, string, error) {
		return r.publish(ctx, o.JetStream, timeout, seq, body, opts)
	}
	return e
}

// publish makes one attempt at publishing the batch seq, signed now, and
// answers as an evaluator would: 200 once JetStream acknowledged it, 413
// (dropped for good) for a batch larger than the server takes, an error
// for everything that may pass on a retry (no connection, no stream yet,
// no acknowledgement within timeout).
func (r *Reporter) publish(ctx context.Context, js jetstream.JetStream, timeout time.Duration, seq uint64, body []byte, opts []jetstream.PublishOpt) (int, bool, string, string, error) {
	subject, err := r.subjectOf(body)
	if err != nil {
		// Not what this reporter seals: nothing will make it publishable.
		return http.StatusBadRequest, false, "", err.Error(), nil
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	ts, sig := wire.Sign(r.key, r.clock.Now(), body)
	msg.Header.Set(wire.HeaderRegion, r.region)
	msg.Header.Set(wire.HeaderAgent, r.agent)
	msg.Header.Set(wire.HeaderTimestamp, ts)
	msg.Header.Set(wire.HeaderSignature, sig)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = js.PublishMsg(ctx, msg, append(opts, jetstream.WithMsgID(bus.MsgID(r.region, r.agent, seq)))...)
	switch {
	case err == nil:
		return http.StatusOK, true, "", "", nil
	case errors.Is(err, nats.ErrMaxPayload):
		return http.StatusRequestEntityTooLarge, false, "", err.Error(), nil
	}
	return 0, false, "", "", fmt.Errorf("publish to %s: %w", subject, err)
}

// subjectOf is where the spooled batch body goes: the liveness subject
// when it holds no result, else the results subject of its first result's
// shard (every result of a batch sealed for a bus is of that shard).
func (r *Reporter) subjectOf(body []byte) (string, error) {
	check, err := firstCheck(body)
	if err != nil {
		return "", err
	}
	if check == "" {
		return bus.LiveSubject(r.region), nil
	}
	return bus.ResultsSubject(checks.Shard(check, r.shards), r.region), nil
}

// firstCheck returns the check of a batch's first result, "" for a batch
// without results. It reads the batch's tokens up to that result only.
func firstCheck(body []byte) (string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return "", errors.New("batch is not a JSON object")
	}
	for d.More() {
		key, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("batch: %w", err)
		}
		if key != "results" {
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return "", fmt.Errorf("batch: %w", err)
			}
			continue
		}
		if t, err := d.Token(); err != nil || t != json.Delim('[') {
			return "", errors.New("batch: results is not an array")
		}
		if !d.More() {
			return "", nil
		}
		var first struct {
			Check string `json:"check"`
		}
		if err := d.Decode(&first); err != nil {
			return "", fmt.Errorf("batch: %w", err)
		}
		if first.Check == "" {
			return "", errors.New("batch: a result without a check")
		}
		return first.Check, nil
	}
	return "", errors.New("batch: no results")
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
