package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// stormOptions configure "outpost-bench storm".
type stormOptions struct {
	checks, regions                       int
	interval, warmup, hold, settle, limit time.Duration
	poll                                  time.Duration
	outpost, before, beforeRef            string
	gomaxprocs                            int
	keep                                  bool
	services                              int
	grouping                              bool
	out                                   io.Writer
}

// stormFigures are one evaluator's measurements of a storm.
type stormFigures struct {
	label                   string
	toDown, toOK            time.Duration // -1: not reached
	allOK                   bool
	transitions             int
	shutdown                time.Duration // from SIGTERM to exit, after the run
	killed                  bool
	healthyCPUps            float64
	cpu, writeBytes         float64
	window                  time.Duration
	healthzP99, statusP99   time.Duration
	healthzN, statusN, errs int
	pd                      pdCounts
	logLines                int64
	peakMiB, endMiB         float64
	backlog                 int
	outboxPending           float64 // -1: not exported
	rejected                int64
	firstReject             string
}

var regionPool = []string{"us-east", "eu-west", "ap-south", "sa-east", "af-south", "us-west", "eu-north", "ap-east"}

func regionNames(n int) []string { return regionPool[:max(1, min(n, len(regionPool)))] }

// runStorm runs the storm against the evaluator under test and, if asked,
// an older one side by side, and returns their figures (the one under
// test first).
func runStorm(ctx context.Context, o stormOptions) ([]stormFigures, error) {
	dir, err := os.MkdirTemp("", "outpost-bench-storm-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(o.out, "keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	type side struct{ label, bin string }
	sides := []side{{"after", o.outpost}}
	if sides[0].bin == "" {
		if sides[0].bin, err = buildCurrent(dir, "outpost-after"); err != nil {
			return nil, err
		}
	}
	switch {
	case o.before != "":
		sides = append(sides, side{"before", o.before})
	case o.beforeRef != "":
		bin, err := buildRef(o.beforeRef, dir, "outpost-before")
		if err != nil {
			return nil, err
		}
		sides = append(sides, side{"before", bin})
	}

	pd := newFakePD()
	pdAddr, stopPD, err := serve(pd)
	if err != nil {
		return nil, err
	}
	defer stopPD()
	bc := benchConfig{checks: o.checks, regions: regionNames(o.regions), interval: o.interval, pdURL: "http://" + pdAddr,
		services: o.services, grouping: o.grouping}
	cfgPath := filepath.Join(dir, "storm.yaml")
	digest, err := bc.write(cfgPath)
	if err != nil {
		return nil, err
	}
	var evals []*evalProc
	defer func() {
		for _, e := range evals {
			e.stop(10 * time.Second)
		}
	}()
	for _, s := range sides {
		key := "pd-key-" + s.label
		e, err := startEvaluator(ctx, s.label, s.bin, cfgPath, dir, bc.evalEnv(key, o.gomaxprocs), key)
		if err != nil {
			return nil, err
		}
		evals = append(evals, e)
	}
	fmt.Fprintf(o.out, "storm: %d checks × %d regions, interval %s, failure {consecutive: 2}, recovery {consecutive: 2} (defaults), PagerDuty fake on %s\n",
		bc.checks, len(bc.regions), bc.interval, pdAddr)
	for i, e := range evals {
		fmt.Fprintf(o.out, "  %-6s %s at %s (pid %d)\n", e.label, sides[i].bin, e.base, e.pid)
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	f := newFeeder(bc, digest, evals)
	wg.Add(1)
	go func() { defer wg.Done(); f.run(runCtx) }()
	var polls []*poller
	for _, e := range evals {
		p := newPoller(e, o.poll)
		polls = append(polls, p)
		wg.Add(1)
		go func() { defer wg.Done(); p.run(runCtx) }()
	}
	allOK := func(v statusView) bool {
		return len(v.checks) >= bc.checks && v.count("OK") == len(v.checks) && v.allLive(bc.regions)
	}
	allDown := func(v statusView) bool { return len(v.checks) >= bc.checks && v.count("DOWN") == len(v.checks) }

	// Healthy: every check OK and every region LIVE, then one interval
	// measured as the idle cost.
	progress(o.out, "healthy: warming up for at least %s", o.warmup)
	if err := sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	if _, err := waitEach(ctx, polls, allOK, o.limit); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	h0 := snapshots(evals, pd)
	if err := sleep(ctx, o.interval); err != nil {
		return nil, err
	}
	h1 := snapshots(evals, pd)

	// Storm: every check fails in every region until every check is DOWN.
	s0 := snapshots(evals, pd)
	self0 := selfCPU()
	for _, p := range polls {
		p.record(true)
	}
	stormAt := time.Now()
	f.failing.Store(true)
	progress(o.out, "storm: every check failing in every region")
	downAt, err := waitEach(ctx, polls, allDown, o.limit)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	if err := sleep(ctx, o.hold); err != nil {
		return nil, err
	}

	// Recovery: every check passes again until OK everywhere.
	recAt := time.Now()
	f.failing.Store(false)
	progress(o.out, "recovery: every check passing")
	okAt, err := waitEach(ctx, polls, allOK, o.limit)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	progress(o.out, "settling %s for the last notifications", o.settle)
	if err := sleep(ctx, o.settle); err != nil {
		return nil, err
	}
	for _, p := range polls {
		p.record(false)
	}
	s1 := snapshots(evals, pd)
	endAt := time.Now()
	progress(o.out, "this tool (agents, pollers, fake PagerDuty) used %.1f CPU-s in the storm window", selfCPU()-self0)

	var figs []stormFigures
	for i, e := range evals {
		p := polls[i]
		p.mu.Lock()
		fg := stormFigures{label: e.label, toDown: since(downAt[i], stormAt), toOK: since(okAt[i], recAt), allOK: !okAt[i].IsZero(),
			transitions: p.transitions, healthyCPUps: (h1[i].proc.cpu - h0[i].proc.cpu) / h1[i].at.Sub(h0[i].at).Seconds(),
			cpu: s1[i].proc.cpu - s0[i].proc.cpu, writeBytes: s1[i].proc.writeBytes - s0[i].proc.writeBytes, window: endAt.Sub(stormAt),
			healthzP99: quantile(p.healthz, 0.99), statusP99: quantile(p.status, 0.99), healthzN: len(p.healthz), statusN: len(p.status), errs: p.errs,
			pd: s1[i].pd, logLines: s1[i].lines - s0[i].lines, peakMiB: s1[i].proc.peakMiB, endMiB: s1[i].proc.rssMiB,
			backlog: f.backlog(i), rejected: f.stats[i].rejected.Load()}
		p.mu.Unlock()
		fg.pd.Triggers -= s0[i].pd.Triggers
		fg.pd.Resolves -= s0[i].pd.Resolves
		fg.outboxPending = -1
		if m, err := scrape(e.base + "/metrics"); err == nil && m.has("outpost_outbox_pending") {
			fg.outboxPending = m.sum("outpost_outbox_pending")
		}
		if r := f.stats[i].firstReject.Load(); r != nil {
			fg.firstReject = *r
		}
		figs = append(figs, fg)
	}
	// Shutdown right after the storm, with whatever is still pending.
	for i, e := range evals {
		figs[i].shutdown, figs[i].killed = e.stop(30 * time.Second)
	}
	return figs, nil
}

func since(t, from time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(from)
}

func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// snap is one evaluator's counters at one moment.
type snap struct {
	at    time.Time
	proc  procStat
	pd    pdCounts
	lines int64
}

func snapshots(evals []*evalProc, pd *fakePD) []snap {
	out := make([]snap, len(evals))
	for i, e := range evals {
		out[i] = snap{at: time.Now(), proc: readProc(e.pid), pd: pd.counts(e.pdKey), lines: e.log.lines.Load()}
	}
	return out
}

var errTimeout = errors.New("condition not reached in time")

// waitEach waits until cond holds of every poller's view, or limit
// passes, and returns when each first held (zero for those it never did).
func waitEach(ctx context.Context, polls []*poller, cond func(statusView) bool, limit time.Duration) ([]time.Time, error) {
	at := make([]time.Time, len(polls))
	deadline := time.Now().Add(limit)
	for {
		done := true
		for i, p := range polls {
			if !at[i].IsZero() {
				continue
			}
			if done, err := p.e.exited(); done {
				return at, fmt.Errorf("%s exited: %v", p.e.name, err)
			}
			if v, arrived, ok := p.latest(); ok && cond(v) {
				at[i] = arrived
			} else {
				done = false
			}
		}
		if done {
			return at, nil
		}
		if time.Now().After(deadline) {
			return at, errTimeout
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return at, err
		}
	}
}

// printStorm prints the figures side by side, with after/before ratios.
func printStorm(w io.Writer, o stormOptions, figs []stormFigures) {
	goal := o.interval + 2*o.interval
	fmt.Fprintf(w, "\n%-44s", "")
	for _, f := range figs {
		fmt.Fprintf(w, " %16s", f.label)
	}
	if len(figs) == 2 {
		fmt.Fprintf(w, " %12s", "after/before")
	}
	fmt.Fprintln(w)
	row := func(name string, vals func(stormFigures) float64, format string) {
		fmt.Fprintf(w, "%-44s", name)
		var v []float64
		for _, f := range figs {
			x := vals(f)
			v = append(v, x)
			if x < 0 {
				fmt.Fprintf(w, " %16s", "n/a")
			} else {
				fmt.Fprintf(w, " %16s", fmt.Sprintf(format, x))
			}
		}
		if len(v) == 2 {
			if v[1] > 0 && v[0] >= 0 {
				fmt.Fprintf(w, " %12.2f", v[0]/v[1])
			} else {
				fmt.Fprintf(w, " %12s", "-")
			}
		}
		fmt.Fprintln(w)
	}
	secs := func(d time.Duration) float64 {
		if d < 0 {
			return -1
		}
		return d.Seconds()
	}
	ms := func(d time.Duration) float64 {
		if d < 0 {
			return -1
		}
		return float64(d) / 1e6
	}
	row("healthy CPU (CPU-s per s)", func(f stormFigures) float64 { return f.healthyCPUps }, "%.3f")
	row("storm→all DOWN (s)", func(f stormFigures) float64 { return secs(f.toDown) }, "%.1f")
	row(fmt.Sprintf("recovery→all OK+LIVE (s; goal ≤ %s)", goal), func(f stormFigures) float64 { return secs(f.toOK) }, "%.1f")
	row("check state transitions seen", func(f stormFigures) float64 { return float64(f.transitions) }, "%.0f")
	row("CPU-s in the storm window", func(f stormFigures) float64 { return f.cpu }, "%.2f")
	row("CPU-s per 1,000 transitions", func(f stormFigures) float64 { return perK(f.cpu, f.transitions) }, "%.3f")
	row("bytes written in the storm window", func(f stormFigures) float64 { return f.writeBytes }, "%.0f")
	row("bytes written per transition", func(f stormFigures) float64 { return perK(f.writeBytes, f.transitions) / 1000 }, "%.0f")
	row("/healthz p99 (ms; goal < 100)", func(f stormFigures) float64 { return ms(f.healthzP99) }, "%.1f")
	row("/healthz samples", func(f stormFigures) float64 { return float64(f.healthzN) }, "%.0f")
	row("/status.json p99 (ms; goal < 100)", func(f stormFigures) float64 { return ms(f.statusP99) }, "%.1f")
	row("/status.json samples", func(f stormFigures) float64 { return float64(f.statusN) }, "%.0f")
	row("poll errors", func(f stormFigures) float64 { return float64(f.errs) }, "%.0f")
	row("PagerDuty events (goal ≤ 10)", func(f stormFigures) float64 { return float64(f.pd.Triggers + f.pd.Resolves) }, "%.0f")
	row("  triggers", func(f stormFigures) float64 { return float64(f.pd.Triggers) }, "%.0f")
	row("  resolves", func(f stormFigures) float64 { return float64(f.pd.Resolves) }, "%.0f")
	row("  distinct dedup keys (whole run)", func(f stormFigures) float64 { return float64(len(f.pd.Keys)) }, "%.0f")
	row("  still in the outbox at the end", func(f stormFigures) float64 { return f.outboxPending }, "%.0f")
	row("  invalid events (400)", func(f stormFigures) float64 { return float64(f.pd.Invalid) }, "%.0f")
	row("log lines in the storm window", func(f stormFigures) float64 { return float64(f.logLines) }, "%.0f")
	row("log lines per minute (goal ≤ 100)", func(f stormFigures) float64 { return float64(f.logLines) / f.window.Minutes() }, "%.1f")
	row("peak RSS, VmHWM (MiB)", func(f stormFigures) float64 { return f.peakMiB }, "%.1f")
	row("RSS at the end (MiB)", func(f stormFigures) float64 { return f.endMiB }, "%.1f")
	row("deepest batch queue of one agent", func(f stormFigures) float64 { return float64(f.backlog) }, "%.0f")
	row("batches refused (4xx)", func(f stormFigures) float64 { return float64(f.rejected) }, "%.0f")
	row("shutdown after SIGTERM (s; killed after 30s)", func(f stormFigures) float64 { return f.shutdown.Seconds() }, "%.2f")
	for _, f := range figs {
		if f.killed {
			fmt.Fprintf(w, "  %s did not stop within 30s of SIGTERM and was killed\n", f.label)
		}
	}
	fmt.Fprintf(w, "\nstorm window: storm start to %s after every evaluator was all OK+LIVE (%s).\n", o.settle, figs[0].window.Round(time.Second))
	for _, f := range figs {
		if !f.allOK {
			fmt.Fprintf(w, "%s: NOT every check OK and region LIVE within %s of recovery\n", f.label, o.limit)
		}
		if f.firstReject != "" {
			fmt.Fprintf(w, "%s: first refusal: %s\n", f.label, f.firstReject)
		}
	}
}

func perK(x float64, n int) float64 {
	if n <= 0 {
		return -1
	}
	return x / float64(n) * 1000
}
