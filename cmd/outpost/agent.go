package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/clock"
)

const agentUsage = `Usage: outpost agent -c FILE --region NAME --evaluator URL[,URL...] [--listen ADDR] [--spool-dir DIR]
       outpost agent -c FILE --region NAME [--listen ADDR] [--spool-dir DIR]    (with a bus: block)

Runs the checks assigned to --region on their intervals and ships every
result, in signed batches, to every evaluator. While an evaluator is
unreachable its batches wait in a bounded on-disk spool and are delivered in
order when it is back; a restarted agent picks its spool up again. A spool
that cannot be written (disk full, read-only) does not stop delivery: batches
are then sent from memory, and /healthz says so. When there
is nothing to send, an empty batch goes out every reporting.heartbeat: that is
how evaluators know the region is alive. When no evaluator has answered for
reporting.lost_after, the agent pages through its own notifiers (one
incident for every agent cut off), and resolves when one answers again.

The signing key is the agents: entry for the region (and --name, when a region
has several agents), read from the environment through its ${VAR}. The agent
needs no other secret than that and its checks' credentials: other regions'
keys and the notifiers' secrets may be unset (notifiers without theirs are
not used for its own page).

With a bus: block in the configuration, results go to NATS JetStream instead
(and --evaluator must not be given: one configuration decides where results
go, so a command line left from before cannot send them elsewhere). Each
sealed batch is split by shard and published, in order, to
outpost.results.<shard>.<region>; liveness goes to outpost.live.<region>
every reporting.heartbeat; confirmation requests come from
outpost.confirm.<region>. The spool stays in front of the publish, and a
batch leaves it once JetStream acknowledged it; reporting.lost_after then
counts from the last acknowledgement. The NATS credentials come from the bus
block's ${VAR}s. See "Agents on a bus" in docs/deploy.md.

Serves /metrics and /healthz on --listen. SIGHUP, or POST /-/reload from
loopback, reloads the checks (a changed reporting: block or key takes a
restart; a file that does not load is refused and the running checks
stay); SIGINT
or SIGTERM stops, cancelling probes in flight (a cancelled probe is not a
result: it is not shipped) and keeping unsent batches in the spool.

Flags:
`

func cmdAgent(ctx context.Context, args []string, e env) int {
	cmd := newCommand("agent", agentUsage, e)
	fs := cmd.fs
	var evaluators configFlag
	fs.Var(&evaluators, "evaluator", "evaluator base `URL` such as https://eval.example.com; repeatable, or comma-separated. Required, except with a bus: block, which excludes it")
	region := fs.String("region", "", "the `region` this agent probes from (required)")
	host, _ := os.Hostname()
	name := fs.String("name", host, "this agent's `name` in batches and on the status page")
	listen := fs.String("listen", "127.0.0.1:9798", "`address` to serve /metrics and /healthz on")
	spoolDir := fs.String("spool-dir", "", "`directory` for batches not yet delivered, one per agent (default: $STATE_DIRECTORY/agent-REGION-NAME or ~/.local/state/outpost/agent-REGION-NAME)")
	workers := fs.Int("workers", agent.AutoWorkers, "most probes in flight at once; runs due while all are busy are skipped and counted. 0 sizes it from the checks: twice the sum of timeout/interval, at least 16, so that hanging targets never hold up other checks")
	noPhases := fs.Bool("metrics.no-phases", false, "leave probe_http_duration_seconds{phase} out of /metrics: 5 of the 11 series of an HTTP check")
	tlsf := addClientTLSFlags(fs)
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	if err := tlsf.check(); err != nil {
		fmt.Fprintf(e.stderr, "outpost agent: %v\n", err)
		return exitUsage
	}
	if *region == "" {
		fmt.Fprintln(e.stderr, "outpost agent: --region is required")
		return exitUsage
	}
	for _, u := range evaluators {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			fmt.Fprintf(e.stderr, "outpost agent: --evaluator %q: want an http:// or https:// URL\n", u)
			return exitUsage
		}
	}
	if *spoolDir == "" {
		// Per agent name too: two agents of one region on one host must
		// not deliver and delete each other's batches.
		*spoolDir = defaultStateDir(e.lookup, "agent-"+*region+"-"+*name)
	}
	log := cmd.logger()
	err := runAgent(ctx, agentOptions{files: files, region: *region, name: *name, evaluators: evaluators, listen: *listen, spoolDir: *spoolDir, workers: *workers, metrics: agent.MetricsOptions{NoPhases: *noPhases}, tls: tlsf}, e, log)
	if err != nil {
		log.Error("outpost agent stopped", "err", err)
		return exitUsage
	}
	return exitOK
}

