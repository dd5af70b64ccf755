package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/ratelog"
)

// With a bus, evaluators that own different shards share two JetStream
// key-value buckets (see docs/scale.md):
//
//   - the states bucket (bus.StatesBucket): per check, its status as
//     /status.json shows it, written by its owners when its verdict or
//     incidents change and at least every refresh; every evaluator follows
//     the bucket, so that its status page shows every check;
//   - the incidents bucket (bus.IncidentsBucket): per check, the decision
//     state its owners keep in their own state store (savedDecider), so
//     that the evaluator a reload hands the check to starts from it: an
//     open incident stays open under the same dedup key, is not triggered
//     again, and is resolved by the new owner.
//
// Writes are queued (coalesced by key, at most busQueueMax, the oldest
// dropped and counted) and made by one goroutine; a bus that fails or
// hangs costs a counted, rate-limited error, never an ingest or a
// decision.
//
// The handover race. A reload is not atomic across evaluators: the old
// owner may decide (and write) after the new owner has read. We chose to
// read once, at the new owner's reload, and document the order that
// makes the read right: reload the evaluators that gain shards first
// (for a moment the check has two owners, an HA pair whose pages fold
// into one PagerDuty incident through the dedup key), then those that
// lose them. In the other order the check has no owner for a moment and
// the new owner reads the old owner's last write, which its queue sends
// within milliseconds of the decision. If a write is read late anyway,
// nothing is lost, and the worst is a repeat under the same dedup key,
// which PagerDuty folds: a trigger read too late means the new owner
// starts at rest and triggers the incident itself (its own trigger, which
// it resolves later); a resolve read too late means it holds an open
// incident taken over and resolves it again on the recovery it sees.
// Watching the key after the read would close the window only for writes
// that arrive within the watch, and would let a stale owner overwrite
// what the new one decided; a single read with a known order is simpler
// to reason about.

const (
	// busQueueMax bounds the writes waiting for the bus.
	busQueueMax = 16384
	// busValueMax bounds a bucket's values; a larger one is not written.
	busValueMax = 64 << 10
	// busValueBudget and busBucketMin size the buckets (bucketBytes).
	busValueBudget = 16 << 10
	busBucketMin   = 64 << 20
	// busRetryEvery is how often a failed bus write or watch is retried.
	busRetryEvery = 2 * time.Second
	// busReasonBytes clips a shared latest result's reason.
	busReasonBytes = 300
)

// Buckets of a busOp.
const (
	bucketStatesKV = iota
	bucketIncidentsKV
)

var busBucketNames = [...]string{"states", "incidents"}

// busState is the evaluator's side of the shared buckets. A nil
// *busState (no bus) does nothing.
type busState struct {
	js         jetstream.JetStream
	n          *checks.NATSBus
	name       string
	clock      clock.Clock
	log        *slog.Logger
	limit      *ratelog.Keyed
	staleAfter time.Duration
	// refresh is how often this evaluator says it is alive (its owner
	// key); checkRefresh how often a check whose status did not change
	// is written again anyway, to heal a write that was dropped.
	refresh, checkRefresh time.Duration
	started               time.Time
	m                     busMetrics

	// full is the whole configuration in force (every shard's checks);
	// fullChecks its checks by id.
	full       atomic.Pointer[checks.Config]
	fullChecks atomic.Pointer[map[string]*checks.Check]

	ensureMu sync.Mutex
	kvs      [2]atomic.Pointer[jetstream.KeyValue]

	mu      sync.Mutex
	pending map[opKey]busOp
	order   []opRef
	seq     uint64
	// adopted are the dedup keys of incidents taken over from another
	// evaluator, whose resolve this one's pipeline must send although it
	// never sent the trigger.
	adopted map[string]bool

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// cache is what the other evaluators share (busstate_status.go).
	cacheMu sync.Mutex
	cache   map[string]sharedCheck
	ready   bool
	// alive is when each evaluator last said it was alive (its owner
	// key), by name: what a shared check's staleness is judged by.
	alive map[string]time.Time

	// published is what this evaluator last shared per check.
	pubMu     sync.Mutex
	published map[string]publishedState
	lastPrune time.Time
}

