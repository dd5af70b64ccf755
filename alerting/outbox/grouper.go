package outbox

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
)

var (
	bucketGroups  = []byte("groups")  // notifier NUL group id → groupState
	bucketMembers = []byte("members") // notifier NUL incident key → memberState
)

// groupKey is the stored key of a group or member record.
func groupKey(notifier, id string) []byte { return []byte(notifier + "\x00" + id) }

// joinResult says what the grouping stage did with a notification.
type joinResult struct {
	// held: n is now a member of a group and goes out with it.
	held bool
	// folded: n opened the storm group or joined it as a new incident.
	folded bool
}

// joinTx runs n through notifier name's grouping stage in transaction tx:
// when it returns held, n is a member of a group, written in tx. A
// notification the stage does not take (not a check incident, an incident
// open on its own, a resolve of an incident that is in no group) is not
// held and goes to the queue. It changes memory at once, so that what
// follows in tx sees it; if tx fails, the caller reloads the store from
// the file (reloadLocked).
func (o *store) joinTx(tx *bolt.Tx, name string, pol GroupPolicy, n notify.Notification, facts Facts, now time.Time) (joinResult, error) {
	if (pol.Grouping == nil && pol.Storm == nil) || !groupable(n) {
		return joinResult{}, nil
	}
	groups := o.groups[name]
	var res joinResult
	m := o.members[name][n.Key]
	var g *groupState
	var gid string
	if m != nil {
		gid, g = m.Group, groups[m.Group]
	}
	switch {
	case g != nil:
	case n.Action == notify.ActionResolve:
		return res, nil
	case pol.Grouping != nil:
		var key, label string
		gid, key, label = groupFor(pol.Grouping, n, facts)
		if g = groups[gid]; g == nil {
			g = &groupState{Route: n.Route, Key: key, Label: label, Created: now, members: map[string]*memberState{}}
		}
	default:
		// Only the storm guard: an incident pages on its own unless it
		// opens in a storm.
		if o.states[stateKey{name, n.Key}].Action == notify.ActionTrigger || !o.stormy(name, pol.Storm, n.Route, now) {
			return res, nil
		}
		var key string
		gid, key = stormGroup(n.Route)
		if g = groups[gid]; g == nil {
			g = &groupState{Route: n.Route, Key: key, Storm: true, Created: now, members: map[string]*memberState{}}
		}
		res.folded = true
	}
	nm := &memberState{Group: gid, Firing: n.Action == notify.ActionTrigger, Last: n}
	if !nm.Firing && m != nil {
		// A resolve carries no evidence: keep what the member fired with.
		nm.Last = m.Last
		nm.Last.Time = n.Time
	}
	g.Dirty = true
	if err := putJSON(tx.Bucket(bucketMembers), groupKey(name, n.Key), nm); err != nil {
		return joinResult{}, err
	}
	if err := putJSON(tx.Bucket(bucketGroups), groupKey(name, gid), g); err != nil {
		return joinResult{}, err
	}
	g.members[n.Key] = nm
	groups[gid] = g
	o.members[name][n.Key] = nm
	res.held = true
	return res, nil
}

// stormy records that an incident opens on route at now and reports
// whether that makes more than the guard's threshold within its window.
func (o *store) stormy(name string, s *checks.StormGuard, route string, now time.Time) bool {
	if s == nil {
		return false
	}
	opens := o.opens[name][route]
	cut := 0
	for cut < len(opens) && now.Sub(opens[cut]) >= s.Window {
		cut++
	}
	opens = append(opens[cut:], now)
	if len(opens) > s.Threshold+1 {
		opens = opens[len(opens)-s.Threshold-1:]
	}
	o.opens[name][route] = opens
	return len(opens) > s.Threshold
}

// flushResult is what a flush queued.
type flushResult struct {
	added []addResult
	// unsent counts groups whose every member resolved before the group
	// was first notified; folded counts groups folded into a storm.
	unsent, folded int
}

