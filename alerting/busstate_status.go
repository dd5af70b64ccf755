package alerting

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Status across shards: every evaluator shares its own checks' status in
// the states bucket and follows the bucket for the others', so that
// /status and /status.json on any evaluator show every check (see
// busstate.go).

// publishedState is what this evaluator last shared of one check.
type publishedState struct {
	key   string // the verdict, summary and incidents shared
	state decide.CheckState
	since time.Time // when the check entered state, as seen here
	at    time.Time
}

// share queues, for every check of this evaluator whose verdict, summary
// or incidents changed since it last shared them, or that it has not
// shared for busCheckRefresh, its status for the states bucket, and every
// refresh (the reporting heartbeat) this evaluator's owner key, which
// says it is alive. Called by the liveness loop: one bucket write per
// change, never per result, and not per check per heartbeat.
func (e *Evaluator) share(now time.Time) {
	b := e.shared
	if b == nil {
		return
	}
	p := e.plan.Load()
	var due []string
	b.pubMu.Lock()
	for _, c := range p.cfg.Checks {
		cd := p.deciders[c.ID]
		if cd == nil {
			continue
		}
		key, state := cd.shareKey()
		pub, ok := b.published[c.ID]
		if ok && key == pub.key && now.Sub(pub.at) < b.checkRefresh && !now.Before(pub.at) {
			continue
		}
		if !ok || state != pub.state {
			pub.since = now
		}
		pub.key, pub.state, pub.at = key, state, now
		b.published[c.ID] = pub
		due = append(due, c.ID)
	}
	prune := now.Sub(b.lastPrune) >= b.refresh || now.Before(b.lastPrune)
	var gone []string
	if prune {
		b.lastPrune = now
		for id := range b.published {
			if p.checks[id] == nil {
				delete(b.published, id)
				if b.check(id) == nil {
					gone = append(gone, id) // removed from the configuration
				}
			}
		}
	}
	b.pubMu.Unlock()
	if prune {
		// Once a refresh, this evaluator says it is alive.
		if data, err := json.Marshal(sharedOwner{Owner: b.name, Updated: now}); err == nil {
			b.enqueue(bucketStatesKV, ownerKey(b.name), data)
		}
	}
	for _, id := range gone {
		b.enqueue(bucketStatesKV, kvKey(id), nil)
	}
	for _, cs := range e.publicChecks(due, now) {
		for i := range cs.Regions {
			cs.Regions[i].Shape = nil // its own record; too large to share
			if l := cs.Regions[i].Last; l != nil {
				l.Reason = wire.Clip(l.Reason, busReasonBytes)
			}
		}
		cs.Owner, cs.Since = b.name, b.sinceOf(cs.ID)
		data, err := json.Marshal(sharedCheck{Owner: b.name, Updated: now, Status: cs})
		if err != nil || len(data) > busValueMax {
			continue
		}
		b.enqueue(bucketStatesKV, kvKey(cs.ID), data)
	}
}

// shareKey is what decides whether the check's shared status changed:
// its verdict, summary and open incidents.
func (cd *checkDecider) shareKey() (string, decide.CheckState) {
	cd.mu.Lock()
	defer cd.mu.Unlock()
	var k strings.Builder
	k.WriteString(string(cd.last.State))
	k.WriteByte(0)
	k.WriteString(cd.last.Summary)
	for _, kind := range decide.IncidentKinds() {
		if in, ok := cd.state.Incident(kind); ok && in.Open {
			k.WriteByte(0)
			k.WriteString(string(kind))
			if in.Paged {
				k.WriteString("+paged")
			}
		}
	}
	return k.String(), cd.last.State
}

// sinceOf is when this evaluator saw its check id enter its verdict.
func (b *busState) sinceOf(id string) time.Time {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	return b.published[id].since
}

