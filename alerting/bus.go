package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/ratelog"
	"github.com/outposthq/outpost/probes/wire"
)

// With a bus (cfg.Bus and Options.Bus), the evaluator consumes the results
// of the shards it owns, and every region's liveness messages, through a
// durable JetStream pull consumer of its own (bus.ConsumerName of its
// name). Each message is a signed batch, verified and ingested by the
// same code as a batch over HTTP; only the clock-skew check of its
// timestamp is made against the message's stored time, so that a backlog
// consumed after a restart still verifies.

const (
	// busAckWait is how long the server waits for a message's ack before
	// it delivers it again: far above what one batch takes to ingest.
	busAckWait = 30 * time.Second
	// busMaxAckPending bounds the messages delivered and not yet acked.
	busMaxAckPending = 1024
	// busPullMax bounds the messages the client buffers ahead of ingest
	// (each at most wire.MaxBatchBytes).
	busPullMax = 64
	// busRetryDelay is when a message that could not be recorded is
	// delivered again.
	busRetryDelay = 5 * time.Second
	// busBackoffMax bounds the wait between attempts to reach the bus.
	busBackoffMax = 30 * time.Second
	// busLogEvery is the most often one kind of bus trouble is logged.
	busLogEvery = 10 * time.Second
	// busWorkers ingest messages in parallel, each agent's on one worker
	// in stream order (see lanes).
	busWorkers = 16
)

// Outcomes of outpost_bus_messages_total; label values come from this list
// only.
const (
	busApplied      = "applied"
	busDuplicate    = "duplicate"
	busRetried      = "retried"
	busUnauthorized = "unauthorized"
	busReplay       = "replay"
	busInvalid      = "invalid"
	busTooLarge     = "too_large"
)

var busOutcomes = []string{busApplied, busDuplicate, busRetried, busUnauthorized, busReplay, busInvalid, busTooLarge}

// busConsumer is the evaluator's side of the bus.
type busConsumer struct {
	e    *Evaluator
	js   jetstream.JetStream
	nats *checks.NATSBus
	name string // the durable consumer's
	// wake is signalled by a reload: the shards owned may have moved.
	wake chan struct{}
	log  *ratelog.Keyed

	messages map[string]prometheus.Counter
	pending  prometheus.Gauge
	confirms prometheus.Counter

	// trouble is why the consumer is not consuming (its last error),
	// nil while it is; blindSince (the liveness loop's) is when the
	// evaluator last found it, or the connection, not working.
	trouble    atomic.Pointer[string]
	blindSince time.Time
}

// newBusConsumer returns the evaluator's consumer, or nil without a bus.
func newBusConsumer(e *Evaluator, cfg *checks.Config, js jetstream.JetStream, reg prometheus.Registerer) (*busConsumer, error) {
	if !cfg.Bus.Enabled() || js == nil {
		return nil, nil
	}
	c := &busConsumer{
		e: e, js: js, nats: cfg.Bus.NATS,
		name: bus.ConsumerName(e.owner),
		wake: make(chan struct{}, 1),
		log:  ratelog.NewKeyed(busLogEvery),
	}
	if e.owner == "" {
		c.name = bus.ConsumerName("evaluator")
	}
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "outpost_bus_messages_total",
		Help: "Messages consumed from the bus, by what became of them: applied, duplicate (acked, not applied again), retried (delivered again later), or refused for good: unauthorized, replay, invalid, too_large.",
	}, []string{"outcome"})
	c.messages = map[string]prometheus.Counter{}
	for _, o := range busOutcomes {
		c.messages[o] = messages.WithLabelValues(o)
	}
	c.pending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "outpost_bus_consumer_pending",
		Help: "Messages of this evaluator's shards in the stream that its consumer has not been delivered yet, as of the latest message: its lag.",
	})
	c.confirms = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "outpost_bus_confirm_requests_total",
		Help: "Confirmation requests published to regions' agents over the bus.",
	})
	if reg != nil {
		for _, m := range []prometheus.Collector{messages, c.pending, c.confirms} {
			if err := reg.Register(m); err != nil {
				return nil, fmt.Errorf("registering bus metrics: %w", err)
			}
		}
	}
	return c, nil
}

// busReloaded tells the consumer that the configuration changed, so that
// it consumes the shards the new one gives this evaluator. It does not
// wait.
func (e *Evaluator) busReloaded() {
	if e.bus == nil {
		return
	}
	select {
	case e.bus.wake <- struct{}{}:
	default:
	}
}

