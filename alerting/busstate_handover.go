package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/bus"
)

// A check handed to this evaluator, by a reload that changes the shard
// map or at its start, takes the decision state its previous owner shared
// in the incidents bucket (see busstate.go, and there the handover race).

// seed gives the checks a reload adds to this evaluator's plan p, and that
// the configuration in force already declared (the shard map moved them
// here), the decision state their previous owner shared. It runs before p
// is installed, so before their first decision here; p's deciders are
// not yet seen by anyone else. It returns the checks seeded. A bus that
// does not answer within bus.RequestTimeout seeds nothing: the checks
// start at rest, as a new check does (logged and counted).
func (b *busState) seed(ctx context.Context, p *plan, added []string) []string {
	if b == nil || len(added) == 0 {
		return nil
	}
	prev := *b.fullChecks.Load()
	want := map[string]bool{}
	for _, id := range added {
		if prev[id] != nil {
			want[kvKey(id)] = true
		}
	}
	return b.read(ctx, p, want)
}

// seedAtStart gives this evaluator's checks that start at rest (nothing
// of theirs in the data dir: a new evaluator, a new data dir, or an
// incident its twin opened while it was down) the decision state their
// owners shared, so that it does not trigger their open incidents again
// and resolves them when they recover. State from the data dir wins.
func (e *Evaluator) seedAtStart() {
	b := e.shared
	if b == nil {
		return
	}
	p := e.plan.Load()
	want := map[string]bool{}
	for id, cd := range p.deciders {
		cd.mu.Lock()
		rest := savedDecider{State: cd.state, Failing: cd.failing, Certs: cd.certs}.atRest()
		cd.mu.Unlock()
		if rest {
			want[kvKey(id)] = true
		}
	}
	for _, id := range b.read(context.Background(), p, want) {
		if cd := p.deciders[id]; cd != nil {
			e.saveLocal(cd)
		}
	}
}

// read gives the deciders of p whose keys are in want what the incidents
// bucket holds for them, and returns their checks.
func (b *busState) read(ctx context.Context, p *plan, want map[string]bool) []string {
	if len(want) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, bus.RequestTimeout)
	defer cancel()
	kv := b.kv(bucketIncidentsKV)
	if kv == nil {
		b.fail("seed", "bus: checks start at rest: the incidents bucket is unavailable", errors.New("not connected"))
		return nil
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		b.fail("seed", "bus: checks start at rest: the incidents bucket cannot be read", err)
		return nil
	}
	defer w.Stop()
	var seeded []string
	for {
		select {
		case <-ctx.Done():
			b.fail("seed", "bus: the incidents bucket was not read in time; the checks not read start at rest", ctx.Err())
			return seeded
		case ent, ok := <-w.Updates():
			if !ok || ent == nil {
				return seeded
			}
			if !want[ent.Key()] {
				continue
			}
			var si sharedIncident
			if err := json.Unmarshal(ent.Value(), &si); err != nil {
				continue
			}
			cd := p.deciders[checkOfKey(ent.Key())]
			if cd == nil {
				continue
			}
			b.adopt(cd, si.Saved)
			seeded = append(seeded, cd.id)
			b.log.Info("bus: check taken over with its decision state", "check", cd.id, "from", si.Owner,
				"open", cd.state.AnyOpen(), "shared_at", si.Updated)
		}
	}
}

// adopt gives cd the state its previous owner saved, and remembers its
// open incidents, so that their resolve goes out from here.
func (b *busState) adopt(cd *checkDecider, saved savedDecider) {
	cd.mu.Lock()
	cd.state, cd.certs = saved.State, saved.Certs
	for region, failing := range saved.Failing {
		if slices.Contains(cd.c.Regions, region) {
			cd.failing[region] = failing
		}
	}
	cd.mu.Unlock()
	b.mu.Lock()
	for _, k := range decide.IncidentKinds() {
		if in, ok := saved.State.Incident(k); ok && in.Open {
			b.adopted[decide.DedupKey(cd.id, k)] = true
		}
	}
	b.mu.Unlock()
	b.m.adopted.Inc()
}

// adoptedResolve reports whether a resolve of the incident of dedup key
// key resolves one taken over from another evaluator (once).
func (b *busState) adoptedResolve(key string) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.adopted[key] {
		return false
	}
	delete(b.adopted, key)
	return true
}

// adoptedOf returns the adopted dedup keys of check id's open incidents.
func (b *busState) adoptedOf(id string) []string {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.adopted) == 0 {
		return nil
	}
	var keys []string
	for _, k := range decide.IncidentKinds() {
		if key := decide.DedupKey(id, k); b.adopted[key] {
			keys = append(keys, key)
		}
	}
	return keys
}

// sharedInstalled follows a reload: full is now in force, and the checks seeded
// are saved here (state store and incidents bucket, now under this
// evaluator's name).
func (e *Evaluator) sharedInstalled(full *checks.Config, seeded []string) {
	b := e.shared
	if b == nil {
		return
	}
	b.setFull(full)
	p := e.plan.Load()
	for _, id := range seeded {
		if cd := p.deciders[id]; cd != nil {
			e.saveLocal(cd)
		}
	}
}

// saveLocal saves cd's state as this evaluator's own: in its state store,
// and in the incidents bucket under its name.
func (e *Evaluator) saveLocal(cd *checkDecider) {
	cd.mu.Lock()
	saved := savedDecider{State: cd.state, Certs: cd.certs, Failing: maps.Clone(cd.failing)}
	cd.mu.Unlock()
	e.saveIncident(cd.id, saved)
}
