package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/wire"
)

const busAbout = `Measures evaluators fed over NATS JetStream (the bus: block), with real
processes: a nats-server built from the module's own nats-server/v2 (JetStream
on a temporary directory), and for each value of -evaluators N, N real
"outpost evaluator" processes, each owning 1/N of -shards shards (no HA
pairs: every result is decided once), with -checks HTTP checks in -regions
regions.

This tool plays the agents: per region, -agents agents on one NATS connection,
each publishing its share of the region's results split by shard exactly as agents do (a signed wire.Batch per
shard, its own sequence number, Nats-Msg-Id, on outpost.results.<shard>.<region>),
as fast as the evaluators keep up (it pauses while their consumers lag more
than -max-lag messages), plus a liveness message per region every second.

It prints, per N: results/s the evaluators applied together (from their
outpost_ingest_results_total), each evaluator's checks, CPU (s/s and per
1,000 results) and RSS; and the end-to-end latency from publishing to the
decision: every -latency-every one "sentinel" check (with a PagerDuty
notifier pointed at a fake Events v2 API in this process) starts failing in
every region, and the time from its publish to the trigger's arrival is
recorded (p50, p99, max).

With N=1 it also feeds the same evaluator over HTTP (signed batches of 500,
-agents per region, each one batch at a time, as "outpost-bench ingest" does) in alternating
windows with the bus, and prints the two rates side by side as a ratio.`

type busOptions struct {
	checks, regions, shards int
	agents                  int
	evaluators              string
	duration, warmup        time.Duration
	latencyEvery            time.Duration
	maxLag                  int
	rate                    float64
	outpost                 string
	keep                    bool
	out                     io.Writer
}

func busCmd(ctx context.Context, args []string, out io.Writer) error {
	o := busOptions{out: out}
	fs := newFlagSet("bus", busAbout)
	fs.IntVar(&o.checks, "checks", 10000, "HTTP checks in the configuration, each run in every region")
	fs.IntVar(&o.regions, "regions", 5, "regions (at most 8)")
	fs.IntVar(&o.shards, "shards", 64, "bus.nats.shards")
	fs.IntVar(&o.agents, "agents", 4, "agents per region, a region's checks split among them; each publishes (or, over HTTP, sends) in order, one at a time")
	fs.StringVar(&o.evaluators, "evaluators", "1,2,4", "comma-separated evaluator counts, one run each")
	fs.DurationVar(&o.duration, "duration", time.Minute, "measured time per run")
	fs.DurationVar(&o.warmup, "warmup", 20*time.Second, "time fed but not counted before measuring (covers the evaluators' start grace)")
	fs.DurationVar(&o.latencyEvery, "latency-every", 2*time.Second, "how often a sentinel check starts failing, for the end-to-end latency")
	fs.IntVar(&o.maxLag, "max-lag", 2000, "messages an evaluator's consumer may lag before the feed pauses")
	fs.Float64Var(&o.rate, "rate", 0, "results/s to publish, all agents together (0: as fast as the evaluators keep up); a production rate such as 1667 (10,000 checks × 5 regions every 30s) measures latency without a backlog")
	fs.StringVar(&o.outpost, "outpost", "", "outpost binary (default: go build ./cmd/outpost)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, data dirs, logs)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(o.evaluators, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > o.shards {
			return fmt.Errorf("-evaluators: %q is not a count between 1 and -shards", f)
		}
		counts = append(counts, n)
	}
	if o.checks < 1 || o.agents < 1 || o.regions < 1 || o.regions > 8 || o.shards < 1 || o.shards > checks.MaxShards {
		return fmt.Errorf("need -checks ≥ 1, -regions 1-8 and -shards 1-%d", checks.MaxShards)
	}
	dir, err := os.MkdirTemp("", "outpost-bench-bus-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(out, "keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.outpost == "" {
		if o.outpost, err = buildCurrent(dir, "outpost"); err != nil {
			return err
		}
	}
	natsBin := filepath.Join(dir, "nats-server")
	build := exec.Command("go", "build", "-o", natsBin, "github.com/nats-io/nats-server/v2")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build nats-server (run from the repository root): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(addr)
	ns, err := startChild("nats-server", natsBin, []string{"-a", host, "-p", port, "-js", "-sd", filepath.Join(dir, "js")}, nil, filepath.Join(dir, "nats-server.log"))
	if err != nil {
		return err
	}
	defer ns.stop(10 * time.Second)
	url := "nats://" + addr
	if err := waitTCP(ctx, addr, ns); err != nil {
		return err
	}
	fmt.Fprintf(out, "outpost-bench bus: %d checks × %d regions, %d shards, nats-server pid %d at %s; %s measured after %s\n",
		o.checks, o.regions, o.shards, ns.pid, url, o.duration, o.warmup)
	var rows []busRow
	for _, n := range counts {
		row, err := busOnce(ctx, o, dir, url, n, ns)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	fmt.Fprintf(out, "\n%-11s %14s %14s %16s %16s %12s %12s\n", "evaluators", "bus results/s", "HTTP results/s", "CPU s/s each", "RSS MiB each", "e2e p50", "e2e p99")
	for _, r := range rows {
		httpRate, cpu, rss := "-", make([]string, len(r.cpu)), make([]string, len(r.rss))
		if r.http > 0 {
			httpRate = fmt.Sprintf("%.0f", r.http)
		}
		for i := range r.cpu {
			cpu[i], rss[i] = fmt.Sprintf("%.2f", r.cpu[i]), fmt.Sprintf("%.0f", r.rss[i])
		}
		fmt.Fprintf(out, "%-11d %14.0f %14s %16s %16s %12s %12s\n", r.n, r.bus, httpRate, strings.Join(cpu, "/"), strings.Join(rss, "/"),
			r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond))
	}
	if len(rows) > 0 && rows[0].n == 1 && rows[0].http > 0 {
		fmt.Fprintf(out, "one evaluator, bus / HTTP: %s\n", ratio(rows[0].bus, rows[0].http))
	}
	return nil
}

