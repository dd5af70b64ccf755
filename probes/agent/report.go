package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/ratelog"
	"github.com/outposthq/outpost/probes/wire"
)

// Delivery timings.
const (
	// sendTimeout bounds one POST, connection included.
	sendTimeout = 10 * time.Second
	// Retries wait a random time up to a ceiling that starts at backoffMin
	// and doubles per failed attempt up to backoffMax (full jitter), so
	// agents that lost the same evaluator do not come back in step.
	backoffMin = 200 * time.Millisecond
	backoffMax = 30 * time.Second
	// logEvery rate-limits the logs of failures that repeat per batch.
	logEvery = time.Minute
	// minQueue is the least room for submitted results, so that a small
	// batch size does not turn one slow disk write into dropped results.
	minQueue = 1024
	// maxMemSpool bounds, per evaluator, the batches held in memory while
	// its spool cannot be written (and never more than the spool size).
	maxMemSpool = 32 << 20
)

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	// Evaluators are the evaluators' base URLs, such as
	// http://127.0.0.1:9797; batches are POSTed to URL+wire.ResultsPath. Every
	// evaluator receives every batch. At least one is required.
	Evaluators []string
	// Key signs every request (HMAC-SHA256, see wire.Sign). Required.
	Key []byte
	// Region and Agent name this agent in batches and headers. Required.
	Region string
	Agent  string
	// ConfigDigest is checks.Config.Digest, sent with every batch.
	ConfigDigest string
	// Reporting sets the batch size and timing and the spool bound; zero
	// fields take the defaults of the checks package.
	Reporting checks.Reporting
	// SpoolDir holds one subdirectory per evaluator, named by a hash of its
	// URL (without credentials) and created with mode 0700. Batches wait
	// there until delivered, across restarts. Required; one Reporter per
	// directory. When it cannot be created or written, batches wait in
	// memory instead (see SpoolHealth).
	SpoolDir string
	// Clock drives batching, heartbeats, backoff and signing times; nil
	// means clock.Real.
	Clock clock.Clock
	// HTTPClient sends the batches; nil means a client with a 10s overall
	// timeout that does not follow redirects (a signed batch goes only
	// where it was configured to go). Requests carry a 10s deadline either
	// way.
	HTTPClient *http.Client
	// TLS configures the default client's HTTPS to the evaluators (a CA to
	// trust, a client certificate); nil means the system's CAs. Unused with
	// an HTTPClient.
	TLS *tls.Config
	// Registerer receives the reporter's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives the reporter's logs, rate-limited on every path that
	// repeats per batch; nil discards them.
	Logger *slog.Logger
	// Bus, when set, publishes to NATS JetStream instead of POSTing to
	// Evaluators, which must then be empty (see BusOptions).
	Bus *BusOptions
}

// Reporter ships results to evaluators. Submitted results are sealed into
// signed batches, written to a bounded spool per evaluator and delivered in
// order, with retries, by one sender per evaluator. When nothing was sealed
// for a heartbeat interval it seals an empty batch, the agent's liveness
// signal. Nothing sealed is lost when an evaluator is unreachable or the
// agent restarts, unless the spool bound forces the oldest batches out
// (counted and logged). A spool that cannot be written (disk full, read-only)
// does not stop delivery: its batches wait in memory, bounded, and are sent
// to every evaluator that answers; SpoolHealth says so.
type Reporter struct {
	key                   []byte
	agent, region         string
	digest                atomic.Pointer[string]
	batchSize             int
	batchDelay, heartbeat time.Duration
	spoolSize, memSize    int64
	spoolDir              string
	clock                 clock.Clock
	client                *http.Client
	log                   *slog.Logger
	metrics               reporterMetrics
	queue                 chan wire.Result
	evals                 []*evaluator
	queueLog              ratelog.Limiter
	running               atomic.Bool
	lastResultSeq         uint64 // owned by the batcher
	// shards, with a bus, is the number of shards a sealed batch is split
	// into (one batch per shard, each with its own seq), and liveness goes
	// out every heartbeat whatever was sealed; 0 without a bus.
	shards int
	// seqMu orders sealing against re-basing: a batch is numbered and
	// spooled for every evaluator under it, and an evaluator's spool is
	// renumbered under it, so that no batch is numbered below a re-base.
	seqMu   sync.Mutex
	lastSeq uint64 // guarded by seqMu
	// lastReached is when an evaluator last answered a batch at all (any
	// status below 500, or any answer the evaluator itself gave), in Unix
	// nanoseconds of the reporter's clock.
	lastReached atomic.Int64
}

