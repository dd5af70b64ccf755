package alerting

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/exposition"
	"github.com/outposthq/outpost/probes/wire"
)

// The evaluator decides about a check whenever its inputs may have changed:
// right after a batch that could change a region's health (so a page goes
// out within milliseconds of the quorum-completing result), on every tick
// for checks with something pending (a for: delay, an open incident, the end
// of a maintenance window), for every check of a region whose liveness
// changed, and in a slow full sweep as a safety net.

const (
	// sweepEvery is the full re-evaluation period.
	sweepEvery = 30 * time.Second
)

// checkDecider is the decision state of one check. Its mutex serialises
// decisions about the check, which ingests of several regions may trigger
// at once.
//
// No I/O happens under mu. A decision queues its notifications and the
// state to save in outgoing and save; whichever goroutine finds nobody
// delivering becomes the deliverer and hands them over outside the lock
// (deliver). So a notifier that hangs holds up only the deliverer, never
// a decision, an ingest or a status page, and a check's notifications
// still leave in the order they were decided. Saving only queues the
// check's record for the state store's writer: a disk that hangs holds up
// nobody here.
type checkDecider struct {
	id      string // the check's, for good
	mu      sync.Mutex
	c       *checks.Check   // a reload may replace it
	retired bool            // its check was removed by a reload
	failing map[string]bool // per region, for RegionHealth's hysteresis
	state   decide.IncidentState
	certs   decide.CertState // the certificates warned about
	last    decide.Decision
	warmUp  time.Time         // no UNKNOWN verdict acts before this
	page    pageFacts         // what every page of the check carries
	label   exposition.Labels // check="ID", for the metrics of the check

	outgoing []notify.Notification // decided, not yet handed over, in order
	save     *savedDecider         // the state to save after outgoing, if any
	sending  bool                  // a goroutine is in deliver
}

// queue adds n to the notifications to hand over. A notification
// supersedes a queued one with the same key and action, so that a stuck
// notifier holds at most a trigger and a resolve per incident, whatever
// the flapping meanwhile, and the last one queued is the state the
// destination ends in. Its mutex is held.
func (cd *checkDecider) queue(n notify.Notification) {
	cd.outgoing = slices.DeleteFunc(cd.outgoing, func(o notify.Notification) bool { return o.Key == n.Key && o.Action == n.Action })
	cd.outgoing = append(cd.outgoing, n)
}

// claim reports whether the caller must deliver: something is queued and
// nobody is delivering. Its mutex is held.
func (cd *checkDecider) claim() bool {
	if cd.sending || (len(cd.outgoing) == 0 && cd.save == nil) {
		return false
	}
	cd.sending = true
	return true
}

// deliver hands the queued notifications of the claimed deciders cds to
// the notifier, then saves the state they came with, until nothing is
// queued. Called after claim, with no lock held. The notifications of all
// of them go in one hand-over (sendAll), so that a batch of results that
// changes hundreds of checks costs one write of the outbox, not hundreds;
// each check's own notifications keep their order. The state is saved
// (its record queued in the state store) after the events are handed
// over: if the process dies before the record is on disk, the restarted
// evaluator decides the same events again and the delivery pipeline's
// dedup drops the repeats; the other order could lose a page.
func (e *Evaluator) deliver(ctx context.Context, cds ...*checkDecider) {
	type saving struct {
		id    string
		state savedDecider
	}
	for len(cds) > 0 {
		var out []notify.Notification
		var saves []saving
		busy := cds[:0]
		for _, cd := range cds {
			cd.mu.Lock()
			o, save := cd.outgoing, cd.save
			cd.outgoing, cd.save = nil, nil
			if len(o) == 0 && save == nil {
				cd.sending = false
				cd.mu.Unlock()
				continue
			}
			cd.mu.Unlock()
			out = append(out, o...)
			if save != nil {
				saves = append(saves, saving{cd.id, *save})
			}
			busy = append(busy, cd)
		}
		e.sendAll(ctx, out)
		for _, s := range saves {
			e.saveIncident(s.id, s.state)
		}
		cds = busy
	}
}

// evaluate decides about the checks ids at now and sends what the
// decisions change, all together.
func (e *Evaluator) evaluate(ctx context.Context, now time.Time, ids ...string) {
	var claimed []*checkDecider
	deciders := e.plan.Load().deciders
	for _, id := range ids {
		cd := deciders[id]
		if cd == nil {
			continue
		}
		cd.mu.Lock()
		switch {
		case cd.retired:
			// Its check was removed by a reload after this decision began.
		case cd.c.Heartbeat != nil:
			e.evaluateHeartbeat(cd, now)
		default:
			e.evaluateProbes(cd, now)
		}
		if cd.claim() {
			claimed = append(claimed, cd)
		}
		cd.mu.Unlock()
	}
	if len(claimed) > 0 {
		e.deliver(ctx, claimed...)
	}
}