type busRow struct {
	n         int
	bus, http float64
	cpu, rss  []float64
	p50, p99  time.Duration
}

// busConfig writes the configuration of a run with n evaluators and
// returns its digest and the evaluators' names.
func busConfig(o busOptions, path, url, pdURL string, n int, sentinels []string) (string, []string, error) {
	regions := regionNames(o.regions)
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ndefaults: {interval: 5s, timeout: 2s, failure: {consecutive: 1}}\n")
	fmt.Fprintf(&b, "reporting: {heartbeat: 2s}\nregions: [%s]\nagents:\n", strings.Join(regions, ", "))
	for _, r := range regions {
		fmt.Fprintf(&b, "  - {region: %s, key: \"${%s}\"}\n", r, keyEnv(r))
	}
	fmt.Fprintf(&b, "notifiers:\n  - {name: oncall, pagerduty: {routing_key: \"${%s}\", url: %q}}\n", pdKeyEnv, pdURL)
	fmt.Fprintf(&b, "bus:\n  nats: {url: %q, shards: %d, stream: BENCH%d, max_bytes: 4GiB, retention: 1h}\n  evaluators:\n", url, o.shards, n)
	var names []string
	for k := range n {
		lo, hi := k*o.shards/n, (k+1)*o.shards/n-1
		name := fmt.Sprintf("bench-e%d", k)
		names = append(names, name)
		fmt.Fprintf(&b, "    - {name: %s, shards: \"%d-%d\"}\n", name, lo, hi)
	}
	b.WriteString("checks:\n")
	for i := range o.checks {
		fmt.Fprintf(&b, "  - {id: %s, http: {url: \"http://127.0.0.1:9/c%d\"}}\n", checkID(i), i)
	}
	for _, s := range sentinels {
		fmt.Fprintf(&b, "  - {id: %s, notify: [oncall], http: {url: \"http://127.0.0.1:9/%s\"}}\n", s, s)
	}
	data := []byte(b.String())
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", nil, err
	}
	cfg, err := checks.LoadBytes(path, data, func(string) (string, bool) { return "x", true })
	if err != nil {
		return "", nil, fmt.Errorf("the generated configuration does not load: %w", err)
	}
	return cfg.Digest, names, nil
}

