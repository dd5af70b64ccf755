// Package alerting is Outpost's evaluator, the shell around the pure parts
// below it: it ingests the result batches agents send (authenticated,
// bounded, idempotent by agent and sequence), keeps a bounded window of
// recent results and a shape tracker per (check, region), tracks which
// regions are reporting at all, serves heartbeat pings and the status page,
// watches its peers, and hands what decide concludes to a notify.Notifier
// (in production the outbox). It holds no lock while it calls the notifier
// or writes a file.
//
// Everything the evaluator keeps in memory is keyed by the configuration
// (its checks and regions) or bounded (agent names per region), so input
// cannot grow it. Time comes from an injected clock.Clock.
//
// It takes from probes only the L0 packages (wire, clock, ratelog,
// atomicfile), never a prober or the agent; see docs/code-map.md.
package alerting

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/console"
	"github.com/outposthq/outpost/alerting/silence"
	"github.com/outposthq/outpost/alerting/state"
	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/atomicfile"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/ratelog"
)

// Errors Apply returns, wrapped with the precise reason; the HTTP handler
// answers them with the status in parentheses.
var (
	// ErrInvalidBatch: the batch breaks the schema or names checks and
	// regions the configuration does not have (400).
	ErrInvalidBatch = errors.New("invalid batch")
	// ErrUnauthorized: unknown region or agent, or a bad signature (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrReplay: the sequence number is below the agent's highest and not
	// one recently accepted (401).
	ErrReplay = errors.New("replayed or out-of-order sequence")
	// ErrDuplicate: the batch was accepted before and was not applied
	// again. Callers treat it as success (200 "duplicate").
	ErrDuplicate = errors.New("duplicate batch")
	// ErrTooLarge: the body exceeds wire.MaxBatchBytes (413).
	ErrTooLarge = errors.New("batch too large")
	// ErrUnavailable: the batch could not be recorded durably; nothing of
	// it was applied and the sender should retry (503).
	ErrUnavailable = errors.New("batch not recorded")
)

// Options are what an Evaluator needs from its environment. Every field is
// optional.
type Options struct {
	// Clock is the time source of every decision; nil means RealClock.
	Clock clock.Clock
	// DataDir, when set, is where the evaluator keeps what must survive a
	// restart: the sequence numbers accepted from each agent, so that a
	// replay is refused after a restart too, and in the state store each
	// check's incident state and heartbeat pings. Close the evaluator to
	// close them.
	DataDir string
	// Registerer receives the evaluator's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives the evaluator's logs; nil discards them.
	Logger *slog.Logger
	// Notifier receives region liveness notifications; nil means a
	// ConsoleNotifier on Logger.
	Notifier notify.Notifier
	// Name is this evaluator's name among cfg.Peers; it watches the
	// others. Empty watches every peer listed.
	Name string
	// Bus, with cfg.Bus set, is the JetStream the evaluator consumes its
	// shards' results from and shares its checks' states through (see
	// probes/bus); the caller connects it and closes it after Close.
	Bus jetstream.JetStream
	// PeerTLS, when set, is the TLS configuration of the health checks of
	// peers served over HTTPS (a CA to trust, a client certificate for
	// peers that require one); nil means the system's CAs.
	PeerTLS *tls.Config
}

// defaultStaleAfter applies to configs built by hand without a reporting
// block; loaded configs always have one.
const defaultStaleAfter = 3 * checks.DefaultHeartbeat

// rejectLogEvery is the most often one kind of refusal is logged per region.
const rejectLogEvery = 10 * time.Second