// filters are the subjects the consumer must read: the results of every
// shard the configuration in force gives this evaluator, and every
// region's liveness. Sorted.
func (c *busConsumer) filters() []string {
	b := c.e.config().Bus
	owned, _ := b.Owned(c.e.owner)
	if owned.Equal(checks.AllShards(c.nats.Shards)) {
		return []string{bus.LivePrefix + ">", bus.ResultsPrefix + ">"}
	}
	out := []string{bus.LivePrefix + ">"}
	for _, s := range owned.List() {
		out = append(out, bus.ShardFilter(s))
	}
	slices.Sort(out)
	return out
}

// run consumes until ctx is done, reconnecting the consumer after every
// failure with a bounded backoff.
func (c *busConsumer) run(ctx context.Context) {
	wait := time.Second
	for {
		consumed, err := c.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		if consumed {
			wait = time.Second
		}
		if err == nil { // the owned shards moved: consume them at once
			continue
		}
		why := err.Error()
		c.trouble.Store(&why)
		if ok, suppressed := c.log.Allow("consume", time.Now()); ok {
			c.e.log.Error("bus: not consuming; retrying", "consumer", c.name, "err", err, "retry_in", wait, "suppressed", suppressed)
		}
		// Real time: this waits for the network, not for a decision.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, busBackoffMax)
	}
}

// consume ensures the stream and the consumer, and consumes until ctx is
// done (nil), the owned shards change (nil) or the consumer fails. It
// reports whether it got as far as consuming.
func (c *busConsumer) consume(ctx context.Context) (bool, error) {
	if err := c.ensureStream(ctx); err != nil {
		return false, err
	}
	filters := c.filters()
	cons, err := c.ensureConsumer(ctx, filters)
	if err != nil {
		return false, err
	}
	failed := make(chan error, 1)
	l := c.startLanes()
	cc, err := cons.Consume(l.dispatch,
		jetstream.PullMaxMessages(busPullMax),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				select {
				case failed <- err:
				default:
				}
				return
			}
			if ok, suppressed := c.log.Allow("pull", time.Now()); ok {
				c.e.log.Warn("bus: consumer trouble", "consumer", c.name, "err", err, "suppressed", suppressed)
			}
		}))
	if err != nil {
		l.close()
		return false, fmt.Errorf("bus: consume %s: %w", c.name, err)
	}
	defer c.stop(cc, l)
	c.trouble.Store(nil)
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-failed:
			return true, fmt.Errorf("bus: consumer %s: %w", c.name, err)
		case <-c.wake:
			if !slices.Equal(c.filters(), filters) {
				return true, nil
			}
		}
	}
}

// stop lets the messages already delivered to cc (and queued on l) be ingested and acked,
// within a bound, so that none waits out busAckWait to come again.
func (c *busConsumer) stop(cc jetstream.ConsumeContext, l *lanes) {
	nc := c.js.Conn()
	if !nc.IsConnected() {
		// No ack could go out: what was delivered comes again.
		cc.Stop()
		l.close()
		return
	}
	cc.Drain()
	t := time.NewTimer(bus.RequestTimeout)
	defer t.Stop()
	select {
	case <-cc.Closed():
	case <-t.C:
		cc.Stop()
	}
	l.close()
	_ = nc.FlushTimeout(bus.RequestTimeout) // the acks
}

// ensureStream creates the stream, or updates it when its configuration
// is not bus.StreamConfig's: every evaluator starts with it, and an update
// when nothing changed is churn on the servers.
func (c *busConsumer) ensureStream(ctx context.Context) error {
	want := bus.StreamConfig(c.nats)
	sctx, cancel := context.WithTimeout(ctx, bus.RequestTimeout)
	s, err := c.js.Stream(sctx, want.Name)
	cancel()
	if err == nil {
		have := s.CachedInfo().Config
		if slices.Equal(have.Subjects, want.Subjects) && have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes &&
			have.MaxMsgSize == want.MaxMsgSize && have.Duplicates == want.Duplicates && have.Replicas == want.Replicas &&
			have.Storage == want.Storage && have.Retention == want.Retention && have.Discard == want.Discard {
			return nil
		}
	}
	_, err = bus.EnsureStream(ctx, c.js, c.nats)
	return err
}