// withoutMissingNotifiers returns cfg for the agent's own pipeline: without
// the notifiers that have a secret the agent was not given (and without
// escalations to them), and the names of those. The agent pages only
// about itself, so the checks' notify: lists do not apply there.
func withoutMissingNotifiers(cfg *checks.Config) (*checks.Config, []string) {
	missing := cfg.MissingNotifiers()
	if len(missing) == 0 {
		return cfg, nil
	}
	c := *cfg
	c.Checks = nil
	c.Notifiers = nil
	for _, n := range cfg.Notifiers {
		if slices.Contains(missing, n.Name) {
			continue
		}
		if n.Escalate != nil && slices.Contains(missing, n.Escalate.To) {
			n.Escalate = nil
		}
		c.Notifiers = append(c.Notifiers, n)
	}
	return &c, missing
}

// checkDestination checks that results have one place to go: the
// evaluators of --evaluator, or the bus of cfg, never both (a command line
// left from before a bus was configured must not split them) and never
// neither.
func checkDestination(cfg *checks.Config, evaluators []string) error {
	switch {
	case cfg.Bus.Enabled() && len(evaluators) > 0:
		return errors.New("--evaluator and the configuration's bus: block exclude each other: with a bus, results go to NATS JetStream and evaluators read them there; drop --evaluator (or the bus: block)")
	case !cfg.Bus.Enabled() && len(evaluators) == 0:
		return errors.New("--evaluator is required (or a bus: block in the configuration)")
	}
	return nil
}

// busShape is what of cfg's bus an agent fixes at start: where and how it
// publishes ("" without a bus).
func busShape(cfg *checks.Config) string {
	n := cfg.Bus.NATS
	if n == nil {
		return ""
	}
	return fmt.Sprintf("%s %s %d", n.URL, n.Stream, n.Shards)
}

type agentOptions struct {
	files      []string
	region     string
	name       string
	evaluators []string
	listen     string
	spoolDir   string
	workers    int
	metrics    agent.MetricsOptions
	tls        *tlsFlags
}