type opKey struct {
	bucket int
	key    string
}

type busOp struct {
	seq   uint64
	value []byte // nil deletes the key
}

type opRef struct {
	k   opKey
	seq uint64
}

type busMetrics struct {
	writes, errors *prometheus.CounterVec
	dropped        prometheus.Counter
	adopted        prometheus.Counter
}

// sharedIncident is a value of the incidents bucket.
type sharedIncident struct {
	Check   string       `json:"check"`
	Owner   string       `json:"owner"`
	Updated time.Time    `json:"updated"`
	Saved   savedDecider `json:"saved"`
}

// newBusState starts sharing for e, given the whole configuration full,
// when the configuration has a bus and opts.Bus is set; nil otherwise.
func newBusState(e *Evaluator, full *checks.Config, opts Options) (*busState, error) {
	if !full.Bus.Enabled() || opts.Bus == nil {
		return nil, nil
	}
	b := &busState{
		js: opts.Bus, n: full.Bus.NATS, name: e.owner, clock: e.clock, log: e.log,
		limit: ratelog.NewKeyed(rejectLogEvery), staleAfter: e.staleAfter, started: e.started,
		pending: map[opKey]busOp{}, adopted: map[string]bool{}, wake: make(chan struct{}, 1),
		cache: map[string]sharedCheck{}, published: map[string]publishedState{}, alive: map[string]time.Time{},
		refresh: max(full.Reporting.Heartbeat, time.Second), checkRefresh: busCheckRefresh,
	}
	if full.Reporting.Heartbeat == 0 {
		b.refresh = checks.DefaultHeartbeat
	}
	b.m = busMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_bus_state_writes_total",
			Help: "Writes of this evaluator's checks to the bus's shared buckets (bucket: states or incidents).",
		}, []string{"bucket"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_bus_state_errors_total",
			Help: "Failed operations on the bus's shared buckets (op: create, write, watch, seed); the write is retried.",
		}, []string{"op"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_bus_state_dropped_total",
			Help: "Writes to the shared buckets dropped, the oldest first, because too many waited for the bus.",
		}),
		adopted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outpost_bus_checks_taken_over_total",
			Help: "Checks a reload handed to this evaluator whose decision state it took from the incidents bucket.",
		}),
	}
	if r := opts.Registerer; r != nil {
		for _, c := range []prometheus.Collector{b.m.writes, b.m.errors, b.m.dropped, b.m.adopted} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range e.adoptedAtLoad {
		b.adopted[k] = true
	}
	e.adoptedAtLoad = nil
	b.setFull(full)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(2)
	go b.runWriter()
	go b.runWatcher()
	return b, nil
}

// close stops sharing; what is still queued is not written.
func (b *busState) close() {
	if b == nil {
		return
	}
	b.cancel()
	b.wg.Wait()
}

// setFull records the whole configuration in force.
func (b *busState) setFull(full *checks.Config) {
	byID := make(map[string]*checks.Check, len(full.Checks))
	for _, c := range full.Checks {
		byID[c.ID] = c
	}
	b.full.Store(full)
	b.fullChecks.Store(&byID)
	b.cacheMu.Lock()
	for id := range b.cache {
		if byID[id] == nil {
			delete(b.cache, id)
		}
	}
	b.cacheMu.Unlock()
}

// check returns the check of that id in the whole configuration.
func (b *busState) check(id string) *checks.Check {
	if b == nil {
		return nil
	}
	return (*b.fullChecks.Load())[id]
}

// connected reports whether the NATS connection is up.
func (b *busState) connected() bool {
	nc := b.js.Conn()
	return nc != nil && nc.Status() == nats.CONNECTED
}

