package alerting

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/exposition"
)

// A reload gives a running evaluator a new configuration without losing
// what it knows. What the configuration makes of the evaluator lives in
// three places, each replaced whole with one atomic store, so that a
// reader (an ingest, a decision, a status page) sees either the old or the
// new one, never a half-built mix:
//
//   - the plan: the configuration, its checks and a decider per check;
//   - per region, its tables: a window and a shape tracker per check;
//   - per region, its agent keys.
//
// A check that survives a reload keeps its decider (the same one: its
// incidents, failing regions and the notifications it has queued), its
// windows when the failure rules size them alike, and its shape trackers
// when its shape settings are the same. A removed check's open incidents
// are resolved. Regions, peers and the reporting settings are what every
// liveness judgement and every agent's schedule is built on; changing them
// needs a restart, and a reload that tries is refused whole.

// ErrNeedsRestart wraps the reason a reload was refused because what it
// changes cannot change in a running evaluator.
var ErrNeedsRestart = errors.New("needs a restart")

// plan is what a configuration makes of the evaluator. Nothing in it is
// written after it is installed; Reload builds and installs a new one.
type plan struct {
	cfg    *checks.Config
	checks map[string]*checks.Check
	// deciders has one per check; each guards itself. A decider outlives
	// the plan that made it when its check survives a reload.
	deciders map[string]*checkDecider
	// histories has one per check (history_store.go); like a decider, it
	// outlives the plan when its check survives a reload.
	histories map[string]*checkHistory
	// redact removes the configuration's secrets.
	redact func(string) string
}

// regionTables are one region's windows and shape trackers, by check.
// The maps are never written after they are installed; the contents are
// guarded by the region's mutex.
type regionTables struct {
	windows map[string]*window
	shapes  map[string]*shape.Tracker
}

// config returns the configuration in force.
func (e *Evaluator) config() *checks.Config { return e.plan.Load().cfg }

// tables returns the region's windows and shape trackers in force.
func (r *regionState) tables() *regionTables { return r.tab.Load() }

// ReloadReport says what a reload changed.
type ReloadReport struct {
	Added, Changed, Removed []string
	// HandedOver are the checks the bus's shard map moved to other
	// evaluators: still configured, no longer decided here.
	HandedOver []string
	// Resolved counts the incidents and certificate warnings of removed
	// checks that were resolved.
	Resolved int
}

