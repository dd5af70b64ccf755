package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/receivers"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
	"github.com/outposthq/outpost/probes/exposition"
)

const evaluatorUsage = `Usage: outpost evaluator -c FILE [--listen ADDR] [--data-dir DIR] [--name NAME] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]

Receives signed result batches from agents on POST /v1/results, keeps recent
results per check and region, and watches every region's agents: a region
silent for reporting.stale_after is STALE, leaves every quorum, and a meta
alert goes to the notifiers. Run one per cloud; each receives every batch and
decides on its own. Evaluators listed under peers: watch each other's
/healthz and page when one has been unreachable for reporting.stale_after.

Serves the status page (/status, plain HTML that refreshes itself, and
/status.json), /metrics, /healthz, and /ping/TOKEN for heartbeat checks on
--listen. --data-dir keeps
what must survive a restart (the batch sequence numbers accepted from each
agent, so a replayed batch is refused after a restart too).

With a bus: block, the evaluator also consumes results from NATS JetStream:
those of the shards bus.evaluators gives --name (every shard without that
list), through its own durable consumer (outpost-NAME), and every region's
liveness. It decides only those shards' checks and asks agents for
confirmations on outpost.confirm.REGION. --name is then required unless the
host name is one of bus.evaluators. Batches POSTed over HTTP are still
accepted. The bus credentials come from the configuration's ${ENV}
references, never from flags.

SIGHUP, or POST /-/reload (from loopback, or with a client certificate
under --tls-client-ca), reloads the configuration: it is loaded and
validated first, and refused whole, the running one staying, when it does
not load or changes regions, peers or reporting (those take a restart).
Checks it keeps keep their results, incidents and shapes; the open
incidents of checks it removes are resolved. A change of bus.evaluators
moves this evaluator's consumer to its new shards (checks moved to other
evaluators are handed over, not resolved); bus.nats takes a restart.
SIGHUP also re-reads the TLS files.

Flags:
`

func cmdEvaluator(ctx context.Context, args []string, e env) int {
	cmd := newCommand("evaluator", evaluatorUsage, e)
	fs := cmd.fs
	listen := fs.String("listen", "127.0.0.1:9797", "`address` to serve on")
	host, _ := os.Hostname()
	name := fs.String("name", host, "this evaluator's `name` among peers: in the configuration (it watches the others) and among bus.evaluators (it decides their shards)")
	dataDir := fs.String("data-dir", "", "`directory` for state that must survive a restart (default: $STATE_DIRECTORY/evaluator or ~/.local/state/outpost/evaluator)")
	tlsf := addServerTLSFlags(fs)
	if code, done := cmd.parse(args); done {
		return code
	}
	if err := tlsf.check(); err != nil {
		fmt.Fprintf(e.stderr, "outpost evaluator: %v\n", err)
		return exitUsage
	}
	files := cmd.files
	if *dataDir == "" {
		*dataDir = defaultStateDir(e.lookup, "evaluator")
	}
	log := cmd.logger()
	nameSet := false
	fs.Visit(func(f *flag.Flag) { nameSet = nameSet || f.Name == "name" })
	if err := runEvaluator(ctx, files, *listen, *dataDir, *name, nameSet, tlsf, e, log); err != nil {
		log.Error("outpost evaluator stopped", "err", err)
		return exitUsage
	}
	return exitOK
}

