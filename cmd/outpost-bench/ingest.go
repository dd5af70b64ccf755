package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

const ingestAbout = `Starts a real "outpost evaluator" (built from ./cmd/outpost unless -outpost is
given) with -checks HTTP checks in -regions regions and a data dir (so every
accepted batch is recorded durably, as in production), and sends it signed
batches of 500 passing results over HTTP as fast as it accepts them:
-agents agents per region, each sending one batch at a time and waiting for
the answer, as an agent does per evaluator. Batches are built ahead from
templates (rebuilt every 30s so result times stay current) and signed at send
time with probes/wire's Sign. The first -warmup is not counted.

For each value of -gomaxprocs (the evaluator's GOMAXPROCS), it prints the
results/s accepted (from the answers; cross-checked with the evaluator's
outpost_ingest_results_total), the evaluator's CPU per 1,000 results, its
RSS every -rss-every and at the end, and this tool's own CPU (it shares the
machine). Unless -inprocess=false, it first runs the in-process figure,
BenchmarkIngest and BenchmarkIngestParallelDataDir of ./alerting with -cpu
set to the same value, and prints its ratio to the figure over HTTP.

The issue asks for RSS after 30 minutes: run with -duration 30m for that; the
default is short.`

type ingestOptions struct {
	checks, regions, agents int
	duration, warmup, every time.Duration
	gomaxprocs              string
	outpost                 string
	inprocess               bool
	benchtime               string
	out                     io.Writer
}

func ingestCmd(ctx context.Context, args []string, out io.Writer) error {
	o := ingestOptions{out: out}
	fs := newFlagSet("ingest", ingestAbout)
	fs.IntVar(&o.checks, "checks", 10000, "HTTP checks in the configuration, each run in every region")
	fs.IntVar(&o.regions, "regions", 5, "regions (at most 8)")
	fs.IntVar(&o.agents, "agents", 1, "agents per region, each one batch in flight; a region's checks are split among them")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "measured time per -gomaxprocs value (the issue asks for 30m)")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "time sent but not counted before measuring")
	fs.DurationVar(&o.every, "rss-every", time.Minute, "how often to print the evaluator's RSS")
	fs.StringVar(&o.gomaxprocs, "gomaxprocs", "1,2", "comma-separated GOMAXPROCS values for the evaluator, one run each")
	fs.StringVar(&o.outpost, "outpost", "", "outpost binary (default: go build ./cmd/outpost)")
	fs.BoolVar(&o.inprocess, "inprocess", true, "also run BenchmarkIngest in-process (go test, from the repository root) for the ratio")
	fs.StringVar(&o.benchtime, "benchtime", "3s", "-benchtime of the in-process benchmarks")
	if err := parse(fs, args); err != nil {
		return err
	}
	var procs []int
	for _, f := range strings.Split(o.gomaxprocs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-gomaxprocs: %q is not a positive integer", f)
		}
		procs = append(procs, n)
	}
	dir, err := os.MkdirTemp("", "outpost-bench-ingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.outpost == "" {
		if o.outpost, err = buildCurrent(dir, "outpost"); err != nil {
			return err
		}
	}
	var test string
	if o.inprocess {
		if test, err = buildTest(dir); err != nil {
			return err
		}
	}
	bc := benchConfig{checks: o.checks, regions: regionNames(o.regions), interval: 10 * time.Second}
	cfgPath := filepath.Join(dir, "ingest.yaml")
	digest, err := bc.write(cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "outpost-bench ingest: %d checks × %d regions, %d agent(s) per region, batches of 500, %s measured after %s\n",
		o.checks, len(bc.regions), o.agents, o.duration, o.warmup)
	type row struct {
		procs         int
		http, inproc  float64
		inprocDataDir float64
	}
	var rows []row
	for _, p := range procs {
		r := row{procs: p, inproc: -1, inprocDataDir: -1}
		if o.inprocess {
			r.inproc, r.inprocDataDir, err = runInProcess(ctx, test, p, o.benchtime, out)
			if err != nil {
				return err
			}
		}
		if r.http, err = ingestOnce(ctx, o, bc, digest, cfgPath, dir, p); err != nil {
			return err
		}
		rows = append(rows, r)
	}
	fmt.Fprintf(out, "\n%-10s %16s %22s %10s %30s %10s\n", "GOMAXPROCS", "HTTP results/s", "BenchmarkIngest res/s", "ratio", "...ParallelDataDir res/s", "ratio")
	for _, r := range rows {
		fmt.Fprintf(out, "%-10d %16.0f %22s %10s %30s %10s\n", r.procs, r.http, num(r.inproc), ratio(r.inproc, r.http), num(r.inprocDataDir), ratio(r.inprocDataDir, r.http))
	}
	fmt.Fprintln(out, "ratio: in-process figure / HTTP figure")
	return nil
}

func num(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", x)
}