// LastReached returns when some evaluator last answered a batch (any
// status below 500, or any status with wire.HeaderEvaluator, such as a
// busy evaluator's 503: it was there to answer), or when the reporter was
// made if none has yet.
func (r *Reporter) LastReached() time.Time { return time.Unix(0, r.lastReached.Load()) }

// AnswerDue returns the latest deadline of a batch that is being sent and
// awaits its answer, zero if none is: until then a slow evaluator may yet
// answer.
func (r *Reporter) AnswerDue() time.Time {
	var due int64
	for _, e := range r.evals {
		due = max(due, e.answerDue.Load())
	}
	if due == 0 {
		return time.Time{}
	}
	return time.Unix(0, due)
}

// evaluator is one destination: its spool, its sender's wake-up signal and
// its metrics and log limiters.
type evaluator struct {
	label    string // the URL without credentials, for logs and metrics
	endpoint string
	seqURL   string // where to ask for the highest sequence accepted (wire.SeqPath)
	spool    *spool
	wake     chan struct{} // capacity 1: a batch was spooled
	log      *slog.Logger
	// deliver makes one attempt at handing the batch seq over: a POST to
	// the evaluator, or a publish to the bus answered by its PubAck as a
	// 200 (see Reporter.send for how the answer is read).
	deliver func(ctx context.Context, seq uint64, body []byte) (status int, answered bool, refused, detail string, err error)
	// answerDue is, while a batch is being sent, its deadline in Unix
	// nanoseconds of the reporter's clock; 0 otherwise.
	answerDue atomic.Int64

	sent, failures, spoolDropped, spoolErrors, rebases prometheus.Counter
	spoolFailing                                       prometheus.Gauge
	rejected                                           *prometheus.CounterVec // by status

	// spoolErr is why the last batch could not be written to the spool,
	// nil once one could again.
	spoolErr atomic.Pointer[error]

	diskLog, failLog, rejectLog, spoolDownLog, spoolUpLog, rebaseLog ratelog.Limiter
	// overflowing, owned by the batcher, is set when the spool first drops
	// batches and cleared once the sender has caught up: one log per
	// overflow episode.
	overflowing bool
}

type reporterMetrics struct {
	dropped                                   *prometheus.CounterVec
	results                                   prometheus.Counter
	sent, failures, spoolDropped, spoolErrors *prometheus.CounterVec
	rebases                                   *prometheus.CounterVec
	rejected                                  *prometheus.CounterVec
	spoolBytes, spoolBatches, spoolMemBytes   *prometheus.GaugeVec
	spoolFailing                              *prometheus.GaugeVec
}

func newReporterMetrics() reporterMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"evaluator"})
	}
	return reporterMetrics{
		dropped: counter("outpost_reporter_dropped_total",
			"Results dropped before they were batched: queue_full (Submit found the queue full), too_large (one result exceeds the batch size limit), unencodable.", "reason"),
		results: prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_reporter_results_total",
			Help: "Results sealed into batches and spooled for the evaluators."}),
		sent: counter("outpost_reporter_batches_sent_total",
			"Batches the evaluator accepted.", "evaluator"),
		failures: counter("outpost_reporter_send_failures_total",
			"Delivery attempts that failed and will be retried: network errors, 429, 5xx and other unexpected answers.", "evaluator"),
		rejected: counter("outpost_reporter_rejected_total",
			"Batches the evaluator refused for good (400, 401, 403, 413), which were dropped.", "evaluator", "status"),
		rebases: counter("outpost_reporter_rebases_total",
			"Times the evaluator refused a batch as a replay and the agent renumbered its pending batches above the highest sequence number the evaluator had accepted from it, instead of dropping them.", "evaluator"),
		spoolDropped: counter("outpost_reporter_spool_dropped_total",
			"Batches deleted unsent because the evaluator's spool exceeded its size, or its memory bound while the spool cannot be written.", "evaluator"),
		spoolErrors: counter("outpost_reporter_spool_errors_total",
			"Batches that could not be written to the evaluator's spool; they wait in memory instead and are lost if the agent stops before they are delivered.", "evaluator"),
		spoolFailing: gauge("outpost_reporter_spool_failing",
			"1 while the evaluator's spool cannot be written (the last write failed) and batches are sent from memory, else 0."),
		spoolBytes:    gauge("outpost_reporter_spool_bytes", "Bytes of batches waiting for the evaluator, in its spool or in memory."),
		spoolBatches:  gauge("outpost_reporter_spool_batches", "Batches waiting for the evaluator, in its spool or in memory."),
		spoolMemBytes: gauge("outpost_reporter_spool_memory_bytes", "Bytes of batches waiting for the evaluator in memory because its spool could not be written."),
	}
}