func runEvaluator(ctx context.Context, files []string, listen, dataDir, name string, nameSet bool, tlsf *tlsFlags, e env, log *slog.Logger) error {
	certs, err := loadTLS(tlsf)
	if err != nil {
		return err
	}
	// Every agent key, the notifiers' secrets and the heartbeat tokens; not
	// the credentials the agents probe with.
	cfg, err := checks.LoadFor(files, e.lookup, checks.EvaluatorNeeds())
	if err != nil {
		return fmt.Errorf("load configuration:\n%w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	js, closeBus, err := connectEvaluatorBus(cfg, name, nameSet, log)
	if err != nil {
		return err
	}
	// Registered before the evaluator's Close, so it runs after it.
	defer closeBus()
	reg := newRegistry()
	// The outbox's workers start after the evaluator exists (pipe.Run
	// below), so ev is set before sentByPeer is first called.
	var ev *alerting.Evaluator
	sentByPeer := func(t time.Time) (notify.PeerVerdict, string) { return ev.SentByPeer(t) }
	pipe, err := newPipelineFor(cfg, func(cfg *checks.Config) (*outbox.Outbox, error) {
		return newPipeline(cfg, dataDir, reg, log, name, sentByPeer)
	})
	if err != nil {
		return err
	}
	defer pipe.Close()
	// Peers are checked as an agent reaches an evaluator: trusting the
	// client CA (one internal CA commonly signs every evaluator and
	// agent), presenting this evaluator's certificate.
	ev, err = alerting.New(cfg, alerting.Options{DataDir: dataDir, Registerer: reg, Logger: log, Notifier: pipe, Name: name, Bus: js, PeerTLS: certs.clientConfig()})
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
	reloads, err := newReloads(reg, files, checks.EvaluatorNeeds(), e, log, reloadEvaluator(ev, pipe, nil))
	if err != nil {
		return err
	}
	mux := evaluatorMux(reg, ev, reloads)
	srv, err := listenAndServeTLS(listen, mux, certs)
	if err != nil {
		return err
	}
	log.Info("outpost evaluator running", "listen", srv.URL(), "regions", cfg.Regions, "checks", len(cfg.Checks),
		"data_dir", dataDir, "config_digest", cfg.Digest)
	runCtx, stop := context.WithCancel(context.Background())
	pipe.start()
	done := make(chan struct{})
	go func() { defer close(done); ev.Run(runCtx) }()
	result := untilStopped(ctx, srv, log, func() {
		if certs != nil {
			if err := certs.reload(); err != nil {
				log.Error("SIGHUP: TLS files not reloaded; the ones in use stay", "err", err)
			} else {
				log.Info("SIGHUP: TLS certificate and CA reloaded")
			}
		}
		reloads.signal()
	})
	stop()
	<-done
	srv.shutdown()
	// Notifications still in flight finish their attempt (pipe.Close,
	// deferred); the rest stay in the outbox for the next start.
	return result
}

// connectEvaluatorBus connects to cfg's bus, if it has one, as evaluator
// name (nameSet: given by --name rather than the host name's default), and
// returns its JetStream and what closes the connection. Without a bus it
// returns nil and a no-op.
func connectEvaluatorBus(cfg *checks.Config, name string, nameSet bool, log *slog.Logger) (jetstream.JetStream, func(), error) {
	if !cfg.Bus.Enabled() {
		return nil, func() {}, nil
	}
	if len(cfg.Bus.Evaluators) > 0 {
		if _, listed := cfg.Bus.Owned(name); !listed {
			names := make([]string, len(cfg.Bus.Evaluators))
			for i, o := range cfg.Bus.Evaluators {
				names[i] = o.Name
			}
			if !nameSet {
				return nil, nil, fmt.Errorf("bus.evaluators gives shards to evaluators by name: start this one with --name (one of %s)", strings.Join(names, ", "))
			}
			return nil, nil, fmt.Errorf("--name %q is not one of bus.evaluators (%s): it would own no shards", name, strings.Join(names, ", "))
		}
	}
	if strings.ContainsAny(name, ".*> \t\n/\\") || name == "" {
		// The host name's default may be a dotted FQDN.
		return nil, nil, fmt.Errorf("--name %q cannot name a JetStream consumer (no '.', '*', '>', '/', '\\' or spaces); give this evaluator a --name", name)
	}
	nc, err := bus.Connect(cfg.Bus.NATS, "outpost-evaluator-"+name, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus: %w", err)
	}
	log.Info("bus: connected", "server", nc.ConnectedUrlRedacted(), "consumer", bus.ConsumerName(name))
	return js, nc.Close, nil
}

// reloadEvaluator returns the reload of an evaluator and its notification
// pipeline (and, for outpost run, of the local prober after them, so that
// the evaluator knows a new check before its first result). What only a
// restart can change is refused before anything changes.
func reloadEvaluator(ev *alerting.Evaluator, pipe *pipeline, then func(*checks.Config) (int, error)) func(*checks.Config) (int, error) {
	return func(cfg *checks.Config) (int, error) {
		if err := ev.CanReload(cfg); err != nil {
			return 0, err
		}
		old := ev.Config()
		if err := pipe.reload(cfg, old); err != nil {
			return 0, fmt.Errorf("notification outbox: %w", err)
		}
		if _, err := ev.Reload(context.Background(), cfg); err != nil {
			if err2 := pipe.reload(old, cfg); err2 != nil {
				err = fmt.Errorf("%w; the notification outbox runs the new configuration's notifiers: %v", err, err2)
			}
			return 0, err
		}
		if then != nil {
			return then(cfg)
		}
		return len(cfg.Checks), nil
	}
}

// evaluatorMux serves an evaluator's endpoints; with reloads, POST
// /-/reload too.
func evaluatorMux(reg *exposition.Registry, ev *alerting.Evaluator, reloads *reloads) *http.ServeMux {
	mux := baseMux(reg, nil, ev.Health)
	if reloads != nil {
		mux.Handle("POST /-/reload", reloads.handler())
	}
	// The evaluator's own routes: result ingest, confirmation polls and
	// heartbeat pings.
	h := ev.Handler()
	mux.Handle("/v1/", h)
	mux.Handle("/ping/", h)
	mux.Handle("/api/", h)
	// The status page and its JSON leave out what private checks would
	// reveal: they are meant to be shown to people outside the team.
	mux.Handle("GET /status", ev.StatusPage())
	mux.Handle("GET /status.json", ev.StatusJSON())
	return mux
}

// newPipeline builds the configured notifiers and the durable delivery
// pipeline in front of them, with its outbox under dataDir. The caller
// runs it and closes it after the evaluator has stopped.
//
// With several evaluators (name among cfg.Peers), the notifiers without
// dedup of their own (all but PagerDuty) send one copy: see notify.OneCopy.
func newPipeline(cfg *checks.Config, dataDir string, reg *exposition.Registry, log *slog.Logger,
	name string, sentByPeer func(time.Time) (notify.PeerVerdict, string)) (*outbox.Outbox, error) {
	ns, err := receivers.Build(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("notifiers: %w", err)
	}
	if name != "" && len(cfg.Peers) > 1 && sentByPeer != nil {
		left := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_notifications_left_to_peer_total",
			Help: "Notifications not sent by this evaluator because an evaluator ahead of it in peer order was up and sends them (Slack, webhooks, console; PagerDuty gets every evaluator's).",
		}, []string{"notifier"})
		if err := reg.Register(left); err != nil {
			// Reopened for a reload: the series go on.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			left = are.ExistingCollector.(*prometheus.CounterVec)
		}
		for _, c := range cfg.Notifiers {
			if c.PagerDuty != nil {
				continue
			}
			ns[c.Name] = &notify.OneCopy{Notifier: ns[c.Name], Name: c.Name, SentByPeer: sentByPeer, LeftToPeer: left.WithLabelValues(c.Name), Log: log}
		}
	}
	groups, defaultGroup := outbox.Policies(cfg)
	pipe, err := outbox.Open(outbox.Options{
		Notifiers:      ns,
		Groups:         groups,
		DefaultGroup:   defaultGroup,
		Facts:          outbox.CheckFacts(cfg),
		Budgets:        outbox.Budgets(cfg),
		Routes:         receivers.Routes(cfg),
		CheckNotifiers: receivers.CheckNotifiers(cfg),
		Escalations:    receivers.Escalations(cfg),
		Repeat:         receivers.Repeats(cfg),
		Dir:            filepath.Join(dataDir, "outbox"),
		Registerer:     reg,
		Logger:         log,
		Redact:         cfg.Redactor(),
	})
	if err != nil {
		return nil, fmt.Errorf("notification outbox: %w", err)
	}
	return pipe, nil
}
