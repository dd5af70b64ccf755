package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/wire"
)

const checkUsage = `Usage: outpost check -c FILE [--only ID] [--region NAME] [--format table|json|prometheus]

Runs every check once from this machine, in parallel, and prints each result:
whether it passed, how long it took and, when it failed, why.

  --format table       a table: check, region, result, latency, reason (default)
  --format json        one JSON object per result per line, the agent wire format
  --format prometheus  the probe metrics in Prometheus text format

With --region, only the checks assigned to that region run, labelled with it;
without it, every check runs, labelled "local".

Exit status: 0 every check passed, 1 some failed, 2 bad usage or configuration.

Flags:
`

func cmdCheck(ctx context.Context, args []string, e env) int {
	cmd := newCommand("check", checkUsage, e)
	fs := cmd.fs
	var only configFlag
	fs.Var(&only, "only", "run only the check with this `id`; repeatable, or comma-separated")
	region := fs.String("region", "", "run as this `region`: only its checks, results labelled with it")
	format := fs.String("format", "table", "output `format`: table, json or prometheus")
	parallel := fs.Int("parallel", 16, "how many checks may run at once")
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	switch {
	case *format != "table" && *format != "json" && *format != "prometheus":
		fmt.Fprintf(e.stderr, "outpost check: unknown --format %q; use table, json or prometheus\n", *format)
		return exitUsage
	case *parallel < 1:
		fmt.Fprintln(e.stderr, "outpost check: --parallel must be at least 1")
		return exitUsage
	}
	// Only the secrets of the checks it runs: not the agents' keys, not the
	// notifiers', not those of checks left out by --only or --region.
	cfg, err := checks.LoadFor(files, e.lookup, checks.Needs{})
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	selected, label, err := selectChecks(cfg, only, *region)
	if err != nil {
		fmt.Fprintf(e.stderr, "outpost check: %v\n", err)
		return exitUsage
	}
	if err := cfg.RequireSecrets(checks.Needs{Checks: func(c *checks.Check) bool { return slices.Contains(selected, c) }}); err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitUsage
	}
	probers := make([]probes.Prober, len(selected))
	for i, c := range selected {
		p, err := probes.New(c, probes.Options{Region: label, Redact: cfg.Redactor()})
		if err != nil {
			fmt.Fprintf(e.stderr, "outpost check: %v\n", err)
			return exitUsage
		}
		probers[i] = p
	}
	results := runAll(ctx, probers, *parallel)

	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	switch *format {
	case "json":
		err = writeJSON(e.stdout, results)
	case "prometheus":
		err = writeMetrics(e.stdout, results)
	default:
		err = writeTable(e.stdout, results, failed)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "outpost check: write output: %v\n", err)
		return exitUsage
	}
	if ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "outpost check: interrupted")
		return exitFailed
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}

// selectChecks applies --only and --region and returns the region label.
func selectChecks(cfg *checks.Config, only []string, region string) ([]*checks.Check, string, error) {
	label := checks.LocalRegion
	if region != "" {
		if !slices.Contains(cfg.Regions, region) {
			return nil, "", fmt.Errorf("region %q is not declared in the configuration (regions: %s)", region, strings.Join(cfg.Regions, ", "))
		}
		label = region
	}
	var out []*checks.Check
	for _, c := range cfg.Checks {
		if len(only) > 0 && !slices.Contains(only, c.ID) {
			continue
		}
		if region != "" && !slices.Contains(c.Regions, region) {
			continue
		}
		if c.Heartbeat != nil {
			// Pinged by the job it watches, at the evaluator: nothing to
			// probe from here.
			continue
		}
		out = append(out, c)
	}
	for _, id := range only {
		if !slices.ContainsFunc(cfg.Checks, func(c *checks.Check) bool { return c.ID == id }) {
			return nil, "", fmt.Errorf("--only %s: no check has that id", id)
		}
	}
	if len(out) == 0 {
		return nil, "", errors.New("no checks selected")
	}
	return out, label, nil
}

// runAll probes every prober once, at most parallel at a time, and returns
// results in the order of probers.
func runAll(ctx context.Context, probers []probes.Prober, parallel int) []wire.Result {
	results := make([]wire.Result, len(probers))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, p := range probers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = p.Probe(ctx)
		}()
	}
	wg.Wait()
	return results
}

func writeJSON(w io.Writer, results []wire.Result) error {
	enc := json.NewEncoder(w)
	for i := range results {
		if err := enc.Encode(&results[i]); err != nil {
			return err
		}
	}
	return nil
}

func writeTable(w io.Writer, results []wire.Result, failed int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tREGION\tRESULT\tLATENCY\tREASON")
	for _, r := range results {
		outcome := "ok"
		if !r.OK {
			outcome = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Check, r.Region, outcome, agent.FormatLatency(r.Duration), oneLine(r.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d check(s): %d ok, %d failed\n", len(results), len(results)-failed, failed)
	return err
}

// oneLine keeps a reason from breaking the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func writeMetrics(w io.Writer, results []wire.Result) error {
	reg := prometheus.NewRegistry()
	m, err := agent.NewMetrics(reg, agent.MetricsOptions{})
	if err != nil {
		return err
	}
	for i := range results {
		m.Observe(&results[i])
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