// kv returns the bucket, creating both buckets first if they are not yet
// known; nil (with the error counted and logged) if that fails.
func (b *busState) kv(bucket int) jetstream.KeyValue {
	if p := b.kvs[bucket].Load(); p != nil {
		return *p
	}
	b.ensureMu.Lock()
	defer b.ensureMu.Unlock()
	if p := b.kvs[bucket].Load(); p != nil {
		return *p
	}
	if !b.connected() {
		return nil
	}
	for i, name := range []string{bus.StatesBucket(b.n), bus.IncidentsBucket(b.n)} {
		if b.kvs[i].Load() != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, bus.RequestTimeout)
		kv, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:       name,
			Description:  "Outpost: per-check " + busBucketNames[i] + " shared by the evaluators",
			History:      1,
			MaxValueSize: busValueMax,
			MaxBytes:     b.bucketBytes(),
			Storage:      jetstream.FileStorage,
			Replicas:     b.n.Replicas,
		})
		cancel()
		if err != nil {
			b.fail("create", "bus: the shared buckets cannot be created; retrying", err)
			return nil
		}
		b.kvs[i].Store(&kv)
	}
	return *b.kvs[bucket].Load()
}

// bucketBytes bounds each bucket: busValueBudget a check of the whole
// configuration, at least busBucketMin. A bucket that is full refuses
// writes (counted as errors) rather than drop another check's entry.
func (b *busState) bucketBytes() int64 {
	return max(busBucketMin, int64(len(b.full.Load().Checks))*busValueBudget)
}

// fail counts a failed bus operation and logs it at most once per
// rejectLogEvery.
func (b *busState) fail(op, msg string, err error) {
	if b.ctx.Err() != nil {
		return
	}
	b.m.errors.WithLabelValues(op).Inc()
	if ok, held := b.limit.Allow("bus:"+op, b.clock.Now()); ok {
		b.log.Warn(msg, "op", op, "err", err, "suppressed", held)
	}
}

// kvKey is the bucket key of check id: the id itself when NATS takes it
// as a key, else the id with each '.' written "=2E" ('=' is in no check
// id, so the two never meet).
func kvKey(id string) string {
	if !strings.HasSuffix(id, ".") && !strings.Contains(id, "..") {
		return id
	}
	return strings.ReplaceAll(id, ".", "=2E")
}

// checkOfKey undoes kvKey.
func checkOfKey(key string) string { return strings.ReplaceAll(key, "=2E", ".") }

// ownerKeyPrefix starts the states bucket's key of an evaluator's "I am
// alive": check ids have no '=', so it names no check.
const ownerKeyPrefix = "=evaluator="

// busCheckRefresh is how often a check whose shared status did not change
// is written again: one write per change, not one per check every
// heartbeat (10,000 checks at a 10s heartbeat would be 1,000 writes a
// second for nothing); its owner's key says it is alive.
const busCheckRefresh = 10 * time.Minute

// maxOwners bounds the owner keys an evaluator remembers.
const maxOwners = 1024

// ownerKey is evaluator name's key in the states bucket.
func ownerKey(name string) string { return ownerKeyPrefix + kvKey(name) }

// sharedOwner is the value of an owner key.
type sharedOwner struct {
	Owner   string    `json:"owner"`
	Updated time.Time `json:"updated"`
}

// enqueue queues a write of value (nil: a delete) under key, replacing
// one queued for the same key; past busQueueMax the oldest goes.
func (b *busState) enqueue(bucket int, key string, value []byte) {
	k := opKey{bucket, key}
	b.mu.Lock()
	b.seq++
	b.pending[k] = busOp{seq: b.seq, value: value}
	b.order = append(b.order, opRef{k, b.seq})
	dropped := 0
	for len(b.pending) > busQueueMax {
		ref := b.order[0]
		b.order = b.order[1:]
		if op, ok := b.pending[ref.k]; ok && op.seq == ref.seq {
			delete(b.pending, ref.k)
			dropped++
		}
	}
	if len(b.order) > 2*len(b.pending)+1024 {
		live := make([]opRef, 0, len(b.pending))
		for _, ref := range b.order {
			if op, ok := b.pending[ref.k]; ok && op.seq == ref.seq {
				live = append(live, ref)
			}
		}
		b.order = live
	}
	b.mu.Unlock()
	if dropped > 0 {
		b.m.dropped.Add(float64(dropped))
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take removes and returns every queued write, oldest first.
func (b *busState) take() []opRef {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]opRef, 0, len(b.pending))
	for _, ref := range b.order {
		if op, ok := b.pending[ref.k]; ok && op.seq == ref.seq {
			out = append(out, ref)
		}
	}
	b.order = b.order[:0]
	return out
}

