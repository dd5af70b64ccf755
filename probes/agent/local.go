package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// Applier takes a batch in process, as an evaluator does one received
// over HTTP; *alerting.Evaluator satisfies it. It may keep b's results:
// Local hands each batch over and never touches it again.
type Applier interface {
	Apply(b wire.Batch) error
}

// Local is the reporter of the in-process agent of "outpost run": it hands
// the agent's results to an evaluator in batches, exactly as a remote
// agent's would arrive (every batch_delay or batch_size results, and an
// empty batch every heartbeat), without signatures, HTTP or a spool.
type Local struct {
	ev                   Applier
	region, name, digest string
	reporting            checks.Reporting
	log                  *slog.Logger
	clock                clock.Clock

	in chan wire.Result

	seq uint64

	// mu guards the refusal count, logged at most once a minute.
	mu         sync.Mutex
	refused    int
	lastLogged time.Time
}

// NewLocal returns the in-process reporter of region for cfg, which
// applies its batches to ev as agent "local". Zero fields of
// cfg.Reporting take the checks package's defaults, as for a Reporter.
// clk drives batching, heartbeats and batch times; nil means clock.Real.
func NewLocal(ev Applier, cfg *checks.Config, region string, log *slog.Logger, clk clock.Clock) *Local {
	if clk == nil {
		clk = clock.Real{}
	}
	rep := withBatchDefaults(cfg.Reporting)
	return &Local{ev: ev, region: region, name: "local", digest: cfg.Digest, reporting: rep, log: log, clock: clk,
		in: make(chan wire.Result, 4*rep.BatchSize)}
}

// Submit queues a result; when the queue is full the result is dropped
// and counted rather than stalling the probe that made it.
func (l *Local) Submit(r wire.Result) {
	select {
	case l.in <- r:
	default:
		l.refuse(l.clock.Now(), 1, errors.New("local result queue full"))
	}
}

// Run batches until ctx ends, then applies what it holds.
func (l *Local) Run(ctx context.Context) {
	var pending []wire.Result
	// delay runs while results are pending: it fires batch_delay after the
	// first of them arrived. nil when nothing is pending.
	var delay clock.Timer
	stopDelay := func() {
		if delay != nil {
			delay.Stop()
			delay = nil
		}
	}
	defer stopDelay()
	delayC := func() <-chan time.Time {
		if delay == nil {
			return nil
		}
		return delay.C()
	}
	// The heartbeat ticks on a fixed grid from the start, as a ticker
	// would, skipping ticks it was too busy to take.
	every := l.reporting.Heartbeat
	nextBeat := l.clock.Now().Add(every)
	heartbeat := l.clock.NewTimer(every)
	defer func() { heartbeat.Stop() }()
	sent := false
	flush := func() {
		stopDelay()
		l.apply(pending)
		pending, sent = nil, true
	}
	flush() // announce the region at once
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case r := <-l.in:
					pending = append(pending, r)
				default:
					if len(pending) > 0 {
						flush()
					}
					return
				}
			}
		case r := <-l.in:
			if len(pending) == 0 {
				stopDelay()
				delay = l.clock.NewTimer(l.reporting.BatchDelay)
			}
			pending = append(pending, r)
			if len(pending) >= l.reporting.BatchSize {
				flush()
			}
		case <-delayC():
			delay = nil
			if len(pending) > 0 {
				flush()
			}
		case <-heartbeat.C():
			if !sent {
				flush()
			}
			sent = false
			now := l.clock.Now()
			for !nextBeat.After(now) {
				nextBeat = nextBeat.Add(every)
			}
			heartbeat = l.clock.NewTimer(nextBeat.Sub(now))
		}
	}
}

func (l *Local) apply(results []wire.Result) {
	now := l.clock.Now()
	l.seq = max(l.seq+1, uint64(now.UnixNano()))
	for i := range results {
		results[i].Agent = l.name
	}
	err := l.ev.Apply(wire.Batch{V: wire.WireVersion, Agent: l.name, Region: l.region, Seq: l.seq,
		ConfigDigest: l.digest, Created: now, Results: results})
	if err != nil {
		l.refuse(now, len(results), err)
	}
}

// refuse logs refused results at most once a minute, with a count.
func (l *Local) refuse(now time.Time, n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused += n
	if now.Sub(l.lastLogged) >= time.Minute {
		l.log.Error("local results not recorded", "err", err, "results_since_last_log", l.refused)
		l.lastLogged, l.refused = now, 0
	}
}