func busOnce(ctx context.Context, o busOptions, dir, url string, n int, ns *child) (busRow, error) {
	row := busRow{n: n}
	fmt.Fprintf(o.out, "\n%d evaluator(s):\n", n)
	lat := newLatency(int((o.warmup+2*o.duration)/o.latencyEvery) + 2)
	pd := newFakePD()
	pd.onTrigger = lat.arrived
	pdAddr, stopPD, err := serve(pd)
	if err != nil {
		return row, err
	}
	defer stopPD()
	cfgPath := filepath.Join(dir, fmt.Sprintf("bus-%d.yaml", n))
	digest, names, err := busConfig(o, cfgPath, url, "http://"+pdAddr, n, lat.ids)
	if err != nil {
		return row, err
	}
	regions := regionNames(o.regions)
	env := benchConfig{regions: regions}.evalEnv("bench-pd", 0)
	var evals []*evalProc
	for _, name := range names {
		e, err := startEvaluator(ctx, strings.TrimPrefix(name, "bench-"), o.outpost, cfgPath, dir, env, "bench-pd")
		if err != nil {
			return row, err
		}
		defer e.stop(10 * time.Second)
		evals = append(evals, e)
		fmt.Fprintf(o.out, "  %s: pid %d at %s\n", name, e.pid, e.base)
	}
	nc, err := nats.Connect(url, nats.Name("outpost-bench"), nats.Timeout(bus.ConnectTimeout))
	if err != nil {
		return row, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return row, err
	}
	stream := fmt.Sprintf("BENCH%d", n)
	// The stream holds every run's subjects: drop it at the end so the
	// next run's evaluators can make theirs.
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), bus.RequestTimeout)
		defer cancel()
		_ = js.DeleteStream(c, stream)
	}()
	if err := waitStream(ctx, js, stream, ns); err != nil {
		return row, err
	}
	f := newBusFeeder(js, regions, digest, o)
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go f.watchLag(lagCtx, js, stream, names)
	runCtx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopFeed(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); f.run(runCtx) }()
	go func() { defer wg.Done(); lat.run(runCtx, f, o.latencyEvery) }()
	if err := sleep(ctx, o.warmup); err != nil {
		return row, err
	}
	lat.reset()
	// With one evaluator, the bus and HTTP take turns in windows on the
	// same evaluator: A B A B, each half of -duration over two turns.
	window := o.duration
	if n == 1 {
		window = o.duration / 4
	}
	var busResults, busSecs, httpResults, httpSecs, httpCPU float64
	cpu0 := make([]float64, n)
	var cpuSecs, nsCPU, selfUsed float64
	cpuUsed := make([]float64, n)
	turns := 1
	if n == 1 {
		turns = 2
	}
	for range turns {
		f.hold.Store(false)
		for i, e := range evals {
			cpu0[i] = readProc(e.pid).cpu
		}
		ns0, self0 := readProc(ns.pid).cpu, selfCPU()
		applied0, err := appliedSum(evals)
		if err != nil {
			return row, err
		}
		start := time.Now()
		if err := sleep(ctx, window); err != nil {
			return row, err
		}
		applied1, err := appliedSum(evals)
		if err != nil {
			return row, err
		}
		el := time.Since(start).Seconds()
		busResults += applied1 - applied0
		busSecs += el
		cpuSecs += el
		for i, e := range evals {
			cpuUsed[i] += readProc(e.pid).cpu - cpu0[i]
		}
		nsCPU += readProc(ns.pid).cpu - ns0
		selfUsed += selfCPU() - self0
		if n != 1 {
			continue
		}
		// HTTP's turn: the bus is held and its backlog drained first.
		f.hold.Store(true)
		if err := f.drain(ctx, 2*time.Minute); err != nil {
			return row, err
		}
		hcpu0 := readProc(evals[0].pid).cpu
		res, el2, err := httpWindow(ctx, evals[0], regions, digest, o.checks, o.agents, window)
		httpCPU += readProc(evals[0].pid).cpu - hcpu0
		if err != nil {
			return row, err
		}
		httpResults += res
		httpSecs += el2
	}
	row.bus = busResults / busSecs
	if httpSecs > 0 {
		row.http = httpResults / httpSecs
	}
	for i, e := range evals {
		p := readProc(e.pid)
		row.cpu = append(row.cpu, cpuUsed[i]/cpuSecs)
		row.rss = append(row.rss, p.rssMiB)
		m, _ := scrape(e.base + "/metrics")
		fmt.Fprintf(o.out, "  %s: CPU %.2f s/s, RSS %.1f MiB (peak %.1f), %.0f results applied, %.0f skipped\n", names[i],
			cpuUsed[i]/cpuSecs, p.rssMiB, p.peakMiB, m.sum("outpost_ingest_results_total"), m.sum("outpost_ingest_skipped_results_total"))
	}
	samples := lat.samples()
	row.p50, row.p99 = quantile(samples, 0.5), quantile(samples, 0.99)
	fmt.Fprintf(o.out, "  bus: %.0f results/s applied (published %d, publish errors %d, feed held %.0f%% of the time for lag); nats-server CPU %.2f s/s, this tool's %.2f s/s\n",
		row.bus, f.published.Load(), f.errors.Load(), 100*f.heldShare(), nsCPU/cpuSecs, selfUsed/cpuSecs)
	var evalCPU float64
	for _, c := range cpuUsed {
		evalCPU += c
	}
	fmt.Fprintf(o.out, "  evaluators' CPU per 1,000 results from the bus: %.1f ms\n", 1e6*evalCPU/max(1, busResults))
	if row.http > 0 {
		fmt.Fprintf(o.out, "  HTTP: %.0f results/s accepted; the evaluator's CPU per 1,000 results over HTTP: %.1f ms\n", row.http, 1e6*httpCPU/max(1, httpResults))
	}
	fmt.Fprintf(o.out, "  publish → PagerDuty trigger: %d samples, p50 %s, p99 %s, max %s (%d sentinels not yet paged when the run ended)\n",
		len(samples), row.p50.Round(time.Millisecond), row.p99.Round(time.Millisecond), quantile(samples, 1).Round(time.Millisecond), lat.missing())
	return row, nil
}