// flush sends the group notifications of notifier name due at now: a
// group's first notification once its wait is over, a change once its
// interval is. A new group that opens in a storm joins the route's storm
// group instead. It returns when the next group falls due (zero if none
// does) and what it queued; the groups and the queue change in one
// transaction.
func (o *store) flush(name string, pol GroupPolicy, now time.Time) (time.Time, flushResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var res flushResult
	if o.closed {
		return time.Time{}, res, errOutboxClosed
	}
	groups := o.groups[name]
	var next time.Time
	// Most wake-ups find nothing due (every join wakes the loop): answer
	// those without a transaction, which would cost an fsync.
	due := false
	for _, g := range groups {
		if !g.Dirty {
			continue
		}
		if at := g.dueAt(pol); now.Before(at) {
			if next.IsZero() || at.Before(next) {
				next = at
			}
		} else {
			due = true
		}
	}
	if !due {
		return next, res, nil
	}
	next = time.Time{}
	var apply []func()
	window := checks.DefaultStormWindow
	if pol.Storm != nil {
		window = pol.Storm.Window
	}
	err := o.db.Update(func(tx *bolt.Tx) error {
		gb, mb := tx.Bucket(bucketGroups), tx.Bucket(bucketMembers)
		// Storm groups sort last ("storm" > "group"), so that what folds
		// into one goes out with it in this flush.
		ids := slices.Sorted(maps.Keys(groups))
		for i := 0; i < len(ids); i++ {
			id := ids[i]
			g := groups[id]
			if !g.Dirty {
				continue
			}
			if due := g.dueAt(pol); now.Before(due) {
				if next.IsZero() || due.Before(next) {
					next = due
				}
				continue
			}
			ms := g.sortedMembers()
			firing := slices.IndexFunc(ms, func(m *memberState) bool { return !m.Firing })
			if firing < 0 {
				firing = len(ms)
			}
			switch {
			case !g.Opened && firing == 0:
				res.unsent++
				if err := o.dropGroup(gb, mb, name, id, g, ms); err != nil {
					return err
				}
				continue
			case !g.Opened && !g.Storm && o.stormy(name, pol.Storm, g.Route, now):
				sid, key := stormGroup(g.Route)
				sg := groups[sid]
				if sg == nil {
					sg = &groupState{Route: g.Route, Key: key, Storm: true, Created: now, members: map[string]*memberState{}}
					groups[sid] = sg
					ids = append(ids, sid)
				}
				sg.Dirty = true
				for _, m := range ms {
					m.Group = sid
					sg.members[m.Last.Key] = m
					if err := putJSON(mb, groupKey(name, m.Last.Key), m); err != nil {
						return err
					}
				}
				if err := putJSON(gb, groupKey(name, sid), sg); err != nil {
					return err
				}
				if err := gb.Delete(groupKey(name, id)); err != nil {
					return err
				}
				delete(groups, id)
				res.folded++
				continue
			}
			n, err := notify.Normalize(g.notification(now, window), now)
			if err != nil {
				return err
			}
			added, fns, err := o.addTx(tx, n, []string{name}, now)
			if err != nil {
				return err
			}
			res.added = append(res.added, added...)
			apply = append(apply, fns...)
			g.Opened, g.LastSent, g.Dirty = firing > 0, now, false
			if firing == 0 {
				if err := o.dropGroup(gb, mb, name, id, g, ms); err != nil {
					return err
				}
				continue
			}
			for _, m := range ms[firing:] {
				delete(g.members, m.Last.Key)
				delete(o.members[name], m.Last.Key)
				if err := mb.Delete(groupKey(name, m.Last.Key)); err != nil {
					return err
				}
			}
			if err := putJSON(gb, groupKey(name, id), g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Memory may be ahead of the file: the file is the truth.
		o.reloadLocked(now)
		return now.Add(time.Second), flushResult{}, err
	}
	o.applyAdded(res.added, apply)
	return next, res, nil
}

// dropGroup forgets group id and its members ms.
func (o *store) dropGroup(gb, mb *bolt.Bucket, name, id string, g *groupState, ms []*memberState) error {
	for _, m := range ms {
		if o.members[name][m.Last.Key] == m {
			delete(o.members[name], m.Last.Key)
		}
		if err := mb.Delete(groupKey(name, m.Last.Key)); err != nil {
			return err
		}
	}
	delete(o.groups[name], id)
	return gb.Delete(groupKey(name, id))
}

// groupsPending returns how many groups notifier has and how many check
// incidents they hold.
func (o *store) groupsPending(name string) (groups, members int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.groups[name]), len(o.members[name])
}

// loadGroups reads notifier name's groups and members from tx into memory,
// replacing what is there. Unreadable records and members of no group are
// skipped.
func (o *store) loadGroups(tx *bolt.Tx, name string) error {
	groups, members := map[string]*groupState{}, map[string]*memberState{}
	prefix := []byte(name + "\x00")
	c := tx.Bucket(bucketGroups).Cursor()
	for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
		var g groupState
		if json.Unmarshal(v, &g) != nil {
			continue
		}
		g.members = map[string]*memberState{}
		groups[string(k[len(prefix):])] = &g
	}
	c = tx.Bucket(bucketMembers).Cursor()
	for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
		var m memberState
		if json.Unmarshal(v, &m) != nil || groups[m.Group] == nil {
			continue
		}
		key := string(k[len(prefix):])
		groups[m.Group].members[key] = &m
		members[key] = &m
	}
	o.groups[name], o.members[name] = groups, members
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}