// value returns what is queued for ref, and removes it, if nothing newer
// replaced it.
func (b *busState) value(ref opRef) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	op, ok := b.pending[ref.k]
	if !ok || op.seq != ref.seq {
		return nil, false
	}
	delete(b.pending, ref.k)
	return op.value, true
}

// requeue puts back the writes of refs that failed, unless newer ones
// replaced them meanwhile.
func (b *busState) requeue(refs []opRef, values [][]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, ref := range refs {
		if _, newer := b.pending[ref.k]; newer {
			continue
		}
		b.pending[ref.k] = busOp{seq: ref.seq, value: values[i]}
		b.order = append(b.order, ref)
	}
}

// runWriter makes the queued writes until close.
func (b *busState) runWriter() {
	defer b.wg.Done()
	for {
		retry := !b.flush()
		var t clock.Timer
		var fire <-chan time.Time
		if retry {
			t = b.clock.NewTimer(busRetryEvery)
			fire = t.C()
		}
		select {
		case <-b.ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-b.wake:
		case <-fire:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// flush writes what is queued; false if something failed and waits.
func (b *busState) flush() bool {
	refs := b.take()
	if len(refs) == 0 {
		return true
	}
	var kvs [2]jetstream.KeyValue
	if b.connected() {
		kvs[0], kvs[1] = b.kv(bucketStatesKV), b.kv(bucketIncidentsKV)
	}
	for i, ref := range refs {
		kv := kvs[ref.k.bucket]
		if kv == nil {
			b.putBack(refs[i:])
			return false
		}
		value, ok := b.value(ref)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, bus.RequestTimeout)
		var err error
		if value == nil {
			err = kv.Delete(ctx, ref.k.key)
		} else {
			_, err = kv.Put(ctx, ref.k.key, value)
		}
		cancel()
		if err != nil {
			b.requeue([]opRef{ref}, [][]byte{value})
			b.putBack(refs[i+1:])
			b.fail("write", "bus: a check's shared state not written; retrying", err)
			return false
		}
		b.m.writes.WithLabelValues(busBucketNames[ref.k.bucket]).Inc()
	}
	return true
}

// putBack returns refs, not yet attempted, to the queue's order.
func (b *busState) putBack(refs []opRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.order = append(refs[:len(refs):len(refs)], b.order...)
}

// saveIncident queues check id's decision state for the incidents bucket:
// its record, or the record's removal once the check is at rest. Like the
// state store's, it does no I/O.
func (b *busState) saveIncident(id string, saved savedDecider) {
	if b == nil {
		return
	}
	if saved.atRest() {
		b.enqueue(bucketIncidentsKV, kvKey(id), nil)
		return
	}
	data, err := json.Marshal(sharedIncident{Check: id, Owner: b.name, Updated: b.clock.Now(), Saved: saved})
	if err != nil || len(data) > busValueMax {
		b.fail("write", "bus: a check's decision state is too large to share", errors.New("value too large"))
		return
	}
	b.enqueue(bucketIncidentsKV, kvKey(id), data)
}

// sharedCheck is a check's status as shared in the states bucket: what
// other evaluators show of it.
type sharedCheck struct {
	Owner   string             `json:"owner"`
	Updated time.Time          `json:"updated"`
	Status  status.CheckStatus `json:"status"`
}