func runAgent(ctx context.Context, o agentOptions, e env, log *slog.Logger) error {
	// Its own key and its checks' credentials: nothing of the other
	// regions' or of the notifiers'.
	needs := checks.AgentNeeds(o.region, o.name)
	var certs *tlsFiles
	if o.tls != nil {
		var err error
		if certs, err = loadTLS(o.tls); err != nil {
			return err
		}
	}
	cfg, err := checks.LoadFor(o.files, e.lookup, needs)
	if err != nil {
		return fmt.Errorf("load configuration:\n%w", err)
	}
	key, ok := cfg.AgentKey(o.region, o.name)
	if !ok {
		return fmt.Errorf("no key for region %q under agents: in the configuration", o.region)
	}
	if err := checkDestination(cfg, o.evaluators); err != nil {
		return err
	}
	var nc *nats.Conn
	var busOpts *agent.BusOptions
	if n := cfg.Bus.NATS; n != nil {
		if nc, err = bus.Connect(n, "outpost-agent-"+o.region+"-"+o.name, log); err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		busOpts = &agent.BusOptions{JetStream: js, Stream: n.Stream, Shards: n.Shards}
	}
	reg := newRegistry()
	reporter, err := agent.NewReporter(agent.ReporterOptions{
		Bus:          busOpts,
		Evaluators:   o.evaluators,
		Key:          []byte(key.Value()),
		Region:       o.region,
		Agent:        o.name,
		ConfigDigest: cfg.Digest,
		Reporting:    cfg.Reporting,
		SpoolDir:     o.spoolDir,
		TLS:          certs.clientConfig(),
		Registerer:   reg,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	// The agent's own notifiers, for the one page it sends itself: that no
	// evaluator has answered it for reporting.lost_after. Those whose
	// secrets it was not given are not its to use.
	pageCfg, unusable := withoutMissingNotifiers(cfg)
	if len(unusable) > 0 {
		log.Warn("notifiers without their secrets here are not used for this agent's own page (when no evaluator answers); set their variables to use them",
			"notifiers", strings.Join(unusable, ","))
	}
	pipe, err := newPipeline(pageCfg, o.spoolDir, reg, log, "", nil)
	var pageProblem string
	var errno syscall.Errno
	switch {
	case err != nil && errors.As(err, &errno):
		// A disk that refuses the outbox must not stop the probing and
		// the reporting, the agent's first duty: it goes on without its
		// own page, and says so.
		log.Error("cannot open the outbox of the agent's own page: it will not page when no evaluator answers", "err", err)
		pageProblem = fmt.Sprintf("outbox under %s cannot be opened (%v): no page of its own when no evaluator answers", o.spoolDir, errno)
		pipe = nil
	case err != nil:
		return err
	default:
		defer pipe.Close()
	}
	p, err := newProber(reg, o.region, o.workers, o.metrics, log, reporter.Submit)
	if err != nil {
		return err
	}
	n, err := p.apply(cfg)
	if err != nil {
		return err
	}
	degraded := func() string {
		var problems []string
		busProblem := ""
		if nc != nil && !nc.IsConnected() {
			busProblem = "not connected to NATS (reconnecting): batches wait in the spool"
		}
		for _, problem := range []string{reporter.SpoolHealth(), pageProblem, p.health(), busProblem} {
			if problem != "" {
				problems = append(problems, problem)
			}
		}
		return strings.Join(problems, "; ")
	}
	running := busShape(cfg)
	reloads, err := newReloads(reg, o.files, needs, e, log, func(cfg *checks.Config) (int, error) {
		n, err := p.apply(cfg)
		if err == nil {
			reporter.SetConfigDigest(cfg.Digest)
			if busShape(cfg) != running {
				log.Warn("reload: the bus: block changed; the agent keeps publishing where it started until it is restarted")
			}
		}
		return n, err
	})
	if err != nil {
		return err
	}
	mux := baseMux(reg, degraded, nil)
	mux.Handle("POST /-/reload", reloads.handler())
	srv, err := listenAndServe(o.listen, mux)
	if err != nil {
		return err
	}
	to := []any{"evaluators", strings.Join(o.evaluators, ",")}
	if nc != nil {
		to = []any{"bus", nc.ConnectedUrlRedacted(), "stream", cfg.Bus.NATS.Stream, "shards", cfg.Bus.NATS.Shards}
	}
	log.Info("outpost agent running", append([]any{"listen", srv.URL(), "region", o.region, "agent", o.name,
		"checks", n}, append(to, "spool", o.spoolDir, "config_digest", cfg.Digest)...)...)

	probeCtx, stopProbing := context.WithCancel(context.Background())
	reportCtx, stopReporting := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	p.run(probeCtx, &wg)
	reportDone := make(chan error, 1)
	go func() { reportDone <- reporter.Run(reportCtx) }()
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	pipeDone := make(chan struct{})
	if pipe != nil {
		go func() { defer close(pipeDone); pipe.Run(pipeCtx) }()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pager := notify.AgentPager{Notifier: pipe, Region: o.region, Agent: o.name, Log: log}
			if nc != nil {
				pager.Bus = "the bus (NATS)"
			}
			agent.WatchEvaluators(probeCtx, reporter, pager, clock.Real{}, cfg.Reporting.LostAfter, min(10*time.Second, max(time.Second, cfg.Reporting.LostAfter/5)))
		}()
	} else {
		close(pipeDone)
	}
	if nc != nil {
		confirmer := &agent.BusConfirmer{Conn: nc, Region: o.region, RunNow: p.runNow, Registerer: reg, Logger: log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := confirmer.Run(probeCtx); err != nil {
				log.Error("no confirmation requests from the bus: checks are confirmed at their next interval only", "err", err)
			}
		}()
	} else {
		poller := &agent.ConfirmPoller{Evaluators: o.evaluators, Key: []byte(key.Value()), Region: o.region, Agent: o.name, RunNow: p.runNow, Logger: log,
			TLS: certs.clientConfig()}
		wg.Add(1)
		go func() { defer wg.Done(); poller.Run(probeCtx) }()
	}

	result := untilStopped(ctx, srv, log, func() {
		reloads.signal()
		if certs != nil {
			if err := certs.reload(); err != nil {
				log.Error("SIGHUP: TLS files not reloaded; the ones in use stay", "err", err)
			} else {
				log.Info("SIGHUP: TLS client certificate reloaded")
			}
		}
	})
	// Stop probing first and wait for the probes in flight, so that the
	// reporter seals every result into the spool before it stops.
	stopProbing()
	wg.Wait()
	stopReporting()
	if err := <-reportDone; err != nil && !errors.Is(err, context.Canceled) {
		log.Error("reporter", "err", err)
	}
	srv.shutdown()
	stopPipe()
	<-pipeDone
	return result
}