// runWatcher follows the states bucket into the cache until close,
// starting again after an error and after each reconnection (a watch
// that outlived its connection would otherwise lag until its consumer's
// heartbeats time out).
func (b *busState) runWatcher() {
	defer b.wg.Done()
	nc := b.js.Conn()
	changes := nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED)
	defer nc.RemoveStatusListener(changes)
	for {
		if kv := b.kv(bucketStatesKV); kv != nil {
			if w, err := kv.WatchAll(b.ctx); err != nil {
				b.fail("watch", "bus: the states of other shards cannot be followed; retrying", err)
			} else {
				b.follow(w, changes)
				_ = w.Stop()
			}
		}
		b.cacheMu.Lock()
		b.ready = false
		b.cacheMu.Unlock()
		if b.ctx.Err() != nil {
			return
		}
		t := b.clock.NewTimer(busRetryEvery)
	wait:
		for {
			select {
			case <-b.ctx.Done():
				t.Stop()
				return
			case <-t.C():
				break wait
			case st := <-changes:
				if st == nats.CONNECTED {
					t.Stop()
					break wait
				}
			}
		}
	}
}

// follow applies w's entries to the cache until w ends, the connection
// changes, or close.
func (b *busState) follow(w jetstream.KeyWatcher, changes <-chan nats.Status) {
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-changes:
			return
		case ent, ok := <-w.Updates():
			if !ok {
				return
			}
			if ent == nil {
				// Every entry there was is in: the cache is the bucket.
				b.cacheMu.Lock()
				b.ready = true
				b.cacheMu.Unlock()
				continue
			}
			b.apply(ent)
		}
	}
}

// apply puts one entry of the states bucket into the cache: only checks
// of the configuration, and their regions only for a configuration small
// enough to be shown whole (status.FullMaxChecks), so that the cache
// stays a few hundred bytes a check.
func (b *busState) apply(ent jetstream.KeyValueEntry) {
	if name, ok := strings.CutPrefix(ent.Key(), ownerKeyPrefix); ok {
		var so sharedOwner
		if ent.Operation() == jetstream.KeyValuePut && len(ent.Value()) <= busValueMax &&
			json.Unmarshal(ent.Value(), &so) == nil && so.Owner == checkOfKey(name) {
			b.cacheMu.Lock()
			if len(b.alive) < maxOwners || !b.alive[so.Owner].IsZero() {
				b.alive[so.Owner] = so.Updated
			}
			b.cacheMu.Unlock()
		}
		return
	}
	id := checkOfKey(ent.Key())
	full := *b.fullChecks.Load()
	if full[id] == nil {
		return
	}
	if ent.Operation() != jetstream.KeyValuePut {
		b.cacheMu.Lock()
		delete(b.cache, id)
		b.cacheMu.Unlock()
		return
	}
	var sc sharedCheck
	if len(ent.Value()) > busValueMax || json.Unmarshal(ent.Value(), &sc) != nil || sc.Status.ID != id {
		return
	}
	if len(full) > status.FullMaxChecks {
		sc.Status.Regions = nil
	}
	sc.Owner = wire.Clip(sc.Owner, 128)
	b.cacheMu.Lock()
	b.cache[id] = sc
	b.cacheMu.Unlock()
}

// sharedView is how the checks of other shards can be shown, as of one
// look at the bus.
type sharedView struct {
	b      *busState
	info   *status.ShardsStatus
	now    time.Time
	show   bool // the bus is connected and the bucket read
	hidden func(*status.CheckStatus)
	mine   map[string]*checks.Check
}

// sharedView looks at the bus at now: nil without one.
func (e *Evaluator) sharedView(now time.Time) *sharedView {
	b := e.shared
	if b == nil {
		return nil
	}
	v := &sharedView{b: b, now: now, hidden: e.hidePrivate, mine: e.plan.Load().checks}
	owned, _ := b.full.Load().Bus.Owned(b.name)
	v.info = &status.ShardsStatus{Evaluator: b.name, Owned: owned.String()}
	b.cacheMu.Lock()
	ready := b.ready
	b.cacheMu.Unlock()
	switch {
	case !b.connected():
		v.info.Note = "the bus (NATS) is unavailable, so the checks of the other shards cannot be read."
	case !ready:
		v.info.Note = "the checks of the other shards are still being read from the bus."
	default:
		v.info.Others, v.show = true, true
	}
	return v
}