// appliedSum is the evaluators' outpost_ingest_results_total together.
func appliedSum(evals []*evalProc) (float64, error) {
	var sum float64
	for _, e := range evals {
		m, err := scrape(e.base + "/metrics")
		if err != nil {
			return 0, fmt.Errorf("%s: %w", e.label, err)
		}
		sum += m.sum("outpost_ingest_results_total")
	}
	return sum, nil
}

// httpWindow feeds e over HTTP for d, one agent per region (names of
// their own, so their sequence numbers are theirs), and returns the
// results it accepted and the seconds measured.
func httpWindow(ctx context.Context, e *evalProc, regions []string, digest string, nChecks, agents int, d time.Duration) (float64, float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	st := &sendStats{}
	client := newClient()
	var wg sync.WaitGroup
	for _, r := range regions {
		for k := range agents {
			var ids []string
			for i := k; i < nChecks; i += agents {
				ids = append(ids, checkID(i))
			}
			a := newAgentSim(r, fmt.Sprintf("bench-http-%s-%d", r, k), digest)
			wg.Add(1)
			go func() { defer wg.Done(); loadAgent(ctx, client, e.base, a, ids, st) }()
		}
	}
	start := time.Now()
	err := sleep(ctx, d)
	got := float64(st.results.Load())
	el := time.Since(start).Seconds()
	cancel()
	wg.Wait()
	return got, el, err
}

// busFeeder plays one agent per region on the bus.
type busFeeder struct {
	js          jetstream.JetStream
	o           busOptions
	regions     []*busAgent // every agent of every region
	regionNames []string
	// hold pauses the feed (HTTP's turn); lagging pauses it while a
	// consumer lags more than -max-lag.
	hold, lagging     atomic.Bool
	published, errors atomic.Int64
	heldNs, totalNs   atomic.Int64
}

// busAgent is one region's agent: its sequence numbers and publishes are
// serialised so that the stream stores them in order.
type busAgent struct {
	mu sync.Mutex
	a  *agentSim
	// part is which of the region's -agents this is: it reports the
	// checks whose number is part modulo -agents.
	part int
}

func newBusFeeder(js jetstream.JetStream, regions []string, digest string, o busOptions) *busFeeder {
	f := &busFeeder{js: js, o: o}
	f.regionNames = regions
	for _, r := range regions {
		for k := range o.agents {
			f.regions = append(f.regions, &busAgent{a: newAgentSim(r, fmt.Sprintf("bench-%s-%d", r, k), digest), part: k})
		}
	}
	return f
}

