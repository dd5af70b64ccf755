package alerting

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Snapshot returns the evaluator's current state. Each region is copied
// under its own lock, so a region's checks and liveness are consistent
// with each other.
func (e *Evaluator) Snapshot() status.Status {
	s := e.statusHead()
	perCheck := map[string][]status.CheckRegionStatus{}
	for i, r := range e.regionList {
		r.mu.Lock()
		s.Regions[i] = r.statusLocked()
		for id, w := range r.tables().windows {
			st := w.status()
			if t := r.tables().shapes[id]; t != nil {
				st.Shape = t.Status(s.Time)
			}
			perCheck[id] = append(perCheck[id], st)
		}
		r.mu.Unlock()
	}
	s.Checks = make([]status.CheckStatus, 0, len(e.config().Checks))
	for _, c := range e.config().Checks {
		// perCheck holds the check's regions in e.regionList order, which
		// is the declared order.
		cs := e.checkHead(c, s.Time)
		cs.Regions = perCheck[c.ID]
		s.Checks = append(s.Checks, cs)
	}
	e.checkBuilds.Add(int64(len(s.Checks)))
	return s
}

// statusHead is a Status with every region's liveness and no checks.
func (e *Evaluator) statusHead() status.Status {
	s := status.Status{
		Time:         e.clock.Now(),
		Started:      e.started,
		ConfigDigest: e.config().Digest,
		StaleAfter:   status.Seconds(e.staleAfter.Seconds()),
		Regions:      make([]status.RegionStatus, len(e.regionList)),
	}
	for i, r := range e.regionList {
		r.mu.Lock()
		s.Regions[i] = r.statusLocked()
		r.mu.Unlock()
	}
	for _, m := range e.config().Maintenance {
		if start, end, ok := m.Next(s.Time, status.UpcomingWithin); ok {
			checks := "every check"
			if len(m.Checks) > 0 {
				checks = strings.Join(m.Checks, ", ")
			}
			s.Upcoming = append(s.Upcoming, status.MaintenanceWindow{Name: m.Name, Start: start, End: end, Checks: wire.Clip(checks, 300)})
		}
	}
	slices.SortStableFunc(s.Upcoming, func(a, b status.MaintenanceWindow) int { return a.Start.Compare(b.Start) })
	return s
}

// statusLocked is r's liveness and agents. r.mu is held.
func (r *regionState) statusLocked() status.RegionStatus {
	rs := status.RegionStatus{
		Name:              r.name,
		State:             r.live.State,
		Since:             r.live.Since,
		LastSeen:          r.lastSeen,
		ConfigDigestMatch: !r.mismatch,
		Agents:            make([]status.AgentStatus, 0, len(r.agents)),
	}
	for _, a := range r.agents {
		rs.Agents = append(rs.Agents, status.AgentStatus{
			Name: a.name, LastSeen: a.lastSeen, LastSeq: a.lastSeq,
			ConfigDigest: a.digest, ConfigDigestMatch: a.digest == "" || !a.digestBad,
		})
	}
	slices.SortFunc(rs.Agents, func(a, b status.AgentStatus) int { return cmp.Compare(a.Name, b.Name) })
	return rs
}

// checkHead is c's verdict, open incidents and maintenance at now, without
// its regions.
func (e *Evaluator) checkHead(c *checks.Check, now time.Time) status.CheckStatus {
	cs := status.CheckStatus{ID: c.ID, Type: c.Type()}
	if cd := e.plan.Load().deciders[c.ID]; cd != nil {
		cd.mu.Lock()
		cs.State, cs.Summary = cd.last.State, cd.last.Summary
		for _, k := range decide.IncidentKinds() {
			if inc, ok := cd.state.Incident(k); ok && inc.Open {
				cs.Incidents = append(cs.Incidents, status.IncidentStatus{Kind: k, OpenedAt: inc.OpenedAt, Paged: inc.Paged, Flapping: inc.Flapping, DedupKey: decide.DedupKey(c.ID, k)})
			}
		}
		cd.mu.Unlock()
	}
	for _, m := range e.config().Maintenance {
		if m.Active(c.ID, "", now) {
			cs.Maintenance = append(cs.Maintenance, m.Name)
		}
	}
	cs.Maintenance = append(cs.Maintenance, e.silencesOf(c, now)...)
	cs.Group = cmp.Or(c.Labels["service"], c.Labels["group"])
	if ch := e.plan.Load().histories[c.ID]; ch != nil {
		ch.mu.Lock()
		cs.Uptime = uptimeOf(&ch.h, now)
		ch.mu.Unlock()
	}
	return cs
}