// evaluateProbes decides about probe check cd at now from its regions'
// windows and shapes, and queues what the decision changes. Its mutex is
// held.
func (e *Evaluator) evaluateProbes(cd *checkDecider, now time.Time) {
	id := cd.c.ID
	in := make(map[string]decide.RegionInput, len(cd.c.Regions))
	failingBefore := maps.Clone(cd.failing)
	for _, region := range cd.c.Regions {
		r := e.regions[region]
		w, ok := e.Window(id, region)
		input := decide.RegionInput{Live: r != nil && r.liveAt(now, e.staleAfter)}
		// The failure hysteresis moves only on fresh results: a region
		// with none since a restart, or whose latest has aged past the
		// check's horizon (cut off, or replaying a spool), keeps the
		// failing state it had before and does not count until one comes.
		if ok && w.Last != nil && fresh(cd.c, w.Last, now) {
			input.Failing, input.Why = decide.RegionHealth(w, cd.c.Failure, cd.c.Recovery, cd.failing[region])
			input.Last = w.Last
			cd.failing[region] = input.Failing
		}
		input.Shape, input.Forecast, input.ShapeJudged = e.shapeFindings(id, region)
		in[region] = input
	}
	d := decide.Decide(cd.c, in)
	cd.last = d
	// Certificate warnings are facts about what live regions see, apart
	// from the verdict: they go out during a warm-up too.
	if e.evaluateCerts(cd, in, now) {
		cd.save = &savedDecider{State: cd.state, Failing: maps.Clone(cd.failing), Certs: maps.Clone(cd.certs)}
	}
	// A restart must be invisible: while the check has incidents open from
	// before it, nothing changes them until every region of the check has
	// reported since the start (or the warm-up is over), so that none is
	// resolved or sent again because a region has not been heard from yet.
	if now.Before(cd.warmUp) && (d.State == decide.StateUnknown || (cd.state.OpenBefore(e.started) && e.unheard(cd.c))) {
		return
	}
	e.observe(cd.id, d.State, now)
	next, events := decide.Step(cd.state, d, cd.c, e.maintenanceFor(cd.c, now), now)
	for _, ev := range events {
		e.emit(cd, ev, in)
	}
	if !reflect.DeepEqual(next, cd.state) || !maps.Equal(failingBefore, cd.failing) {
		cd.state = next
		cd.save = &savedDecider{State: next, Failing: maps.Clone(cd.failing), Certs: maps.Clone(cd.certs)}
	}
}

// pending reports whether time alone may change the check's verdict.
func (cd *checkDecider) pending() bool {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	return cd.last.State != decide.StateOK || cd.last.Shape != nil || cd.last.Forecast != nil || cd.state.AnyOpen()
}

// shapeFindings returns copies of the current shape findings and forecast
// of check in region, and whether they come from a verdict.
func (e *Evaluator) shapeFindings(check, region string) ([]shape.Finding, *shape.Finding, bool) {
	r := e.regions[region]
	if r == nil {
		return nil, nil, false
	}
	t := r.tables().shapes[check]
	if t == nil {
		return nil, nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.Findings()
}

// liveAt reports whether the region counts as live at now: its liveness
// loop says so, or it delivered within staleAfter (a region that reported a
// moment ago is live even before the next liveness tick).
func (r *regionState) liveAt(now time.Time, staleAfter time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live.State == decide.RegionLive || (!r.lastSeen.IsZero() && now.Sub(r.lastSeen) <= staleAfter)
}

// evaluateAfterIngest decides about the checks a batch may have changed:
// those with a failing result, or whose region was failing or had just
// failed. A batch of passes for healthy checks decides nothing, so ingest
// stays cheap.
func (e *Evaluator) evaluateAfterIngest(changed []string, now time.Time) {
	e.evaluate(context.Background(), now, changed...)
}

// evaluateTick runs from the liveness loop: checks with something pending,
// every check of a region whose liveness changed, and all checks every
// sweepEvery.
func (e *Evaluator) evaluateTick(ctx context.Context, now time.Time, regionsChanged []string) {
	full := now.Sub(e.lastSweep) >= sweepEvery
	if full {
		e.lastSweep = now
	}
	var due []string
	p := e.plan.Load()
	for _, c := range p.cfg.Checks {
		cd := p.deciders[c.ID]
		if full || c.Heartbeat != nil || cd.pending() || slices.ContainsFunc(regionsChanged, func(r string) bool { return slices.Contains(c.Regions, r) }) {
			due = append(due, c.ID)
		}
	}
	e.evaluate(ctx, now, due...)
	e.flushMeta(ctx, now)
}

// unheard reports whether some region of c has sent nothing since the
// evaluator started.
func (e *Evaluator) unheard(c *checks.Check) bool {
	for _, region := range c.Regions {
		if r := e.regions[region]; r == nil || r.lastSeenAt().IsZero() {
			return true
		}
	}
	return false
}

// fresh reports whether r, c's latest result from a region, still
// describes the present at now: it is at most c.MaxResultAge old.
func fresh(c *checks.Check, r *wire.Result, now time.Time) bool {
	return c.MaxResultAge <= 0 || now.Sub(r.Time) <= c.MaxResultAge
}