// publish signs body as a's next batch (patching its seq at at) and
// publishes it asynchronously to subject.
func (f *busFeeder) publish(ba *busAgent, subject string, body []byte, at int) {
	ba.mu.Lock()
	defer ba.mu.Unlock()
	seq := ba.a.nextSeq(time.Now())
	data := strconv.AppendUint(slices.Clone(body[:at]), seq, 10)
	data = append(data, body[at+19:]...)
	ts, sig := wire.Sign(ba.a.key, time.Now(), data)
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(wire.HeaderRegion, ba.a.region)
	m.Header.Set(wire.HeaderAgent, ba.a.name)
	m.Header.Set(wire.HeaderTimestamp, ts)
	m.Header.Set(wire.HeaderSignature, sig)
	m.Header.Set(jetstream.MsgIDHeader, bus.MsgID(ba.a.region, ba.a.name, seq))
	if _, err := f.js.PublishMsgAsync(m); err != nil {
		f.errors.Add(1)
	}
}

// run feeds every region until ctx ends.
func (f *busFeeder) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ba := range f.regions {
		wg.Add(2)
		go func() { defer wg.Done(); f.feed(ctx, ba) }()
		go func() { defer wg.Done(); f.live(ctx, ba) }()
	}
	wg.Wait()
}

// feed publishes ba's results of every check, shard by shard, as fast as
// the evaluators keep up.
func (f *busFeeder) feed(ctx context.Context, ba *busAgent) {
	byShard := make([][]string, f.o.shards)
	for i := ba.part; i < f.o.checks; i += f.o.agents {
		id := checkID(i)
		s := checks.Shard(id, f.o.shards)
		byShard[s] = append(byShard[s], id)
	}
	type part struct {
		subject string
		body    []byte
		at, n   int
	}
	var parts []part
	var built time.Time
	// With -rate, this agent's share of it paces the feed.
	perAgent := f.o.rate / float64(len(f.regions))
	start, sent := time.Now(), 0.0
	for k := 0; ctx.Err() == nil; k++ {
		if perAgent > 0 {
			if wait := time.Until(start.Add(time.Duration(sent / perAgent * float64(time.Second)))); wait > 0 {
				if sleep(ctx, wait) != nil {
					return
				}
			}
		}
		if f.hold.Load() || f.lagging.Load() {
			if sleep(ctx, 20*time.Millisecond) != nil {
				return
			}
			// A paced feed does not catch up on a pause in a burst.
			start, sent = time.Now(), 0
			continue
		}
		if time.Since(built) > 2*time.Second {
			built, parts = time.Now(), parts[:0]
			for s, ids := range byShard {
				bodies, at, counts := templates(ba.a, ids, built)
				for i := range bodies {
					parts = append(parts, part{bus.ResultsSubject(s, ba.a.region), bodies[i], at[i], counts[i]})
				}
			}
		}
		p := parts[k%len(parts)]
		f.publish(ba, p.subject, p.body, p.at)
		f.published.Add(int64(p.n))
		sent += float64(p.n)
	}
}

