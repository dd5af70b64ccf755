package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/agent"
	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// prober runs a region's checks on schedule and hands every result to
// deliver, recording metrics and logging transitions on the way. It is the
// probing half of "outpost agent" and "outpost run".
type prober struct {
	region  string
	sched   *agent.Scheduler
	metrics *agent.Metrics
	console *agent.TransitionLog
	deliver func(wire.Result)
	log     *slog.Logger
}

func newProber(reg prometheus.Registerer, region string, workers int, mopts agent.MetricsOptions, log *slog.Logger, deliver func(wire.Result)) (*prober, error) {
	metrics, err := agent.NewMetrics(reg, mopts)
	if err != nil {
		return nil, err
	}
	sched, err := agent.NewScheduler(clock.Real{}, workers, reg)
	if err != nil {
		return nil, err
	}
	return &prober{region: region, sched: sched, metrics: metrics, console: agent.NewTransitionLog(log, clock.Real{}), deliver: deliver, log: log}, nil
}

// apply schedules cfg's checks for the prober's region; checks that keep
// their id and interval keep their phase.
func (p *prober) apply(cfg *checks.Config) (int, error) {
	if !slices.Contains(cfg.Regions, p.region) {
		return 0, fmt.Errorf("region %q is not declared in the configuration (regions: %v)", p.region, cfg.Regions)
	}
	jobs, err := agent.Jobs(cfg, p.region, probes.Options{}, func(r wire.Result) {
		p.metrics.Observe(&r)
		p.console.Observe(r)
		p.deliver(r)
	})
	if err != nil {
		return 0, err
	}
	p.sched.Set(jobs)
	keep := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		keep[j.Key] = true
	}
	p.console.Forget(keep)
	p.metrics.Keep(keep)
	return len(jobs), nil
}

// runNow starts the requested checks of the prober's region at once, as
// many times back to back as asked, for an evaluator that wants a second
// opinion.
func (p *prober) runNow(req wire.ConfirmRequest) {
	for _, id := range req.Checks {
		p.sched.RunNow(agent.JobKey(id, p.region), req.RunsOf(id))
	}
}

// run schedules until ctx ends, then waits for probes in flight.
func (p *prober) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() { defer wg.Done(); p.sched.Run(ctx) }()
	go func() { defer wg.Done(); p.console.Run(ctx) }()
}

// health reports runs the scheduler skipped lately, or "".
func (p *prober) health() string {
	n, reason := p.sched.Health()
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d check runs skipped in the last minute or two (latest: %s); see outpost_scheduler_skipped_total", n, reason)
}
