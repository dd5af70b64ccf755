package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
)

const runUsage = `Usage: outpost run -c FILE [--listen ADDR] [--region NAME]

Runs every check of the configuration on its interval from this machine,
serves /metrics (Prometheus) and /healthz on --listen, and reports on the
console when a check starts failing or recovers, with the reason.

SIGHUP reloads the configuration: unchanged checks keep their schedule,
removed ones stop, new ones start; an invalid configuration is reported and
the running one kept. SIGINT or SIGTERM stops cleanly, cancelling probes in
flight.

Flags:
`

// runOptions are the parsed flags of "outpost run".
type runOptions struct {
	files   []string
	listen  string
	region  string
	workers int
}

func cmdRun(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var o runOptions
	var files configFlag
	fs.Var(&files, "c", "configuration `file` or directory; repeatable, or comma-separated")
	fs.Var(&files, "config", "same as -c")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9797", "`address` to serve /metrics and /healthz on")
	fs.StringVar(&o.region, "region", "", "`region` this process probes from (default: the first declared region)")
	fs.IntVar(&o.workers, "workers", 256, "most probes in flight at once; runs due while all are busy are skipped and counted")
	fs.Usage = func() { fmt.Fprint(fs.Output(), runUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	o.files = append(files, fs.Args()...)
	if len(o.files) == 0 {
		fmt.Fprintln(e.stderr, "outpost run: no configuration given; use -c FILE")
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	if err := runAgent(ctx, o, e, log); err != nil {
		log.Error("outpost run stopped", "err", err)
		return exitUsage
	}
	return exitOK
}

func runAgent(ctx context.Context, o runOptions, e env, log *slog.Logger) error {
	cfg, err := checks.Load(o.files, e.lookup)
	if err != nil {
		return fmt.Errorf("load configuration:\n%w", err)
	}
	region := o.region
	if region == "" {
		region = cfg.Regions[0]
	} else if !slices.Contains(cfg.Regions, region) {
		return fmt.Errorf("region %q is not declared in the configuration", region)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := probes.NewMetrics(reg)
	if err != nil {
		return err
	}
	sched, err := probes.NewScheduler(probes.RealClock{}, o.workers, reg)
	if err != nil {
		return err
	}
	console := newTransitionLog(log)
	var seq atomic.Uint64
	deliver := func(r probes.Result) {
		r.Seq = seq.Add(1)
		metrics.Observe(&r)
		console.observe(r)
	}
	jobs, err := probes.Jobs(cfg, region, probes.Options{}, deliver)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, Timeout: 10 * time.Second}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("outpost running", "listen", "http://"+ln.Addr().String(), "region", region, "checks", len(jobs), "config", o.files)

	sched.Set(jobs)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sched.Run(runCtx) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var result error
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case err := <-serveErr:
			result = fmt.Errorf("http server: %w", err)
			break loop
		case <-hup:
			reload(o, e, region, sched, deliver, log)
		}
	}
	stop()
	wg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	return result
}

// reload applies a new configuration, keeping the old one if it is invalid.
func reload(o runOptions, e env, region string, sched *probes.Scheduler, deliver func(probes.Result), log *slog.Logger) {
	cfg, err := checks.Load(o.files, e.lookup)
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	jobs, err := probes.Jobs(cfg, region, probes.Options{}, deliver)
	if err != nil {
		log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	sched.Set(jobs)
	log.Info("configuration reloaded", "checks", len(jobs))
}

// transitionLog reports the first result of each check and every change
// between passing and failing. It logs state changes, not every result, so
// a failure storm writes one line per check, not one per probe.
type transitionLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]bool
}

func newTransitionLog(log *slog.Logger) *transitionLog {
	return &transitionLog{log: log, last: map[string]bool{}}
}

func (t *transitionLog) observe(r probes.Result) {
	key := probes.JobKey(r.Check, r.Region)
	t.mu.Lock()
	prev, seen := t.last[key]
	t.last[key] = r.OK
	t.mu.Unlock()
	if seen && prev == r.OK {
		return
	}
	attrs := []any{"check", r.Check, "region", r.Region, "latency", formatLatency(r.Duration), "reason", r.Reason}
	switch {
	case r.OK && !seen:
		t.log.Info("check passing", attrs...)
	case r.OK:
		t.log.Info("check recovered", attrs...)
	default:
		t.log.Warn("check failing", attrs...)
	}
}