// ensureConsumer returns the durable consumer reading filters, creating it
// or moving its filters. A new consumer starts from messages stored within
// stale_after of now: older ones could not make a region live, and their
// results would be late.
func (c *busConsumer) ensureConsumer(ctx context.Context, filters []string) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, bus.RequestTimeout)
	defer cancel()
	cons, err := c.js.Consumer(ctx, c.nats.Stream, c.name)
	var cfg jetstream.ConsumerConfig
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		start := time.Now().Add(-c.e.staleAfter)
		cfg = jetstream.ConsumerConfig{
			Durable:       c.name,
			Description:   "Outpost evaluator " + c.e.owner,
			DeliverPolicy: jetstream.DeliverByStartTimePolicy,
			OptStartTime:  &start,
		}
	case err != nil:
		return nil, fmt.Errorf("bus: consumer %s: %w", c.name, err)
	default:
		cfg = cons.CachedInfo().Config
		have := slices.Clone(cfg.FilterSubjects)
		if cfg.FilterSubject != "" {
			have = append(have, cfg.FilterSubject)
		}
		slices.Sort(have)
		if slices.Equal(have, filters) && cfg.AckPolicy == jetstream.AckExplicitPolicy &&
			cfg.MaxAckPending == busMaxAckPending && cfg.AckWait == busAckWait {
			return cons, nil
		}
		c.e.log.Info("bus: consumer follows the shard map", "consumer", c.name, "subjects", len(filters))
	}
	cfg.FilterSubject = ""
	cfg.FilterSubjects = filters
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	cfg.AckWait = busAckWait
	cfg.MaxAckPending = busMaxAckPending
	cfg.MaxDeliver = -1
	cons, err = c.js.CreateOrUpdateConsumer(ctx, c.nats.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s: %w", c.name, err)
	}
	return cons, nil
}

// msgHeaders adapts a message's headers, which may be nil.
type msgHeaders map[string][]string

func (h msgHeaders) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// checkBus is the liveness loop's look at the bus, at now. While results
// cannot be consumed (the connection is down, or the consumer fails),
// this evaluator hears from no region through no fault of theirs: it
// counts as behind (see pace.go), so that no region is declared STALE
// for a silence the evaluator cannot vouch for, until maxHold; and once
// that lasts stale_after, the fault is the bus's, on /healthz and paged
// under this evaluator's name.
func (e *Evaluator) checkBus(now time.Time) {
	c := e.bus
	if c == nil {
		return
	}
	var why string
	if nc := c.js.Conn(); !nc.IsConnected() {
		why = "not connected to NATS (" + nc.Status().String() + ")"
	} else if t := c.trouble.Load(); t != nil {
		why = *t
	}
	if why == "" {
		c.blindSince = time.Time{}
		if e.faults.ok(faultBus, "consumer", now) {
			e.log.Info("bus: consuming again", "consumer", c.name)
		}
		return
	}
	if c.blindSince.IsZero() {
		c.blindSince = now
	}
	if now.Sub(c.blindSince) >= e.staleAfter && e.faults.fail(faultBus, "consumer", errors.New(why), now) {
		e.log.Error("bus: this evaluator cannot consume results; regions are not blamed for the silence", "consumer", c.name, "since", c.blindSince, "err", why)
	}
}

// busBlindSince is since when the liveness loop has found the bus not
// working, zero while it works or without one.
func (e *Evaluator) busBlindSince() time.Time {
	if e.bus == nil {
		return time.Time{}
	}
	return e.bus.blindSince
}

// lanes ingest messages in parallel while keeping each agent's in stream
// order: an agent's messages always go to the same lane, and a lane
// ingests one at a time. One message at a time for the whole consumer
// would make every batch wait for the one before it to be durable (one
// fsync each); agents in parallel share their commits, as batches over
// HTTP from many agents do.
type lanes struct {
	c     *busConsumer
	queue []chan jetstream.Msg
	done  sync.WaitGroup
	// mu orders dispatch before close: the client may call dispatch
	// after being told to stop.
	mu     sync.RWMutex
	closed bool
}

func (c *busConsumer) startLanes() *lanes {
	l := &lanes{c: c, queue: make([]chan jetstream.Msg, busWorkers)}
	for i := range l.queue {
		// Each lane holds what the client buffers at most: a full lane
		// makes dispatch wait, and the pull with it.
		l.queue[i] = make(chan jetstream.Msg, busPullMax)
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for msg := range l.queue[i] {
				c.handle(msg)
			}
		}()
	}
	return l
}