// Reload puts cfg, a configuration from checks.Load, in force. It is
// refused whole (wrapping ErrNeedsRestart) when cfg changes the regions,
// the peers or the reporting settings. Checks it keeps carry on where they
// were; checks it adds start with the warm-up of a new check; the open
// incidents of checks it removes are resolved, and their records removed
// from the state store. Reloads are serialised.
func (e *Evaluator) Reload(ctx context.Context, cfg *checks.Config) (ReloadReport, error) {
	if cfg == nil {
		return ReloadReport{}, errors.New("alerting: no configuration")
	}
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	old := e.plan.Load()
	if err := restartOnly(old.cfg, cfg); err != nil {
		return ReloadReport{}, err
	}
	full := cfg
	cfg, err := cfg.ForEvaluator(e.owner)
	if err != nil {
		return ReloadReport{}, fmt.Errorf("alerting: %w", err)
	}
	now := e.clock.Now()
	p, tabs, keys, err := e.build(cfg, old, now)
	if err != nil {
		return ReloadReport{}, err
	}
	rep := ReloadReport{}
	for _, c := range cfg.Checks {
		switch prev := old.checks[c.ID]; {
		case prev == nil:
			rep.Added = append(rep.Added, c.ID)
		case !reflect.DeepEqual(prev, c):
			rep.Changed = append(rep.Changed, c.ID)
		}
	}
	// Checks the shard map moved here start from the state their previous
	// owner shared (busstate.go), before their first decision here.
	seeded := e.shared.seed(ctx, p, rep.Added)
	var retired []*checkDecider
	for _, id := range slices.Sorted(maps.Keys(old.deciders)) {
		switch _, kept := p.deciders[id]; {
		case kept:
		case full.HasCheck(id):
			// The shard map gave the check to other evaluators: they
			// carry on with it, and nothing about it is resolved here.
			rep.HandedOver = append(rep.HandedOver, id)
		default:
			rep.Removed = append(rep.Removed, id)
			retired = append(retired, old.deciders[id])
		}
	}
	// Surviving deciders take their new check under their own lock: a
	// decision in flight finishes on the old one, the next takes the new.
	for id, cd := range p.deciders {
		if old.deciders[id] != cd {
			continue
		}
		c := p.checks[id]
		cd.mu.Lock()
		cd.c, cd.page = c, pageFactsOf(cfg, c, p.redact)
		for region := range cd.failing {
			if !slices.Contains(c.Regions, region) {
				delete(cd.failing, region)
			}
		}
		cd.mu.Unlock()
	}
	e.install(p, tabs, keys)
	e.sharedInstalled(full, seeded)
	e.busReloaded()
	e.beats.reconfigure(cfg)

	// A removed check can decide nothing more: its open incidents are
	// resolved now, and its record goes from the state store once they
	// have been handed over (the state Retire leaves is at rest, which
	// saveIncident stores as no record).
	var claimed []*checkDecider
	for _, cd := range retired {
		cd.mu.Lock()
		next, events := decide.Retire(cd.id, cd.state, now)
		for _, ev := range events {
			e.emit(cd, ev, nil)
			rep.Resolved++
		}
		for _, ev := range decide.RetireCerts(cd.id, cd.certs, now) {
			cd.queue(e.certNotification(cd, ev))
			rep.Resolved++
		}
		cd.certs = nil
		cd.state, cd.retired = next, true
		cd.save = &savedDecider{State: next}
		if cd.claim() {
			claimed = append(claimed, cd)
		}
		cd.mu.Unlock()
		e.unknown.set(cd.id, "", false)
	}
	if len(claimed) > 0 {
		e.deliver(ctx, claimed...)
	}
	for _, cd := range retired {
		if old.checks[cd.id].Heartbeat != nil && e.state != nil {
			e.state.Delete(bucketPings, cd.id)
		}
		e.forgetHistory(cd.id, old.histories[cd.id])
	}
	e.log.Info("evaluator configuration reloaded", "checks", len(cfg.Checks), "added", len(rep.Added),
		"changed", len(rep.Changed), "removed", len(rep.Removed), "handed_over", len(rep.HandedOver), "incidents_resolved", rep.Resolved, "config_digest", cfg.Digest)
	return rep, nil
}