// Overview is PublicStatus without the checks' regions (see
// status.Source): what a summary or a page of checks is chosen from.
func (e *Evaluator) Overview() status.Status {
	s := e.statusHead()
	s.Checks = make([]status.CheckStatus, 0, len(e.config().Checks))
	for _, c := range e.config().Checks {
		cs := e.checkHead(c, s.Time)
		e.hidePrivate(&cs)
		s.Checks = append(s.Checks, cs)
	}
	if v := e.sharedView(s.Time); v != nil {
		s.Checks, s.Shards = v.merge(s.Checks, false), v.info
	}
	return s
}

// PublicChecks is the public status of the checks named by ids as of now,
// with their regions, in the order of ids; unknown ids are left out. It
// reads only those checks' windows (see status.Source). With a bus, the
// checks of other shards are as their owners shared them.
func (e *Evaluator) PublicChecks(ids []string, now time.Time) []status.CheckStatus {
	return e.sharedView(now).pick(ids, e.publicChecks(ids, now))
}

// publicChecks is PublicChecks of this evaluator's own checks.
func (e *Evaluator) publicChecks(ids []string, now time.Time) []status.CheckStatus {
	out := make([]status.CheckStatus, 0, len(ids))
	for _, id := range ids {
		c := e.plan.Load().checks[id]
		if c == nil {
			continue
		}
		cs := e.checkHead(c, now)
		for _, r := range e.regionList {
			w := r.tables().windows[id]
			if w == nil {
				continue
			}
			r.mu.Lock()
			st := w.status()
			if t := r.tables().shapes[id]; t != nil {
				st.Shape = t.Status(now)
			}
			r.mu.Unlock()
			cs.Regions = append(cs.Regions, st)
		}
		e.hidePrivate(&cs)
		out = append(out, cs)
	}
	e.checkBuilds.Add(int64(len(out)))
	return out
}

// status summarises w. Its region's mutex is held.
func (w *window) status() status.CheckRegionStatus {
	st := status.CheckRegionStatus{Region: w.region}
	f, p, c := w.counts()
	st.Window = status.WindowCounts{Samples: w.n, Size: w.ruleSize, Failures: f, Passes: p, Consecutive: c}
	if w.hasLast {
		l := w.at(w.n - 1)
		st.Last = &status.LastResult{OK: l.OK, Reason: w.last.Reason, Time: l.Time, Received: l.Received, Agent: l.Agent, Duration: l.Duration}
	}
	return st
}

// PublicStatus is Snapshot without the evidence of private checks: their
// type, summary, and the reason, duration and agent of each latest result
// are cleared; their states, incidents and window counts remain. It is
// what may be shown to people who must not learn a private target.
func (e *Evaluator) PublicStatus() status.Status {
	s := e.Snapshot()
	for i := range s.Checks {
		e.hidePrivate(&s.Checks[i])
	}
	if v := e.sharedView(s.Time); v != nil {
		s.Checks, s.Shards = v.merge(s.Checks, true), v.info
	}
	return s
}

// hidePrivate clears the evidence of cs if its check is private; cs and
// its latest results were made for one Status alone.
func (e *Evaluator) hidePrivate(cs *status.CheckStatus) {
	if !e.Private(cs.ID) {
		return
	}
	cs.Type, cs.Summary = "", ""
	for j := range cs.Regions {
		if l := cs.Regions[j].Last; l != nil {
			l.Reason, l.Duration, l.Agent = "", 0, ""
		}
		cs.Regions[j].Shape = nil // timings are evidence too
	}
}

// Private reports whether check is private (checks.Check.Private): the
// status page shows its states only.
func (e *Evaluator) Private(check string) bool {
	c := e.plan.Load().checks[check]
	if c == nil {
		c = e.shared.check(check) // another shard's
	}
	return c != nil && c.Private
}

// statusChecks is how many checks the status shows: with a bus, those
// of every shard.
func (e *Evaluator) statusChecks() int {
	if b := e.shared; b != nil {
		return len(b.full.Load().Checks)
	}
	return len(e.config().Checks)
}

// StatusPage serves the status page of the evaluator; see status.Handler.
func (e *Evaluator) StatusPage() http.Handler { return status.Handler(e, e.log) }