// mark gives this evaluator's own checks their owner and since.
func (v *sharedView) mark(own []status.CheckStatus) {
	for i := range own {
		own[i].Owner = v.b.name
		own[i].Since = v.b.sinceOf(own[i].ID)
	}
}

// merge returns own (this evaluator's checks) and, when they can be
// shown, every other check of the configuration, in configuration order,
// each with its owner; withRegions keeps the regions of the others.
func (v *sharedView) merge(own []status.CheckStatus, withRegions bool) []status.CheckStatus {
	if v == nil {
		return own
	}
	v.mark(own)
	if !v.show {
		return own
	}
	byID := make(map[string]int, len(own))
	for i, cs := range own {
		byID[cs.ID] = i
	}
	full := v.b.full.Load()
	out := make([]status.CheckStatus, 0, len(full.Checks))
	for _, c := range full.Checks {
		if i, ok := byID[c.ID]; ok {
			out = append(out, own[i])
		} else if v.mine[c.ID] == nil {
			out = append(out, v.other(c, withRegions))
		}
	}
	return out
}

// pick returns, in the order of ids, own (this evaluator's checks among
// ids) and, when they can be shown, the others of ids.
func (v *sharedView) pick(ids []string, own []status.CheckStatus) []status.CheckStatus {
	if v == nil {
		return own
	}
	v.mark(own)
	if !v.show {
		return own
	}
	byID := make(map[string]status.CheckStatus, len(own))
	for _, cs := range own {
		byID[cs.ID] = cs
	}
	out := make([]status.CheckStatus, 0, len(ids))
	for _, id := range ids {
		if cs, ok := byID[id]; ok {
			out = append(out, cs)
		} else if c := v.b.check(id); c != nil && v.mine[id] == nil {
			out = append(out, v.other(c, true))
		}
	}
	return out
}

// other is the status of c, a check of another shard: what its owner
// shared, UNKNOWN and stale when that is older than status.StaleShared
// stale_after (or nothing was shared once this evaluator has run that
// long).
func (v *sharedView) other(c *checks.Check, withRegions bool) status.CheckStatus {
	staleAfter := status.StaleShared * v.b.staleAfter
	v.b.cacheMu.Lock()
	sc, ok := v.b.cache[c.ID]
	alive := v.b.alive[sc.Owner]
	v.b.cacheMu.Unlock()
	if ok && alive.After(sc.Updated) {
		// Its owner is alive and has nothing new to say about it.
		sc.Updated = alive
	}
	var cs status.CheckStatus
	switch {
	case ok:
		cs = sc.Status
		cs.Owner, cs.Updated = sc.Owner, sc.Updated
		if !withRegions || len(cs.Regions) == 0 {
			cs.Regions = nil
		} else {
			cs.Regions = slices.Clone(cs.Regions) // hidePrivate writes them
			for i := range cs.Regions {
				if l := cs.Regions[i].Last; l != nil {
					c := *l
					cs.Regions[i].Last = &c
				}
			}
		}
		cs.Incidents = slices.Clone(cs.Incidents)
		if v.now.Sub(sc.Updated) > staleAfter {
			cs.State, cs.Stale, cs.Incidents = decide.StateUnknown, true, nil
			cs.Summary = "no state shared by " + sc.Owner + " since " + sc.Updated.UTC().Format(time.RFC3339) + ": its verdict is unknown here"
		}
	default:
		cs = status.CheckStatus{ID: c.ID, Type: c.Type(), Group: cmp.Or(c.Labels["service"], c.Labels["group"])}
		var owners []string
		if bus := v.b.full.Load().Bus; bus.NATS != nil {
			owners = bus.Owners(checks.Shard(c.ID, bus.NATS.Shards))
		}
		cs.Owner = strings.Join(owners, ", ")
		if v.now.Sub(v.b.started) > staleAfter {
			cs.State, cs.Stale = decide.StateUnknown, true
			cs.Summary = "no state shared by its owner (" + cs.Owner + ") yet: its verdict is unknown here"
		}
	}
	cs.ID = c.ID
	v.hidden(&cs)
	return cs
}