// live publishes ba's liveness message every second.
func (f *busFeeder) live(ctx context.Context, ba *busAgent) {
	for ctx.Err() == nil {
		body, at := placeholderBatch(ba.a, []wire.Result{}, time.Now())
		f.publish(ba, bus.LiveSubject(ba.a.region), body, at)
		if sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// watchLag holds the feed while any evaluator's consumer has more than
// -max-lag messages pending or unacknowledged.
func (f *busFeeder) watchLag(ctx context.Context, js jetstream.JetStream, stream string, names []string) {
	last := time.Now()
	for ctx.Err() == nil {
		worst := f.lag(ctx, js, stream, names)
		f.lagging.Store(worst > f.o.maxLag)
		now := time.Now()
		if f.lagging.Load() {
			f.heldNs.Add(int64(now.Sub(last)))
		}
		f.totalNs.Add(int64(now.Sub(last)))
		last = now
		if sleep(ctx, 200*time.Millisecond) != nil {
			return
		}
	}
}

func (f *busFeeder) lag(ctx context.Context, js jetstream.JetStream, stream string, names []string) int {
	worst := 0
	for _, name := range names {
		c, cancel := context.WithTimeout(ctx, bus.RequestTimeout)
		cons, err := js.Consumer(c, stream, bus.ConsumerName(name))
		if err == nil {
			var info *jetstream.ConsumerInfo
			if info, err = cons.Info(c); err == nil {
				worst = max(worst, int(info.NumPending)+info.NumAckPending)
			}
		}
		cancel()
		if err != nil {
			// Not made yet: the evaluator is starting; hold the feed.
			worst = max(worst, f.o.maxLag+1)
		}
	}
	return worst
}

// drain waits until no consumer lags.
func (f *busFeeder) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !f.lagging.Load() {
			if sleep(ctx, 500*time.Millisecond) != nil {
				return ctx.Err()
			}
			if !f.lagging.Load() {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the evaluators' consumers did not catch up within %s", limit)
}

func (f *busFeeder) heldShare() float64 {
	if t := f.totalNs.Load(); t > 0 {
		return float64(f.heldNs.Load()) / float64(t)
	}
	return 0
}

// latency measures publish → PagerDuty trigger with sentinel checks: all
// pass until, one at a time, one starts failing in every region.
type latency struct {
	ids     []string
	mu      sync.Mutex
	failing map[string]time.Time // sentinel → when its failure was published
	got     map[string]time.Duration
}

// newLatency makes n sentinels (at most 999): as many as the run turns
// failing, since every one is reported every second from every region.
func newLatency(n int) *latency {
	l := &latency{failing: map[string]time.Time{}, got: map[string]time.Duration{}}
	for i := range min(n, 999) {
		l.ids = append(l.ids, fmt.Sprintf("lat%03d", i))
	}
	return l
}

// arrived notes a trigger whose summary names a failing sentinel.
func (l *latency) arrived(summary string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, t0 := range l.failing {
		if _, done := l.got[id]; !done && strings.Contains(summary, id) {
			l.got[id] = now.Sub(t0)
		}
	}
}

// reset forgets the samples taken so far (the warm-up's).
func (l *latency) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.got)
	for id := range l.failing {
		l.got[id] = -1 // started before the measurement: not counted
	}
}

func (l *latency) samples() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, d := range l.got {
		if d >= 0 {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func (l *latency) missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.failing {
		if _, ok := l.got[id]; !ok {
			n++
		}
	}
	return n
}

// run publishes every sentinel's result from every region every second
// (its own agent per region), and every `every` turns the next sentinel
// to failing.
func (l *latency) run(ctx context.Context, f *busFeeder, every time.Duration) {
	var agents []*busAgent
	for _, r := range f.regionNames {
		agents = append(agents, &busAgent{a: newAgentSim(r, "bench-"+r+"-lat", f.regions[0].a.digest)})
	}
	next, lastTurn := 0, time.Time{}
	for ctx.Err() == nil {
		now := time.Now()
		l.mu.Lock()
		if now.Sub(lastTurn) >= every && next < len(l.ids) {
			l.failing[l.ids[next]] = now
			next++
			lastTurn = now
		}
		failing := make(map[string]bool, len(l.failing))
		for id := range l.failing {
			failing[id] = true
		}
		l.mu.Unlock()
		for _, ba := range agents {
			byShard := map[int][]wire.Result{}
			for _, id := range l.ids {
				s := checks.Shard(id, f.o.shards)
				byShard[s] = append(byShard[s], ba.a.result(id, !failing[id], now))
			}
			for s, results := range byShard {
				body, at := placeholderBatch(ba.a, results, now)
				f.publish(ba, bus.ResultsSubject(s, ba.a.region), body, at)
			}
		}
		if sleep(ctx, min(every, time.Second)) != nil {
			return
		}
	}
}

// waitStream waits until an evaluator has made the stream.
func waitStream(ctx context.Context, js jetstream.JetStream, stream string, ns *child) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if done, err := ns.exited(); done {
			return fmt.Errorf("nats-server exited (%v); see its log", err)
		}
		c, cancel := context.WithTimeout(ctx, bus.RequestTimeout)
		_, err := js.Stream(c, stream)
		cancel()
		if err == nil {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("no evaluator made the stream %s within 60s; see their logs", stream)
}

// waitTCP waits until addr accepts connections or c ends.
func waitTCP(ctx context.Context, addr string, c *child) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if done, err := c.exited(); done {
			return fmt.Errorf("%s exited (%v); see its log", c.name, err)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not accept connections within 60s", addr)
}
