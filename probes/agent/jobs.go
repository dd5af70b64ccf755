package agent

import (
	"context"
	"slices"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes"
	"github.com/outposthq/outpost/probes/wire"
)

// Jobs builds one scheduler job per check of cfg that runs in region
// (heartbeat checks are the evaluator's, and have none). Each
// run probes the check and hands the result to deliver, which must not block
// for long: it runs on the scheduler's worker. A failing result of a run the
// agent cut short (it stopped, or a reload removed the check; see cutShort)
// is dropped: it would blame the target for the agent's own doing, such as
// "timed out" for a probe cancelled at shutdown. A passing one is kept:
// the target did answer. The scheduler counts such runs.
func Jobs(cfg *checks.Config, region string, opts probes.Options, deliver func(wire.Result)) ([]Job, error) {
	opts.Region = region
	opts = opts.SharingHTTP()
	if opts.Redact == nil {
		opts.Redact = cfg.Redactor()
	}
	var jobs []Job
	for _, c := range cfg.Checks {
		// Heartbeats are pinged by the jobs they watch, at the evaluator;
		// agents do not probe them.
		if c.Heartbeat != nil || !slices.Contains(c.Regions, region) {
			continue
		}
		p, err := probes.New(c, opts)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, Job{
			Key:      JobKey(c.ID, region),
			Interval: c.Interval,
			Timeout:  c.Timeout,
			Run: func(ctx context.Context, _ time.Time) bool {
				r := p.Probe(ctx)
				if cut, _ := cutShort(ctx); cut && !r.OK {
					return true
				}
				r.Confirm = isConfirmation(ctx)
				deliver(r)
				return false
			},
		})
	}
	return jobs, nil
}

// JobKey names the job of a check in a region.
func JobKey(check, region string) string { return check + "/" + region }
