package alerting

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/history"
	"github.com/outposthq/outpost/alerting/status"
)

// The evaluator keeps each check's history (alerting/history): its days
// and its incidents for history.Days days. Ingest counts each result into
// its check's day, every decision credits the time since the previous one
// to the verdict it had, and each notification of an incident is noted.
// A check's history has a lock of its own that is taken last, under a
// region's or a decider's, and never holds another.
//
// In the state store (bucketHistory), a check's history is several
// records, so that a save writes what changed, not 90 days: one per day
// (key CHECK NUL "d" NUL DATE), its incidents (CHECK NUL "i") and its
// latest verdict (CHECK NUL "s"). The open days are saved every
// historySaveEvery and at Close; a crash loses at most that much of
// today's counts, never a closed day or an incident (saved as they
// change, with the next save).

const (
	bucketHistory = "history"
	// historySaveEvery is how often what changed in the histories is
	// written; history.MaxGap bounds it from above (a longer gap would
	// be counted as nobody watching after a crash).
	historySaveEvery = time.Minute
)

// checkHistory is one check's history and what changed of it since the
// last save.
type checkHistory struct {
	mu        sync.Mutex
	h         history.Check
	days      map[string]bool // dates changed since the last save
	incidents bool            // incidents changed since the last save
	stored    map[string]bool // dates in the store, for their removal
}

func newCheckHistory() *checkHistory {
	return &checkHistory{days: map[string]bool{}, stored: map[string]bool{}}
}

// probe counts one result into its day. The history's lock is taken
// here: the caller may hold a region's lock.
func (ch *checkHistory) probe(region string, t time.Time, ok bool, d time.Duration) {
	ch.mu.Lock()
	ch.h.Probe(region, t, ok, d)
	ch.days[lastDate(&ch.h)] = true
	ch.mu.Unlock()
}

// observe credits the time since the previous verdict to it and notes
// state as the verdict from now.
func (ch *checkHistory) observe(state string, now time.Time) {
	ch.mu.Lock()
	before := len(ch.h.Days)
	prev := lastDate(&ch.h)
	ch.h.Observe(state, now)
	if len(ch.h.Days) != before && prev != "" {
		ch.days[prev] = true // closed: its quantiles are final
	}
	ch.days[lastDate(&ch.h)] = true
	ch.mu.Unlock()
}

// note records a notification of an incident.
func (ch *checkHistory) note(kind string, opened time.Time, n history.Note, regions []string) {
	ch.mu.Lock()
	ch.h.Notify(kind, opened, n, regions)
	ch.incidents = true
	ch.mu.Unlock()
}

func lastDate(h *history.Check) string {
	if len(h.Days) == 0 {
		return ""
	}
	return h.Days[len(h.Days)-1].Date
}