// dispatch is the consumer's callback: it queues msg on its agent's lane.
func (l *lanes) dispatch(msg jetstream.Msg) {
	h := msgHeaders(msg.Headers())
	f := fnv.New32a()
	f.Write([]byte(h.Get(wire.HeaderRegion)))
	f.Write([]byte{0})
	f.Write([]byte(h.Get(wire.HeaderAgent)))
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return // not acked: the server delivers it again
	}
	l.queue[f.Sum32()%uint32(len(l.queue))] <- msg
}

// close lets the lanes finish what they hold, once the consumer delivers
// no more.
func (l *lanes) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, q := range l.queue {
			close(q)
		}
	}
	l.mu.Unlock()
	l.done.Wait()
}

// handle ingests one message and settles it: applied or duplicate, ack;
// not recorded, delivered again after busRetryDelay; refused, terminated
// (never delivered again).
func (c *busConsumer) handle(msg jetstream.Msg) {
	e := c.e
	now := e.clock.Now()
	h := msgHeaders(msg.Headers())
	name := h.Get(wire.HeaderRegion)
	r := e.regions[name]
	err := c.receive(msg, h, r, name, now)
	label := r.label()
	o := e.record(label, err, now)
	var settle error
	switch outcome := busOutcome(o, err); outcome {
	case busApplied, busDuplicate:
		c.messages[outcome].Inc()
		settle = msg.Ack()
	case busRetried:
		c.messages[outcome].Inc()
		settle = msg.NakWithDelay(busRetryDelay)
	default:
		c.messages[outcome].Inc()
		settle = msg.TermWithReason(outcome)
	}
	if settle != nil {
		if ok, suppressed := c.log.Allow("settle", time.Now()); ok {
			e.log.Warn("bus: message not settled; the server delivers it again", "consumer", c.name, "err", settle, "suppressed", suppressed)
		}
	}
}

// receive checks that the message's subject and region header agree, and
// verifies and ingests its batch as HTTP does, with the clock-skew check
// against the time the stream stored it.
func (c *busConsumer) receive(msg jetstream.Msg, h msgHeaders, r *regionState, name string, now time.Time) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("%w: not a JetStream message: %w", ErrInvalidBatch, err)
	}
	c.pending.Set(float64(md.NumPending))
	shard, region, ok := bus.ParseSubject(msg.Subject())
	switch {
	case !ok:
		return fmt.Errorf("%w: subject %s is not a results or liveness subject", ErrInvalidBatch, quote(msg.Subject()))
	case region != name:
		return fmt.Errorf("%w: the %s header %s does not match the subject's region %s", ErrUnauthorized, wire.HeaderRegion, quote(name), quote(region))
	case shard >= c.nats.Shards:
		return fmt.Errorf("%w: subject %s names shard %d of %d", ErrInvalidBatch, quote(msg.Subject()), shard, c.nats.Shards)
	}
	body := msg.Data()
	if len(body) > wire.MaxBatchBytes {
		return fmt.Errorf("%w: body of %d bytes is over the limit of %d", ErrTooLarge, len(body), wire.MaxBatchBytes)
	}
	keys, err := c.e.authenticate(h, r, name, md.Timestamp)
	if err != nil {
		return err
	}
	return c.e.ingestSigned(r, keys, h, body, md.Timestamp, now)
}

// busOutcome is the outpost_bus_messages_total outcome of an ingest.
func busOutcome(o outcome, err error) string {
	switch o {
	case outcomeOK:
		return busApplied
	case outcomeDuplicate:
		return busDuplicate
	case outcomeError:
		return busRetried
	case outcomeTooLarge:
		return busTooLarge
	case outcomeBadRequest:
		return busInvalid
	}
	if errors.Is(err, ErrReplay) {
		return busReplay
	}
	return busUnauthorized
}

// publishConfirms asks the agents of each region of asks to run the checks
// now, over core NATS (no JetStream: a request nobody hears in time is
// answered by the regular schedule). Publishing only queues in the
// connection's bounded buffer.
func (c *busConsumer) publishConfirms(asks map[string]*wire.ConfirmRequest) {
	nc := c.js.Conn()
	for region, req := range asks {
		slices.Sort(req.Checks)
		data, err := json.Marshal(req)
		if err == nil {
			err = nc.Publish(bus.ConfirmSubject(region), data)
		}
		if err != nil {
			if ok, suppressed := c.log.Allow("confirm", time.Now()); ok {
				c.e.log.Warn("bus: confirmation request not published", "region", region, "err", err, "suppressed", suppressed)
			}
			continue
		}
		c.confirms.Inc()
	}
}