// restartOnly returns why cfg cannot replace old in a running evaluator,
// or nil.
func restartOnly(old, cfg *checks.Config) error {
	var what []string
	if !slices.Equal(old.Regions, cfg.Regions) {
		what = append(what, fmt.Sprintf("regions (%v to %v)", old.Regions, cfg.Regions))
	}
	if !reflect.DeepEqual(old.Reporting, cfg.Reporting) {
		what = append(what, "reporting")
	}
	if !reflect.DeepEqual(old.Peers, cfg.Peers) {
		what = append(what, "peers")
	}
	if !reflect.DeepEqual(old.Bus.NATS, cfg.Bus.NATS) {
		what = append(what, "bus.nats")
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("alerting: the new configuration changes %s: %w of the evaluator; the running configuration stays",
		joinAnd(what), ErrNeedsRestart)
}

// joinAnd joins words as a sentence does.
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// build makes what cfg makes of the evaluator at now, taking from old (nil
// at the start) what survives. It changes nothing: install does.
func (e *Evaluator) build(cfg *checks.Config, old *plan, now time.Time) (*plan, map[string]*regionTables, map[string]*agentKeys, error) {
	for _, a := range cfg.Agents {
		if _, ok := e.regions[a.Region]; !ok {
			return nil, nil, nil, fmt.Errorf("alerting: agent key for undeclared region %q", a.Region)
		}
	}
	p := &plan{
		cfg:       cfg,
		checks:    make(map[string]*checks.Check, len(cfg.Checks)),
		deciders:  make(map[string]*checkDecider, len(cfg.Checks)),
		histories: make(map[string]*checkHistory, len(cfg.Checks)),
		redact:    cfg.Redactor(),
	}
	tabs := make(map[string]*regionTables, len(e.regionList))
	keys := make(map[string]*agentKeys, len(e.regionList))
	for _, r := range e.regionList {
		tabs[r.name] = &regionTables{windows: map[string]*window{}, shapes: map[string]*shape.Tracker{}}
		k := newAgentKeys(cfg.Agents, r.name)
		keys[r.name] = &k
	}
	regions := cfg.Regions
	if len(regions) == 0 {
		regions = []string{checks.LocalRegion}
	}
	for _, c := range cfg.Checks {
		if _, dup := p.checks[c.ID]; dup {
			return nil, nil, nil, fmt.Errorf("alerting: check %q declared twice", c.ID)
		}
		p.checks[c.ID] = c
		var prev *checks.Check
		if old != nil {
			prev = old.checks[c.ID]
		}
		in := c.Regions
		if len(in) == 0 {
			in = regions
		}
		for _, name := range in {
			r, ok := e.regions[name]
			if !ok {
				return nil, nil, nil, fmt.Errorf("alerting: check %q: undeclared region %q", c.ID, name)
			}
			tab := tabs[name]
			w := newWindow(c, name)
			if prev != nil {
				if was := r.tables().windows[c.ID]; was != nil && was.sameShape(w) {
					w = was
				}
			}
			tab.windows[c.ID] = w
			t := shape.NewTracker(c)
			if prev != nil && t != nil && sameShapeSpec(prev, c) {
				if was := r.tables().shapes[c.ID]; was != nil {
					t = was
				}
			}
			if t != nil {
				tab.shapes[c.ID] = t
			}
		}
		if old != nil && old.histories[c.ID] != nil {
			p.histories[c.ID] = old.histories[c.ID]
		} else {
			p.histories[c.ID] = newCheckHistory()
		}
		if old != nil && old.deciders[c.ID] != nil {
			p.deciders[c.ID] = old.deciders[c.ID]
			continue
		}
		// Silence right after a start is not yet meaningful: every region
		// gets the start grace to report, and each check two intervals
		// and a timeout to have run everywhere. A check added by a reload
		// needs only the latter: the regions are already reporting.
		warm := 2*c.Interval + c.Timeout
		if old == nil {
			warm = max(startGrace(cfg, e.staleAfter), warm)
		}
		p.deciders[c.ID] = &checkDecider{id: c.ID, c: c, failing: map[string]bool{}, warmUp: now.Add(warm), page: pageFactsOf(cfg, c, p.redact),
			label: exposition.MakeLabels("check", c.ID)}
	}
	return p, tabs, keys, nil
}

// install puts what build made in force.
func (e *Evaluator) install(p *plan, tabs map[string]*regionTables, keys map[string]*agentKeys) {
	for _, r := range e.regionList {
		r.tab.Store(tabs[r.name])
		r.keys.Store(keys[r.name])
	}
	e.plan.Store(p)
}

// sameShapeSpec reports whether a shape tracker built for a serves b as
// well: what NewTracker reads is the same.
func sameShapeSpec(a, b *checks.Check) bool {
	return reflect.DeepEqual(a.Shape, b.Shape) && (a.Series == nil) == (b.Series == nil) && a.Interval == b.Interval
}

// Config returns the configuration in force.
func (e *Evaluator) Config() *checks.Config { return e.config() }

// CanReload returns why Reload would refuse cfg (wrapping ErrNeedsRestart),
// or nil: for a caller that must know before it changes what goes with
// the configuration (the notification pipeline).
func (e *Evaluator) CanReload(cfg *checks.Config) error {
	return restartOnly(e.config(), cfg)
}
