package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"
)

const stormAbout = `Runs a real "outpost evaluator" (built from ./cmd/outpost unless -outpost is
given) through a failure storm: -checks HTTP checks in -regions regions, every
check with a PagerDuty notifier whose url is a fake Events v2 API in this
process (counting events by action and dedup key, answering 202). This tool
plays one agent per region, sending signed batches over HTTP every second as
agents do (probes/wire's Batch and Sign, sequence numbers from the clock, the
configuration digest), each agent one batch at a time per evaluator.

Phases: healthy for at least -warmup and until every check is OK and every
region LIVE (then one more interval measured as the idle cost); storm, every
check failing ("connection refused") in every region until /status.json says
every check is DOWN, plus -hold; recovery, every check passing until every
check is OK and every region LIVE; then -settle for the last notifications.

Transitions are check state changes seen between successive reads of
/status.json (every -poll), so a state held shorter than that may be missed.
CPU (utime+stime), bytes written (/proc/PID/io write_bytes), log lines and
PagerDuty events are counted from storm start to the end of -settle.
/healthz is read every 100ms and /status.json every -poll over that window.

-outpost-before or -before-ref runs an older evaluator at the same time, on
its own port and data dir, fed the same batches byte for byte at the same
moments: the two share the machine's noise, which taking turns would not
spread evenly over a run whose phases depend on state. Both then compete for
the same cores, so absolute figures are higher than with one evaluator alone;
compare the ratios.`

func stormCmd(ctx context.Context, args []string, out io.Writer) error {
	o := stormOptions{out: out}
	fs := newFlagSet("storm", stormAbout)
	fs.IntVar(&o.checks, "checks", 10000, "HTTP checks in the configuration, each run in every region")
	fs.IntVar(&o.regions, "regions", 3, "regions, each with its own agent and key (at most 8)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "interval of every check; results arrive at this schedule")
	fs.DurationVar(&o.warmup, "warmup", 30*time.Second, "least time healthy before the storm")
	fs.DurationVar(&o.hold, "hold", 0, "how long the storm goes on after every check is DOWN")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "time after recovery for the last notifications, inside the measured window")
	fs.DurationVar(&o.limit, "limit", 10*time.Minute, "longest wait for each phase's condition (all OK, all DOWN)")
	fs.DurationVar(&o.poll, "poll", time.Second, "how often /status.json is read per evaluator")
	fs.StringVar(&o.outpost, "outpost", "", "outpost binary under test (default: go build ./cmd/outpost)")
	fs.StringVar(&o.before, "outpost-before", "", "an older outpost binary to run beside it")
	fs.StringVar(&o.beforeRef, "before-ref", "", "a git ref to build the older binary from, in a temporary git worktree")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of the evaluators (0: leave unset, the default a user gets)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configuration, data dirs, evaluator logs)")
	fs.IntVar(&o.services, "services", 0, "spread the checks over this many services (labels.service); 0: no labels")
	fs.BoolVar(&o.grouping, "grouping", false, "group pages by labels.service (defaults.grouping); needs -services, and a binary that knows grouping:, so not with -outpost-before or -before-ref")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.grouping && (o.services < 1 || o.before != "" || o.beforeRef != "") {
		return fmt.Errorf("-grouping needs -services N, and an older binary would refuse its configuration: drop -outpost-before and -before-ref")
	}
	if o.before != "" && o.beforeRef != "" {
		return fmt.Errorf("give -outpost-before or -before-ref, not both")
	}
	if o.checks < 1 || o.interval < time.Second {
		return fmt.Errorf("need -checks ≥ 1 and -interval ≥ 1s")
	}
	fmt.Fprintf(out, "outpost-bench storm, %d CPUs, GOMAXPROCS of the evaluators: %s\n", runtime.NumCPU(), gmp(o.gomaxprocs))
	figs, err := runStorm(ctx, o)
	if err != nil {
		return err
	}
	printStorm(out, o, figs)
	for _, f := range figs {
		if !f.allOK {
			return fmt.Errorf("%s evaluator did not recover", f.label)
		}
	}
	return nil
}

func gmp(n int) string {
	if n <= 0 {
		return "unset"
	}
	return fmt.Sprint(n)
}