func (m reporterMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.dropped, m.results, m.sent, m.failures, m.rejected, m.rebases,
		m.spoolDropped, m.spoolErrors, m.spoolFailing, m.spoolBytes, m.spoolBatches, m.spoolMemBytes} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("reporter metrics: %w", err)
		}
	}
	return nil
}

// NewReporter checks opts, opens (and trims) every evaluator's spool and
// registers the metrics. Batches already spooled by an earlier run are
// delivered once Run starts.
func NewReporter(opts ReporterOptions) (*Reporter, error) {
	var errs []error
	switch {
	case opts.Bus != nil && len(opts.Evaluators) > 0:
		errs = append(errs, errors.New("evaluator URLs and a bus exclude each other"))
	case opts.Bus != nil:
		if err := opts.Bus.check(); err != nil {
			errs = append(errs, err)
		}
	case len(opts.Evaluators) == 0:
		errs = append(errs, errors.New("no evaluator URL"))
	}
	if len(opts.Key) == 0 {
		errs = append(errs, errors.New("no key"))
	}
	if opts.Region == "" || opts.Agent == "" {
		errs = append(errs, errors.New("region and agent name are required"))
	}
	if opts.SpoolDir == "" {
		errs = append(errs, errors.New("no spool directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("reporter: %w", err)
	}
	rep := withBatchDefaults(opts.Reporting)
	if rep.SpoolSize <= 0 {
		rep.SpoolSize = checks.DefaultSpoolSize
	}
	r := &Reporter{
		key:        bytes.Clone(opts.Key),
		agent:      opts.Agent,
		region:     opts.Region,
		batchSize:  min(rep.BatchSize, wire.MaxBatchResults),
		batchDelay: min(rep.BatchDelay, rep.Heartbeat),
		heartbeat:  rep.Heartbeat,
		spoolSize:  int64(rep.SpoolSize),
		memSize:    min(int64(rep.SpoolSize), maxMemSpool),
		spoolDir:   opts.SpoolDir,
		clock:      opts.Clock,
		client:     opts.HTTPClient,
		log:        opts.Logger,
		metrics:    newReporterMetrics(),
		queueLog:   ratelog.Limiter{Every: logEvery},
	}
	r.queue = make(chan wire.Result, max(4*r.batchSize, minQueue))
	r.SetConfigDigest(opts.ConfigDigest)
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.client == nil {
		r.client = newReporterClient(opts.TLS)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, reason := range []string{"queue_full", "too_large", "unencodable"} {
		r.metrics.dropped.WithLabelValues(reason)
	}
	seen := map[string]bool{}
	for _, raw := range opts.Evaluators {
		e, err := r.newEvaluator(raw, opts.SpoolDir)
		if err != nil {
			return nil, fmt.Errorf("reporter: evaluator %q: %w", raw, err)
		}
		if seen[e.endpoint] {
			return nil, fmt.Errorf("reporter: evaluator %s listed twice", e.label)
		}
		seen[e.endpoint] = true
		r.evals = append(r.evals, e)
	}
	if opts.Bus != nil {
		r.evals = append(r.evals, r.newBusDestination(*opts.Bus))
	}
	for _, e := range r.evals {
		// Keep sequence numbers increasing past what is still spooled, even
		// if the clock went back or did not move.
		if seq, ok := e.spool.Newest(); ok {
			r.lastSeq = max(r.lastSeq, seq)
			r.lastResultSeq = max(r.lastResultSeq, lastResultSeq(e.spool.path(seq)))
		}
	}
	if opts.Registerer != nil {
		if err := r.metrics.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	r.lastReached.Store(r.clock.Now().UnixNano())
	return r, nil
}

func (r *Reporter) newEvaluator(raw, spoolDir string) (*evaluator, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimRight(raw, "/"), wire.ResultsPath))
	if err != nil {
		return nil, fmt.Errorf("bad URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an http:// or https:// URL with a host")
	}
	base := u.String()
	// The spool is named without credentials, so rotating them keeps it.
	anon := *u
	anon.User = nil
	sum := sha256.Sum256([]byte(anon.String()))
	e := r.newDestination(u.Redacted(), filepath.Join(spoolDir, hex.EncodeToString(sum[:8])))
	e.endpoint = base + wire.ResultsPath
	e.seqURL = base + wire.SeqPath
	e.deliver = func(ctx context.Context, _ uint64, body []byte) (int, bool, string, string, error) {
		return r.post(ctx, e, body)
	}
	return e, nil
}

// newDestination makes a destination labelled label in logs and metrics,
// spooling in dir, without its way of delivering.
func (r *Reporter) newDestination(label, dir string) *evaluator {
	e := &evaluator{
		label:     label,
		wake:      make(chan struct{}, 1),
		diskLog:   ratelog.Limiter{Every: logEvery},
		failLog:   ratelog.Limiter{Every: logEvery},
		rejectLog: ratelog.Limiter{Every: logEvery},
		// A spool that keeps failing and recovering logs each way at most
		// this often.
		spoolDownLog: ratelog.Limiter{Every: logEvery},
		spoolUpLog:   ratelog.Limiter{Every: logEvery},
		rebaseLog:    ratelog.Limiter{Every: logEvery},
	}
	e.log = r.log.With("evaluator", e.label)
	m := r.metrics
	e.sent = m.sent.WithLabelValues(e.label)
	e.failures = m.failures.WithLabelValues(e.label)
	e.spoolDropped = m.spoolDropped.WithLabelValues(e.label)
	e.spoolErrors = m.spoolErrors.WithLabelValues(e.label)
	e.spoolFailing = m.spoolFailing.WithLabelValues(e.label)
	e.rebases = m.rebases.WithLabelValues(e.label)
	e.rejected = m.rejected.MustCurryWith(prometheus.Labels{"evaluator": e.label})
	gBytes, gBatches := m.spoolBytes.WithLabelValues(e.label), m.spoolBatches.WithLabelValues(e.label)
	gMem := m.spoolMemBytes.WithLabelValues(e.label)
	observe := func(b int64, n int, mem int64) {
		gBytes.Set(float64(b))
		gBatches.Set(float64(n))
		gMem.Set(float64(mem))
	}
	var err error
	e.spool, err = openSpool(dir, e.log, observe)
	if err != nil {
		// Delivery does not need the disk: start with the batches in
		// memory, and write to the spool again once it can be.
		e.spool = memorySpool(dir, e.log, observe)
		r.spoolFailed(e, err, r.clock.Now())
	}
	if n := e.spool.Trim(r.spoolSize, r.memSize); n > 0 {
		e.spoolDropped.Add(float64(n))
		e.log.Warn("spool over its size at start: dropped the oldest batches", "dropped", n, "spool_size", r.spoolSize)
	}
	return e
}

// lastResultSeq returns the highest result sequence number in the batch
// file at path, or 0 if it cannot tell.
func lastResultSeq(path string) uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	type batch struct {
		Results []struct {
			Seq uint64 `json:"seq"`
		} `json:"results"`
	}
	var batches []batch
	if bytes.HasPrefix(data, []byte("[")) { // the parts of a batch sealed for a bus
		var parts []struct {
			Batch batch `json:"batch"`
		}
		if json.Unmarshal(data, &parts) != nil {
			return 0
		}
		for _, p := range parts {
			batches = append(batches, p.Batch)
		}
	} else {
		var b batch
		if json.Unmarshal(data, &b) != nil {
			return 0
		}
		batches = append(batches, b)
	}
	var last uint64
	for _, b := range batches {
		for _, r := range b.Results {
			last = max(last, r.Seq)
		}
	}
	return last
}

func newReporterClient(tlsConfig *tls.Config) *http.Client {
	return &http.Client{
		Timeout: sendTimeout,
		Transport: &http.Transport{
			TLSClientConfig:       tlsConfig,
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: sendTimeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetConfigDigest changes the digest sent with the batches sealed from now
// on, for an agent that reloaded its configuration. Safe for concurrent use.
func (r *Reporter) SetConfigDigest(digest string) { r.digest.Store(&digest) }

// Submit queues r for the next batch. It never blocks: when the queue (four
// batches, and at least 1024 results, deep) is full, r is dropped and
// counted in
// outpost_reporter_dropped_total{reason="queue_full"}. Results still queued
// when Run returns are delivered only if Run is called again.
func (r *Reporter) Submit(res wire.Result) {
	select {
	case r.queue <- res:
	default:
		r.metrics.dropped.WithLabelValues("queue_full").Inc()
		if ok, n := r.queueLog.Allow(r.clock.Now()); ok {
			r.log.Warn("reporter queue full: dropping results", "check", res.Check, "dropped_since_last_log", n)
		}
	}
}

// Run batches and delivers until ctx ends, then seals what it holds into the
// spools, cancels requests in flight (their batches stay spooled and are sent
// again by the next Run; evaluators apply a batch once) and returns nil once
// every goroutine it started has stopped. Run returns an error only if the
// Reporter is already running.
func (r *Reporter) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("reporter: already running")
	}
	defer r.running.Store(false)
	var wg sync.WaitGroup
	for _, e := range r.evals {
		wg.Go(func() { r.send(ctx, e) })
	}
	r.batch(ctx)
	wg.Wait()
	r.client.CloseIdleConnections()
	return nil
}

// batch is the batcher loop: it seals when BatchSize results are pending,
// when the oldest pending result has waited BatchDelay, and, with nothing
// pending, when nothing was sealed for Heartbeat. With a bus the empty
// batch (liveness) goes out every Heartbeat whatever else was sealed: an
// evaluator sees the results of its own shards only, so they cannot tell
// it the agent is alive.
func (r *Reporter) batch(ctx context.Context) {
	var pending []wire.Result
	now := r.clock.Now()
	deadline := now.Add(r.heartbeat)
	liveAt := deadline // when the next empty batch is due
	timer := r.clock.NewTimer(r.heartbeat)
	defer func() { timer.Stop() }()
	arm := func(at time.Time) {
		timer.Stop()
		deadline = at
		timer = r.clock.NewTimer(at.Sub(now))
	}
	seal := func() {
		if len(pending) == 0 || (r.shards > 0 && !now.Before(liveAt)) {
			r.seal(nil, now) // the liveness signal
			liveAt = now.Add(r.heartbeat)
		}
		if len(pending) > 0 {
			r.seal(pending, now)
			if r.shards == 0 {
				liveAt = now.Add(r.heartbeat)
			}
		}
		clear(pending) // let go of the results' observations
		pending = pending[:0]
		arm(liveAt)
	}
	for {
		select {
		case <-ctx.Done():
			// Seal what is held and what was queued by now: a SIGTERM
			// loses nothing. Counting first keeps submitters that go on
			// submitting from holding the shutdown up.
			now = r.clock.Now()
			for range len(r.queue) {
				pending = append(pending, r.stamp(<-r.queue))
				if len(pending) == r.batchSize {
					r.seal(pending, now)
					pending = pending[:0]
				}
			}
			if len(pending) > 0 {
				r.seal(pending, now)
			}
			return
		case res := <-r.queue:
			now = r.clock.Now()
			pending = append(pending, r.stamp(res))
			if len(pending) >= r.batchSize {
				seal()
			} else if at := now.Add(r.batchDelay); len(pending) == 1 && at.Before(deadline) {
				arm(at)
			}
		case <-timer.C():
			now = r.clock.Now()
			seal() // with nothing pending, this is the heartbeat
		}
	}
}

// stamp gives a result this agent's name and the next result sequence number.
func (r *Reporter) stamp(res wire.Result) wire.Result {
	r.lastResultSeq = nextSeq(r.lastResultSeq, r.clock.Now())
	res.Seq = r.lastResultSeq
	res.Agent = r.agent
	if res.Region == "" {
		res.Region = r.region
	}
	if res.V == 0 {
		res.V = wire.WireVersion
	}
	return res
}

// nextSeq is max(last+1, now in Unix nanoseconds): increasing within a run,
// and across restarts as long as the clock does.
func nextSeq(last uint64, now time.Time) uint64 {
	if ns := now.UnixNano(); ns > 0 && uint64(ns) > last {
		return uint64(ns)
	}
	return last + 1
}

// seal encodes results as one batch and spools it for every evaluator. A
// batch that would exceed wire.MaxBatchBytes is split in halves, so that an
// evaluator never refuses it for its size. With a bus, sealForBus.
func (r *Reporter) seal(results []wire.Result, now time.Time) {
	r.seqMu.Lock()
	defer r.seqMu.Unlock()
	if r.shards > 0 {
		r.sealForBus(results, now)
		return
	}
	r.sealLocked(results, now)
}

// sealLocked is seal without a bus; r.seqMu is held.
func (r *Reporter) sealLocked(results []wire.Result, now time.Time) {
	r.encodeLocked(results, now, func(seq uint64, body []byte, results []wire.Result) {
		r.metrics.results.Add(float64(len(results)))
		for _, e := range r.evals {
			r.spoolBatch(e, seq, body, now)
		}
	})
}

// encodeLocked numbers results as one batch, encodes it and passes it to
// add; a batch that would exceed wire.MaxBatchBytes is split in halves, in
// order, each numbered and added on its own. r.seqMu is held.
func (r *Reporter) encodeLocked(results []wire.Result, now time.Time, add func(seq uint64, body []byte, results []wire.Result)) {
	seq := nextSeq(r.lastSeq, now)
	b := wire.Batch{V: wire.WireVersion, Agent: r.agent, Region: r.region, Seq: seq,
		ConfigDigest: *r.digest.Load(), Created: now, Results: results}
	if b.Results == nil {
		b.Results = []wire.Result{}
	}
	body, err := json.Marshal(b)
	if (err != nil || len(body) > wire.MaxBatchBytes) && len(results) > 1 {
		half := len(results) / 2
		r.encodeLocked(results[:half], now, add)
		r.encodeLocked(results[half:], now, add)
		return
	}
	if err != nil || len(body) > wire.MaxBatchBytes {
		reason := "too_large"
		if err != nil {
			reason = "unencodable"
		}
		r.metrics.dropped.WithLabelValues(reason).Inc()
		r.log.Error("dropping a result that cannot be sent", "check", results[0].Check, "reason", reason, "bytes", len(body), "err", err)
		return
	}
	r.lastSeq = seq
	add(seq, body, results)
}

// spoolBatch writes one batch to e's spool (or, when it cannot be written,
// keeps it in memory), trims the spool to its bounds and wakes e's sender.
func (r *Reporter) spoolBatch(e *evaluator, seq uint64, body []byte, now time.Time) {
	if err := e.spool.Put(seq, body); err != nil {
		e.spoolErrors.Inc()
		r.spoolFailed(e, err, now)
	} else if e.spoolErr.Load() != nil {
		e.spoolErr.Store(nil)
		e.spoolFailing.Set(0)
		if ok, n := e.spoolUpLog.Allow(now); ok {
			e.log.Info("spool writable again: batches are spooled on disk again", "dir", r.spoolDir,
				"recoveries_since_last_log", n)
		}
	}
	if e.spool.Len() <= 1 {
		e.overflowing = false // the sender had caught up: the episode is over
	}
	if n := e.spool.Trim(r.spoolSize, r.memSize); n > 0 {
		e.spoolDropped.Add(float64(n))
		if !e.overflowing {
			e.overflowing = true
			e.log.Warn("spool full: dropping the oldest batches until the evaluator takes them again",
				"spool_size", r.spoolSize, "dropped", n)
		}
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// spoolFailed records that e's spool could not be written: the batch is in
// memory. It logs when the failure starts, at most once per logEvery.
func (r *Reporter) spoolFailed(e *evaluator, err error, now time.Time) {
	if e.spoolErr.Swap(&err) != nil {
		return // still failing: counted, not logged again
	}
	e.spoolFailing.Set(1)
	if ok, n := e.spoolDownLog.Allow(now); ok {
		e.log.Error("spool cannot be written: batches are kept in memory and sent from there; they are lost if the agent stops before delivering them",
			"dir", r.spoolDir, "err", err, "memory_bound_bytes", r.memSize, "failures_since_last_log", n)
	}
}

// SpoolHealth returns "" while every evaluator's spool can be written, and
// otherwise says which cannot and why, for the agent's /healthz. Safe for
// concurrent use.
func (r *Reporter) SpoolHealth() string {
	for _, e := range r.evals {
		if err := e.spoolErr.Load(); err != nil {
			return fmt.Sprintf("spool %s cannot be written: %s; batches are sent from memory", r.spoolDir, diskReason(*err))
		}
	}
	return ""
}

// diskReason is the system's word for a disk error (such as "no space left
// on device"), without the temporary file names around it, or the whole
// error when it has none.
func diskReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// withBatchDefaults gives the batching settings of r that are unset (zero
// or less) the checks package's defaults.
func withBatchDefaults(r checks.Reporting) checks.Reporting {
	if r.Heartbeat <= 0 {
		r.Heartbeat = checks.DefaultHeartbeat
	}
	if r.BatchSize <= 0 {
		r.BatchSize = checks.DefaultBatchSize
	}
	if r.BatchDelay <= 0 {
		r.BatchDelay = checks.DefaultBatchDelay
	}
	return r
}