// History returns a copy of check's history, and false for a check the
// configuration does not have.
func (e *Evaluator) History(check string) (history.Check, bool) {
	ch := e.plan.Load().histories[check]
	if ch == nil {
		return history.Check{}, false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	h := ch.h
	h.Days = slices.Clone(h.Days)
	for i := range h.Days {
		h.Days[i].Regions = slices.Clone(h.Days[i].Regions)
		for j := range h.Days[i].Regions {
			r := &h.Days[i].Regions[j]
			r.P50, r.P99 = r.Quantiles()
			r.Latency = nil
		}
	}
	h.Incidents = slices.Clone(h.Incidents)
	for i := range h.Incidents {
		h.Incidents[i].Notes = slices.Clone(h.Incidents[i].Notes)
		h.Incidents[i].Regions = slices.Clone(h.Incidents[i].Regions)
	}
	return h, true
}

// historyKey is the store key of one record of check's history.
func historyKey(check, kind, date string) string {
	if date == "" {
		return check + "\x00" + kind
	}
	return check + "\x00" + kind + "\x00" + date
}

// saveHistories queues what changed in every history since the last
// save, and the removal of days past history.Days, for the state store.
// Encoding happens under each history's lock (a few hundred bytes a
// record); the store does the I/O.
func (e *Evaluator) saveHistories(now time.Time) {
	if e.state == nil {
		return
	}
	p := e.plan.Load()
	for _, id := range slices.Sorted(maps.Keys(p.histories)) {
		ch := p.histories[id]
		type rec struct {
			key  string
			data []byte
		}
		var puts []rec
		var dels []string
		ch.mu.Lock()
		ch.h.Prune(now)
		kept := map[string]bool{}
		for i := range ch.h.Days {
			d := &ch.h.Days[i]
			kept[d.Date] = true
			if ch.days[d.Date] || !ch.stored[d.Date] {
				if data, err := json.Marshal(d); err == nil {
					puts = append(puts, rec{historyKey(id, "d", d.Date), data})
				}
				ch.stored[d.Date] = true
			}
		}
		for date := range ch.stored {
			if !kept[date] {
				dels = append(dels, historyKey(id, "d", date))
				delete(ch.stored, date)
			}
		}
		if ch.incidents {
			if data, err := json.Marshal(ch.h.Incidents); err == nil {
				puts = append(puts, rec{historyKey(id, "i", ""), data})
			}
		}
		if data, err := json.Marshal(savedVerdict{State: ch.h.State, Since: ch.h.Since}); err == nil {
			puts = append(puts, rec{historyKey(id, "s", ""), data})
		}
		clear(ch.days)
		ch.incidents = false
		ch.mu.Unlock()
		for _, r := range puts {
			if err := e.state.Put(bucketHistory, r.key, r.data); err != nil {
				e.logStateError("history not saved; a restart loses today's counts since the last save", id, err)
			}
		}
		for _, k := range dels {
			e.state.Delete(bucketHistory, k)
		}
	}
}

// savedVerdict is a check's latest verdict, for the time after a restart
// to be credited (or not: see history.MaxGap).
type savedVerdict struct {
	State string    `json:"state"`
	Since time.Time `json:"since"`
}

// loadHistories restores the histories in the store and removes the
// records of checks no longer configured and those it cannot decode.
func (e *Evaluator) loadHistories() error {
	p := e.plan.Load()
	var drop []string
	err := e.state.ForEach(bucketHistory, func(key string, v []byte) error {
		parts := strings.Split(key, "\x00")
		ch := p.histories[parts[0]]
		if ch == nil || len(parts) < 2 {
			drop = append(drop, key)
			return nil
		}
		ch.mu.Lock()
		defer ch.mu.Unlock()
		var err error
		switch {
		case parts[1] == "d" && len(parts) == 3:
			var d history.Day
			if err = json.Unmarshal(v, &d); err == nil && d.Date == parts[2] {
				ch.h.Days = append(ch.h.Days, d)
				ch.stored[d.Date] = true
			}
		case parts[1] == "i":
			err = json.Unmarshal(v, &ch.h.Incidents)
		case parts[1] == "s":
			var s savedVerdict
			if err = json.Unmarshal(v, &s); err == nil {
				ch.h.State, ch.h.Since = s.State, s.Since
			}
		default:
			drop = append(drop, key)
		}
		if err != nil {
			drop = append(drop, key)
		}
		return nil
	})
	for _, ch := range p.histories {
		ch.mu.Lock()
		slices.SortFunc(ch.h.Days, func(a, b history.Day) int { return strings.Compare(a.Date, b.Date) })
		if n := len(ch.h.Days); n > history.Days {
			ch.h.Days = ch.h.Days[n-history.Days:]
		}
		ch.mu.Unlock()
	}
	for _, k := range drop {
		e.state.Delete(bucketHistory, k)
	}
	return err
}

// observe credits check's history with its verdict at now.
func (e *Evaluator) observe(check string, state decide.CheckState, now time.Time) {
	if ch := e.plan.Load().histories[check]; ch != nil {
		ch.observe(string(state), now)
	}
}

// forgetHistory removes the stored history of a check a reload removed.
func (e *Evaluator) forgetHistory(check string, ch *checkHistory) {
	if e.state == nil || ch == nil {
		return
	}
	ch.mu.Lock()
	dates := slices.Collect(maps.Keys(ch.stored))
	clear(ch.stored)
	ch.mu.Unlock()
	for _, d := range dates {
		e.state.Delete(bucketHistory, historyKey(check, "d", d))
	}
	e.state.Delete(bucketHistory, historyKey(check, "i", ""))
	e.state.Delete(bucketHistory, historyKey(check, "s", ""))
}

// noteIncident records ev in its check's incident history, with the
// regions failing (those of in) when it opens.
func (e *Evaluator) noteIncident(check string, ev decide.Event, in map[string]decide.RegionInput) {
	p := e.plan.Load()
	ch := p.histories[check]
	if ch == nil {
		return
	}
	var failing []string
	for _, region := range slices.Sorted(maps.Keys(in)) {
		if in[region].Failing {
			failing = append(failing, region)
		}
	}
	ch.note(string(ev.Kind), ev.OpenedAt, history.Note{Time: ev.Time, Action: string(ev.Action), Route: ev.Route, Summary: p.redact(ev.Summary)}, failing)
}

// uptimeOf is h's uptime over 1, 7, 30 and 90 days at now, or nil before
// any watched time. Its history's mutex is held.
func uptimeOf(h *history.Check, now time.Time) *status.Uptime {
	var u status.Uptime
	for _, r := range []struct {
		days int
		to   **float64
	}{{1, &u.Day}, {7, &u.Week}, {30, &u.Month}, {history.Days, &u.Quarter}} {
		if v, ok := h.Uptime(now, r.days); ok {
			*r.to = &v
		}
	}
	if u.Quarter == nil {
		return nil
	}
	return &u
}

// CheckHistory returns check's days (the last history.Days up to now,
// oldest first, a day nobody watched included as empty) and its
// incidents, newest first; a private check's incidents without their
// summaries, which are evidence (see status.Source).
func (e *Evaluator) CheckHistory(check string, now time.Time) ([]status.DayStatus, []status.IncidentRecord) {
	h, ok := e.History(check)
	if !ok {
		return nil, nil
	}
	private := e.Private(check)
	byDate := make(map[string]*history.Day, len(h.Days))
	for i := range h.Days {
		byDate[h.Days[i].Date] = &h.Days[i]
	}
	days := make([]status.DayStatus, 0, history.Days)
	for i := history.Days - 1; i >= 0; i-- {
		date := history.DateOf(now.AddDate(0, 0, -i))
		ds := status.DayStatus{Date: date}
		if d := byDate[date]; d != nil {
			ds.OK, ds.Degraded, ds.Down, ds.Unknown = d.Seconds[history.StateOK], d.Seconds[history.StateDegraded], d.Seconds[history.StateDown], d.Seconds[history.StateUnknown]
			if w := d.Worst(); w >= 0 {
				ds.Worst = []decide.CheckState{decide.StateOK, decide.StateDegraded, decide.StateDown, decide.StateUnknown}[w]
			}
			for _, r := range d.Regions {
				ds.Probes += r.Probes
				ds.Failures += r.Failures
			}
		}
		days = append(days, ds)
	}
	incidents := make([]status.IncidentRecord, 0, len(h.Incidents))
	for i := len(h.Incidents) - 1; i >= 0; i-- {
		in := h.Incidents[i]
		rec := status.IncidentRecord{Kind: decide.IncidentKind(in.Kind), OpenedAt: in.OpenedAt, ResolvedAt: in.ResolvedAt, Regions: in.Regions}
		if !private {
			rec.Summary = in.Summary
		}
		for _, n := range in.Notes {
			te := status.TimelineEntry{Time: n.Time, Action: n.Action, Route: n.Route}
			if !private {
				te.Summary = n.Summary
			}
			rec.Timeline = append(rec.Timeline, te)
		}
		incidents = append(incidents, rec)
	}
	return days, incidents
}
