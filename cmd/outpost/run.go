package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock"
)

const runUsage = `Usage: outpost run -c FILE [--listen ADDR] [--region NAME] [--data-dir DIR]

An evaluator and a local agent in one process: the embedded default, and the
quickest way to try Outpost. The local agent runs the checks of --region on
their intervals and hands its results straight to the evaluator (no keys
needed); agents in other regions may still report to it over HTTP. Regions
without a live agent become STALE after reporting.stale_after and are
reported on the console.

Serves the status page (/status and /status.json), /metrics, /healthz,
/ping/TOKEN for heartbeat checks and POST /v1/results on --listen.
SIGHUP, or POST /-/reload from loopback, reloads the configuration (the
evaluator's, then the local agent's checks; a file that does not load is
refused and the running configuration stays); SIGINT or SIGTERM stops
cleanly.

Flags:
`

func cmdRun(ctx context.Context, args []string, e env) int {
	cmd := newCommand("run", runUsage, e)
	fs := cmd.fs
	listen := fs.String("listen", "127.0.0.1:9797", "`address` to serve on")
	region := fs.String("region", "", "`region` the local agent probes from (default: the first declared region)")
	dataDir := fs.String("data-dir", "", "`directory` for state that must survive a restart (default: $STATE_DIRECTORY/run or ~/.local/state/outpost/run)")
	workers := fs.Int("workers", agent.AutoWorkers, "most probes in flight at once; runs due while all are busy are skipped and counted. 0 sizes it from the checks: twice the sum of timeout/interval, at least 16, so that hanging targets never hold up other checks")
	noPhases := fs.Bool("metrics.no-phases", false, "leave probe_http_duration_seconds{phase} out of /metrics: 5 of the 11 series of an HTTP check")
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	if *dataDir == "" {
		*dataDir = defaultStateDir(e.lookup, "run")
	}
	log := cmd.logger()
	if err := runEmbedded(ctx, files, *listen, *region, *dataDir, *workers, agent.MetricsOptions{NoPhases: *noPhases}, e, log); err != nil {
		log.Error("outpost run stopped", "err", err)
		return exitUsage
	}
	return exitOK
}

func runEmbedded(ctx context.Context, files []string, listen, region, dataDir string, workers int, mopts agent.MetricsOptions, e env, log *slog.Logger) error {
	cfg, err := checks.Load(files, e.lookup)
	if err != nil {
		return fmt.Errorf("load configuration:\n%w", err)
	}
	if cfg.Bus.Enabled() {
		// The one process is its own agent and evaluator: there is
		// nothing for a bus to carry, and a sharded evaluator would
		// decide only part of its checks.
		return fmt.Errorf("the configuration has a bus: block, which is for \"outpost agent\" and \"outpost evaluator\" processes (docs/scale.md); \"outpost run\" is one process without one")
	}
	if region == "" {
		region = cfg.Regions[0]
	} else if !slices.Contains(cfg.Regions, region) {
		return fmt.Errorf("region %q is not declared in the configuration (regions: %v)", region, cfg.Regions)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	reg := newRegistry()
	pipe, err := newPipelineFor(cfg, func(cfg *checks.Config) (*outbox.Outbox, error) {
		return newPipeline(cfg, dataDir, reg, log, "", nil)
	})
	if err != nil {
		return err
	}
	defer pipe.Close()
	ev, err := alerting.New(cfg, alerting.Options{DataDir: dataDir, Registerer: reg, Logger: log, Notifier: pipe})
	if err != nil {
		return err
	}
	if path, movedTo, lost := pipe.SetAside(); movedTo != "" {
		ev.NoteSetAside(path, movedTo, lost)
	}
	// The state still queued is written when everything that changes it
	// has stopped; Close is bounded.
	defer func() {
		if err := ev.Close(); err != nil {
			log.Error("evaluator state not fully saved", "err", err)
		}
	}()
	local := agent.NewLocal(ev, cfg, region, log, clock.Real{})
	p, err := newProber(reg, region, workers, mopts, log, local.Submit)
	if err != nil {
		return err
	}
	n, err := p.apply(cfg)
	if err != nil {
		return err
	}
	// The evaluator takes the new configuration first, so that it knows
	// a new check before the prober's first result for it.
	reloads, err := newReloads(reg, files, checks.AllSecrets(), e, log, reloadEvaluator(ev, pipe, p.apply))
	if err != nil {
		return err
	}
	srv, err := listenAndServe(listen, evaluatorMux(reg, ev, reloads))
	if err != nil {
		return err
	}
	log.Info("outpost running", "listen", srv.URL(), "status", srv.URL()+"/status", "region", region, "checks", n, "config", files)

	pipe.start()
	evalCtx, stopEval := context.WithCancel(context.Background())
	probeCtx, stopProbing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ev.Run(evalCtx) }()
	go func() { defer wg.Done(); local.Run(evalCtx) }()
	var probing sync.WaitGroup
	p.run(probeCtx, &probing)
	probing.Add(1)
	go func() {
		defer probing.Done()
		for probeCtx.Err() == nil {
			if req := ev.WaitConfirmations(probeCtx, region, 20*time.Second); len(req.Checks) > 0 {
				p.runNow(req)
			}
		}
	}()

	result := untilStopped(ctx, srv, log, reloads.signal)
	stopProbing()
	probing.Wait()
	stopEval()
	wg.Wait()
	srv.shutdown()
	return result
}