// Evaluator ingests result batches and keeps per-(check, region) windows and
// region liveness. Its methods are safe for concurrent use.
type Evaluator struct {
	// plan is what the configuration makes of the evaluator; Reload
	// replaces it (see reload.go).
	plan       atomic.Pointer[plan]
	clock      clock.Clock
	log        *slog.Logger
	notifier   notify.Notifier
	metrics    *metrics
	store      *seqStore // in state; nil without a DataDir
	started    time.Time
	staleAfter time.Duration

	// regions are built by New and never change: a reload may not add
	// or remove one.
	regions    map[string]*regionState
	regionList []*regionState // in config order

	// owner is the name the bus's shard map knows this evaluator by
	// (Options.Name); with a bus, the plan holds only its shards' checks.
	owner string
	// bus consumes the owned shards' results; nil without a bus.
	bus *busConsumer
	// shared, with a bus, shares the checks' states and incidents with
	// the evaluators of other shards (busstate.go); nil without one.
	shared *busState
	// adoptedAtLoad are the adopted dedup keys of the incidents restored
	// from the data dir, for shared (see savedDecider.Adopted).
	adoptedAtLoad []string

	bodies   sync.Pool // *[]byte for request bodies
	decoders sync.Pool // *fastDecoder
	limiter  *ratelog.Keyed
	confirm  *confirmer
	// guard and pings bound what unauthenticated callers cost (limits.go,
	// pinglimit.go); refusalLog rate-limits their logs.
	guard      *guard
	pings      *pingLimiter
	refusalLog *ratelog.Keyed

	// reloadMu serialises reloads.
	reloadMu  sync.Mutex
	lastSweep time.Time // used by the liveness loop only
	// ingesting is the batches in ingest; pace, used by the liveness
	// loop only, is whether the evaluator keeps up (see pace.go).
	ingesting inflight
	pace      pace
	dataDir   string
	// state keeps incident state and heartbeat pings per check and the
	// sequence memory per agent; nil without a DataDir.
	state *state.Store
	// stateFault, set by tests, fails the state store's commits.
	stateFault atomic.Pointer[error]
	// setAside are the damaged state files moved aside at start.
	setAside setAsides
	// faults are the evaluator's own (see faults.go); dirCheck is the
	// data dir write check.
	faults   *faults
	dirCheck dirCheck
	// statusBuilds shares one full /status.json among concurrent
	// readers; statusSummary the default answer of a large configuration,
	// for a second. checkBuilds counts the checks whose status was built
	// with their regions.
	statusBuilds  status.Shared
	statusSummary status.Recent
	checkBuilds   atomic.Int64
	unknown       unknownChecks
	silences      silences
	meta          metaPage // liveness loop only
	beats         *heartbeats
	// shapeSaveMu serialises writes of the shape baselines;
	// lastShapeSave is used by the liveness loop only.
	shapeSaveMu   sync.Mutex
	lastShapeSave time.Time
	// lastHistorySave is used by the liveness loop only.
	lastHistorySave time.Time

	// name is this evaluator's entry in peers, peers the others.
	name string
	// source names this evaluator on its notifications (Options.Name, or
	// "outpost").
	source        string
	peers         []*peerWatch
	peerEvery     time.Duration
	peerClient    *http.Client
	lastPeerCheck time.Time // used by the liveness loop only
	peerWG        sync.WaitGroup
	forwardSlots  chan struct{}
}

// regionState is everything the evaluator keeps about one region.
type regionState struct {
	name string
	// keys are the agent keys of the region, by agent; no keys means no
	// agent may report over HTTP (the in-process agent uses Apply). A
	// reload replaces them.
	keys atomic.Pointer[agentKeys]
	// tab holds the region's window and shape tracker per check; a
	// reload replaces it (see tables).
	tab     atomic.Pointer[regionTables]
	metrics *regionMetrics

	// mu guards the windows' contents and every field below.
	mu       sync.Mutex
	agents   map[string]*agentState
	lastSeen time.Time // arrival of the latest applied batch since start
	// returned is when the region's latest silence of stale_after or more
	// (since start) ended: results probed before it are late (see
	// window.late), so that a region back from a partition counts again
	// only with what it probes after.
	returned time.Time
	live     decide.Liveness
	held     bool // the last liveness step held a STALE transition
	mismatch bool // some agent's latest batch had another config digest

	// pending counts the region's batches in ingest.
	pending atomic.Int32
	// forget, when set, is told of an agent forgotten to make room, so
	// that its persisted sequence memory goes too. It does no I/O.
	forget func(agent string)
}