func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// ingestOnce runs one evaluator with GOMAXPROCS=procs under full load and
// returns the results/s it accepted.
func ingestOnce(ctx context.Context, o ingestOptions, bc benchConfig, digest, cfgPath, dir string, procs int) (float64, error) {
	label := fmt.Sprintf("gomaxprocs%d", procs)
	e, err := startEvaluator(ctx, label, o.outpost, cfgPath, dir, bc.evalEnv("unused", procs), "")
	if err != nil {
		return 0, err
	}
	defer e.stop(10 * time.Second)
	fmt.Fprintf(o.out, "\nGOMAXPROCS=%d: evaluator pid %d at %s\n", procs, e.pid, e.base)
	runCtx, cancel := context.WithCancel(ctx)
	st := &sendStats{}
	client := newClient()
	var wg sync.WaitGroup
	for _, region := range bc.regions {
		for k := range o.agents {
			a := newAgentSim(region, fmt.Sprintf("bench-%s-%d", region, k), digest)
			var mine []string
			for i := k; i < bc.checks; i += o.agents {
				mine = append(mine, checkID(i))
			}
			wg.Add(1)
			go func() { defer wg.Done(); loadAgent(runCtx, client, e.base, a, mine, st) }()
		}
	}
	defer func() { cancel(); wg.Wait() }()
	if err := sleep(ctx, o.warmup); err != nil {
		return 0, err
	}
	m0, _ := scrape(e.base + "/metrics")
	r0, p0, self0 := st.results.Load(), readProc(e.pid), selfCPU()
	start := time.Now()
	next := o.every
	for {
		left := o.duration - time.Since(start)
		if left <= 0 {
			break
		}
		if err := sleep(ctx, min(left, next-time.Since(start))); err != nil {
			return 0, err
		}
		if el := time.Since(start); el >= next && el < o.duration {
			p := readProc(e.pid)
			fmt.Fprintf(o.out, "  %6s  %9.0f results/s so far  RSS %6.1f MiB\n", el.Round(time.Second),
				float64(st.results.Load()-r0)/el.Seconds(), p.rssMiB)
			next += o.every
		}
	}
	el := time.Since(start).Seconds()
	r1, p1, self1 := st.results.Load(), readProc(e.pid), selfCPU()
	m1, _ := scrape(e.base + "/metrics")
	cancel()
	rate := float64(r1-r0) / el
	fmt.Fprintf(o.out, "  %6s  %9.0f results/s  (evaluator's count: %.0f/s)  %d batches, %d retried, %d refused\n",
		time.Duration(el*float64(time.Second)).Round(time.Second), rate,
		(m1.sum("outpost_ingest_results_total")-m0.sum("outpost_ingest_results_total"))/el,
		st.batches.Load(), st.retries.Load(), st.rejected.Load())
	fmt.Fprintf(o.out, "  evaluator CPU %.2f s/s, %.1f ms per 1,000 results; RSS at the end %.1f MiB, peak %.1f MiB; this tool's CPU %.2f s/s\n",
		(p1.cpu-p0.cpu)/el, (p1.cpu-p0.cpu)/float64(max(1, r1-r0))*1e6, p1.rssMiB, p1.peakMiB, (self1-self0)/el)
	if r := st.firstReject.Load(); r != nil {
		fmt.Fprintf(o.out, "  first refusal: %s\n", *r)
	}
	return rate, nil
}

// seqPlaceholder has the 19 digits of every sequence number from the clock
// in nanoseconds until 2286, so a template's seq is patched in place.
const seqPlaceholder = 1_000_000_000_000_000_000

// loadAgent sends a's batches of checks, one at a time, until ctx ends.
func loadAgent(ctx context.Context, client *http.Client, base string, a *agentSim, checks []string, st *sendStats) {
	var (
		bodies    [][]byte
		at, count []int
		built     time.Time
	)
	for k := 0; ctx.Err() == nil; k++ {
		if time.Since(built) > 30*time.Second {
			built = time.Now()
			bodies, at, count = templates(a, checks, built)
		}
		i := k % len(bodies)
		// The previous send of this body has been answered: patch in place.
		strconv.AppendUint(bodies[i][:at[i]], a.nextSeq(time.Now()), 10)
		if post(ctx, client, base, a, bodies[i], count[i], st) != nil {
			return
		}
	}
}

// templates seals a's results of checks, passing, at now into batch
// bodies with seqPlaceholder as their seq, and returns them with the
// offset of the seq digits in each.
func templates(a *agentSim, checks []string, now time.Time) (bodies [][]byte, at []int, counts []int) {
	for len(checks) > 0 {
		n := min(len(checks), 500)
		results := make([]wire.Result, n)
		for i, c := range checks[:n] {
			results[i] = a.result(c, true, now)
		}
		body, i := placeholderBatch(a, results, now)
		bodies, at, counts = append(bodies, body), append(at, i), append(counts, n)
		checks = checks[n:]
	}
	return bodies, at, counts
}
