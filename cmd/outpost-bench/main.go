// Command outpost-bench measures Outpost under load with real processes
// over loopback HTTP, and its detectors on labelled data. It has five modes:
//
//	outpost-bench [agent] [flags]   the agent's CPU per probe beside blackbox_exporter's
//	outpost-bench storm [flags]     an evaluator through a failure storm and its recovery
//	outpost-bench ingest [flags]    an evaluator's ingest rate of signed batches over HTTP
//	outpost-bench bus [flags]       evaluators fed over NATS JetStream: 1, 2, 4 of them, and HTTP beside
//	outpost-bench nab -data DIR     the series detectors scored on the Numenta Anomaly Benchmark
//
// Run it from the repository root (it builds ./cmd/outpost unless told
// which binary to use). Everything it starts listens on 127.0.0.1 on ports
// chosen at run time, and every process it starts is stopped when it ends,
// Ctrl-C included. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `outpost-bench measures Outpost under load: real processes, real HTTP on
127.0.0.1, ports chosen at run time. Run it from the repository root.

Usage:
  outpost-bench [agent] [flags]   agent CPU per probe vs blackbox_exporter (the default mode)
  outpost-bench storm [flags]     an evaluator through a failure storm and its recovery
  outpost-bench ingest [flags]    evaluator ingest of signed batches over HTTP, results/s
  outpost-bench bus [flags]       evaluators fed over NATS JetStream, 1/2/4 of them, results/s and latency
  outpost-bench nab -data DIR     the series detectors on the Numenta Anomaly Benchmark, NAB scores
  outpost-bench help MODE         one mode and its flags
  outpost-bench -h                every mode and every flag

agent: starts "outpost agent" (its default, auto-sized --workers) shipping
  signed batches to a real "outpost evaluator", and blackbox_exporter scraped
  at the same rate, both probing one loopback target. The two sides are
  measured in alternating windows (A B A B ...): the side not measured is
  paused (the agent with SIGSTOP, blackbox_exporter by not scraping it), so
  machine noise falls on both alike. Prints every window and the median
  ratio of CPU per probe.

storm: starts a real "outpost evaluator" with N HTTP checks in 3 regions and
  a PagerDuty notifier pointed at an in-process fake Events v2 API, and plays
  the agents itself: per region, signed batches over HTTP as agents send
  them. Phases: healthy (warm-up), storm (every check fails everywhere until
  every check is DOWN), recovery (every check passes until every check is OK
  and every region LIVE). Prints CPU-s per 1,000 state transitions, bytes
  written per transition, /healthz and /status.json p99 during the storm,
  time to all OK+LIVE after recovery, PagerDuty events, log lines per minute
  and peak RSS. With -outpost-before or -before-ref, an older evaluator runs
  at the same time on its own port and data dir, fed the same batches byte
  for byte, and the two are printed side by side with ratios.

ingest: starts a real "outpost evaluator" with N checks in 5 regions and
  sends it signed batches as fast as it accepts them, each agent one batch
  at a time. Prints results/s for each -gomaxprocs value, RSS every minute
  and at the end, and beside it BenchmarkIngest (in-process, no HTTP) as a
  ratio.

bus: starts a nats-server and N evaluators each owning 1/N of the shards,
  publishes every region's results over JetStream as agents do, and prints
  results/s applied, each evaluator's CPU and RSS, and publish → page
  latency; with one evaluator, HTTP beside it as a ratio.

nab: replays the labelled series of a NAB corpus through the series:
  detectors (alerting/shape, in-process, the file's timestamps as the clock,
  the project's defaults) and prints the NAB scores, the windows caught and
  the false alarms per series-week; -out writes NAB results files.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout)
	stop()
	killChildren()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "outpost-bench: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "outpost-bench:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func dispatch(ctx context.Context, args []string, out io.Writer) error {
	mode := "agent"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		mode, args = "help", nil
	}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "agent":
		return agentCmd(ctx, args, out)
	case "storm":
		return stormCmd(ctx, args, out)
	case "ingest":
		return ingestCmd(ctx, args, out)
	case "nab":
		return nabCmd(ctx, args, out)
	case "bus":
		return busCmd(ctx, args, out)
	case "help":
		if len(args) == 1 {
			return dispatch(ctx, []string{args[0], "-h"}, out)
		}
		fmt.Fprint(os.Stderr, usage)
		for _, m := range []string{"agent", "storm", "ingest", "bus", "nab"} {
			fmt.Fprintf(os.Stderr, "\n────────────────────────────────────────────────────────────\n")
			_ = dispatch(ctx, []string{m, "-h"}, out)
		}
		return flag.ErrHelp
	}
	fmt.Fprintf(os.Stderr, "outpost-bench: unknown mode %q\n\n%s", mode, usage)
	return errUsage
}

// newFlagSet is a flag set whose -h prints the mode's description.
func newFlagSet(mode, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("outpost-bench "+mode, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: outpost-bench %s [flags]\n\n%s\n\nFlags:\n", mode, about)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}