// New builds an evaluator for cfg, which must come from checks.Load (or be
// shaped like it) and must not change afterwards. With a DataDir it reads
// the sequence memory kept there; a corrupt memory is an error. A state
// store it cannot read is moved aside and the evaluator starts without it.
func New(cfg *checks.Config, opts Options) (*Evaluator, error) {
	if cfg == nil {
		return nil, errors.New("alerting: no configuration")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notifier == nil {
		opts.Notifier = console.New(opts.Logger)
	}
	regions := cfg.Regions
	if len(regions) == 0 {
		regions = []string{checks.LocalRegion}
	}
	m, err := newMetrics(opts.Registerer, regions)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	fs, err := newFaults(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	e := &Evaluator{
		clock:      opts.Clock,
		log:        opts.Logger,
		notifier:   opts.Notifier,
		metrics:    m,
		faults:     fs,
		started:    opts.Clock.Now(),
		staleAfter: cfg.Reporting.StaleAfter,
		regions:    make(map[string]*regionState, len(regions)),
		limiter:    ratelog.NewKeyed(rejectLogEvery),
		confirm:    newConfirmer(),
		guard:      newGuard(),
		pings:      newPingLimiter(),
		refusalLog: ratelog.NewKeyed(refusalLogEvery),
	}
	if e.staleAfter <= 0 {
		e.staleAfter = defaultStaleAfter
	}
	for _, name := range regions {
		if _, dup := e.regions[name]; dup {
			return nil, fmt.Errorf("alerting: region %q declared twice", name)
		}
		r := &regionState{
			name:    name,
			metrics: m.regions[name],
			agents:  map[string]*agentState{},
			live:    decide.Liveness{State: decide.RegionUnknown, Since: e.started},
		}
		e.regions[name] = r
		e.regionList = append(e.regionList, r)
	}
	// With a bus, an evaluator decides only the checks of its shards.
	e.owner = opts.Name
	full := cfg
	if cfg, err = cfg.ForEvaluator(opts.Name); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if e.bus, err = newBusConsumer(e, cfg, opts.Bus, opts.Registerer); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	// What a configuration makes of the evaluator is built the same way
	// at the start and at a reload, from nothing here.
	p, tabs, keys, err := e.build(cfg, nil, e.started)
	if err != nil {
		return nil, err
	}
	e.install(p, tabs, keys)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(newShapeCollector(e)); err != nil {
			return nil, fmt.Errorf("alerting: registering shape metrics: %w", err)
		}
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(newDecisionCollector(e)); err != nil {
			return nil, fmt.Errorf("alerting: registering metrics: %w", err)
		}
	}
	e.silences.all = map[string]*silence.Silence{}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(silenceCollector{e}); err != nil {
			return nil, fmt.Errorf("alerting: registering metrics: %w", err)
		}
	}
	e.beats = newHeartbeats()
	e.beats.reconfigure(cfg)
	e.name = opts.Name
	e.source = cmp.Or(opts.Name, "outpost")
	if e.name == "" {
		e.name = "this evaluator"
	}
	e.peers = newPeerWatches(cfg, opts.Name, e.started)
	e.forwardSlots = make(chan struct{}, maxForwards)
	e.peerEvery = cfg.Reporting.Heartbeat
	if e.peerEvery == 0 {
		e.peerEvery = checks.DefaultHeartbeat
	}
	e.peerClient = &http.Client{Timeout: peerCheckTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if opts.PeerTLS != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = opts.PeerTLS
		e.peerClient.Transport = t
	}
	e.lastSweep = e.started
	e.pace = newPace(cfg, e.started, e.staleAfter)
	if opts.DataDir != "" {
		removeTemporaries(opts.DataDir, e.log)
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("alerting: data dir: %w", err)
		}
		e.dataDir = opts.DataDir
		if err := e.openState(opts.DataDir); err != nil {
			return nil, fmt.Errorf("alerting: %w", err)
		}
		e.loadShapes()
	}
	e.lastShapeSave, e.lastHistorySave = e.started, e.started
	if e.shared, err = newBusState(e, full, opts); err != nil {
		e.Close()
		return nil, fmt.Errorf("alerting: registering bus metrics: %w", err)
	}
	e.seedAtStart()
	return e, nil
}

// removeTemporaries removes what a crash left in dir between an atomic
// write's temporary file and its rename. What cannot be read or removed is
// logged and left: it costs disk, not state.
func removeTemporaries(dir string, log *slog.Logger) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return // reported by the first state file that cannot be opened
	}
	for _, de := range des {
		if !atomicfile.IsTemp(de.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("data dir: cannot remove a temporary file a crash left", "file", de.Name(), "err", err)
		}
	}
}

// restoreSeqs loads persisted sequence memory into the agents of declared
// regions, at most maxAgentsPerRegion per region, the most recent first.
func (e *Evaluator) restoreSeqs(recs []seqRecord) {
	prunedTable := make(map[agentKey]seqRecord, len(recs))
	for _, rec := range recs {
		if _, ok := e.regions[rec.Region]; ok && rec.Agent != "" {
			prunedTable[agentKey{rec.Region, rec.Agent}] = rec
		}
	}
	prune(prunedTable)
	for k, rec := range prunedTable {
		r := e.regions[k.region]
		r.agents[k.agent] = &agentState{
			name:     k.agent,
			seqs:     restoreSeqMemory(rec.Highest, rec.Recent),
			lastSeen: rec.Seen,
			lastSeq:  rec.Highest,
		}
	}
}

// Window returns a copy of the recent results of check from region, and
// false if check does not run in region.
func (e *Evaluator) Window(check, region string) (decide.Window, bool) {
	r, ok := e.regions[region]
	if !ok {
		return decide.Window{}, false
	}
	w, ok := r.tables().windows[check]
	if !ok {
		return decide.Window{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return w.view(), true
}
