package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/checks"
)

const evaluatorUsage = `Usage: outpost evaluator -c FILE [--listen ADDR] [--data-dir DIR]

Receives signed result batches from agents on POST /v1/results, keeps recent
results per check and region, and watches every region's agents: a region
silent for reporting.stale_after is STALE, leaves every quorum, and a meta
alert goes to the notifiers. Run one per cloud; each receives every batch and
decides on its own.

Serves the status page (/status, plain HTML that refreshes itself, and
/status.json), /metrics, /healthz, and /ping/TOKEN for heartbeat checks on
--listen. --data-dir keeps
what must survive a restart (the batch sequence numbers accepted from each
agent, so a replayed batch is refused after a restart too).

Flags:
`

func cmdEvaluator(ctx context.Context, args []string, e env) int {
	cmd := newCommand("evaluator", evaluatorUsage, e)
	fs := cmd.fs
	listen := fs.String("listen", "127.0.0.1:9797", "`address` to serve on")
	dataDir := fs.String("data-dir", "", "`directory` for state that must survive a restart (default: $STATE_DIRECTORY/evaluator or ~/.local/state/outpost/evaluator)")
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	if *dataDir == "" {
		*dataDir = defaultStateDir(e.lookup, "evaluator")
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	if err := runEvaluator(ctx, files, *listen, *dataDir, e, log); err != nil {
		log.Error("outpost evaluator stopped", "err", err)
		return exitUsage
	}
	return exitOK
}

func runEvaluator(ctx context.Context, files []string, listen, dataDir string, e env, log *slog.Logger) error {
	cfg, err := checks.Load(files, e.lookup)
	if err != nil {
		return fmt.Errorf("load configuration:\n%w", err)
	}
	warnUndeliveredNotifiers(cfg, log)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	reg := newRegistry()
	ev, err := alerting.New(cfg, alerting.Options{DataDir: dataDir, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	mux := evaluatorMux(reg, ev)
	srv, err := listenAndServe(listen, mux)
	if err != nil {
		return err
	}
	log.Info("outpost evaluator running", "listen", srv.URL(), "regions", cfg.Regions, "checks", len(cfg.Checks),
		"data_dir", dataDir, "config_digest", cfg.Digest)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(runCtx) }()
	result := untilStopped(ctx, srv, log, func() {
		log.Warn("SIGHUP: an evaluator does not reload its configuration yet; restart it to apply changes")
	})
	stop()
	<-done
	srv.shutdown()
	return result
}

// evaluatorMux serves an evaluator's endpoints.
func evaluatorMux(reg *prometheus.Registry, ev *alerting.Evaluator) *http.ServeMux {
	mux := baseMux(reg)
	// The evaluator's own routes: result ingest, confirmation polls and
	// heartbeat pings.
	h := ev.Handler()
	mux.Handle("/v1/", h)
	mux.Handle("/ping/", h)
	// The status page and its JSON leave out what private checks would
	// reveal: they are meant to be shown to people outside the team.
	mux.Handle("GET /status", ev.StatusPage())
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) { serveJSON(w, ev.PublicStatus()) })
	return mux
}

// warnUndeliveredNotifiers says loudly, at every start, which configured
// notifiers this version cannot deliver to: a page that silently goes
// nowhere is the worst failure a paging system can have.
func warnUndeliveredNotifiers(cfg *checks.Config, log *slog.Logger) {
	for _, n := range cfg.Notifiers {
		if n.Console != nil {
			continue
		}
		log.Error("this version of Outpost cannot deliver to this notifier yet: its pages go to the console (standard error) only",
			"notifier", n.Name)
	}
}
