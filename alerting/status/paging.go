package status

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
)

// Bounds of a status answer. A configuration of at most FullMaxChecks
// checks gets the whole document by default, as it always has; a larger
// one gets a summary and one page of checks, the checks that are not OK
// first, so that an answer stays a few MB at most whatever the size of the
// configuration.
const (
	FullMaxChecks   = 200
	DefaultPerPage  = 100
	MaxPerPage      = 500
	maxPageQueryLen = 9 // digits of page and per_page
)

// Query is what a reader asked of /status.json or /status.
type Query struct {
	// Check, when set, asks for that one check alone.
	Check string
	// Page (from 1) and PerPage choose a page of checks; zero means the
	// default.
	Page, PerPage int
	// State keeps only the checks in that state ("PENDING" for those
	// without a verdict yet); empty keeps every check.
	State string
}

// Paged reports whether q asks for a page or a filter explicitly.
func (q Query) Paged() bool { return q.Page != 0 || q.PerPage != 0 || q.State != "" }

// ParseQuery reads ?check=, ?page=, ?per_page= and ?state=. A malformed
// value is an error naming it; per_page above MaxPerPage is MaxPerPage.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Check: v.Get("check")}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &q.Page}, {"per_page", &q.PerPage}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || len(s) > maxPageQueryLen {
			return Query{}, fmt.Errorf("%s=%.20q: want a whole number from 1", p.name, s)
		}
		*p.dst = n
	}
	q.PerPage = min(q.PerPage, MaxPerPage)
	switch st := v.Get("state"); st {
	case "", string(decide.StateOK), string(decide.StateDegraded), string(decide.StateDown), string(decide.StateUnknown), statePending:
		q.State = st
	default:
		return Query{}, fmt.Errorf("state=%.20q: want OK, DEGRADED, DOWN, UNKNOWN or PENDING", st)
	}
	return q, nil
}

// statePending names, in ?state= and Summary, checks without a verdict yet.
const statePending = "PENDING"

// Summary counts a configuration's checks, for an answer that lists only
// some of them.
type Summary struct {
	// Checks is how many checks the configuration has.
	Checks int `json:"checks"`
	// States counts the checks by state: OK, DEGRADED, DOWN, UNKNOWN and
	// PENDING (no verdict yet).
	States map[string]int `json:"states"`
	// Incidents counts the open incidents of every check.
	Incidents int `json:"open_incidents"`
}

// PageInfo says which checks an answer lists and how to ask for the rest.
type PageInfo struct {
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
	// Pages is how many pages Total checks make; Total is how many checks
	// match State.
	Pages int    `json:"pages"`
	Total int    `json:"total"`
	State string `json:"state,omitempty"`
	// Next and Prev are the query strings of the neighbouring pages,
	// absent at either end.
	Next string `json:"next,omitempty"`
	Prev string `json:"prev,omitempty"`
}

// stateOrder puts the checks that need a human first.
func stateOrder(s decide.CheckState) int {
	switch s {
	case decide.StateDown:
		return 0
	case decide.StateUnknown:
		return 1
	case decide.StateDegraded:
		return 2
	case decide.StateOK:
		return 4
	}
	return 3 // no verdict yet
}

func stateName(s decide.CheckState) string {
	if s == "" {
		return statePending
	}
	return string(s)
}

// Select chooses the checks of ov (a Status whose checks may lack their
// regions) that q asks for: those in q.State, not OK first and otherwise
// in configuration order, one page of them. It returns their indexes in
// ov.Checks, the summary of every check and the page.
func Select(ov Status, q Query) ([]int, Summary, PageInfo) {
	sum := Summary{Checks: len(ov.Checks), States: map[string]int{}}
	var idx []int
	for i, c := range ov.Checks {
		name := stateName(c.State)
		sum.States[name]++
		sum.Incidents += len(c.Incidents)
		if q.State == "" || q.State == name {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Compare(stateOrder(ov.Checks[a].State), stateOrder(ov.Checks[b].State))
	})
	pg := PageInfo{Page: max(q.Page, 1), PerPage: cmp.Or(q.PerPage, DefaultPerPage), Total: len(idx), State: q.State}
	pg.Pages = max(1, (pg.Total+pg.PerPage-1)/pg.PerPage)
	from := min((pg.Page-1)*pg.PerPage, pg.Total)
	to := min(from+pg.PerPage, pg.Total)
	link := func(page int) string {
		v := url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(pg.PerPage)}}
		if q.State != "" {
			v.Set("state", q.State)
		}
		return "?" + v.Encode()
	}
	if pg.Page < pg.Pages {
		pg.Next = link(pg.Page + 1)
	}
	if pg.Page > 1 {
		pg.Prev = link(min(pg.Page-1, pg.Pages))
	}
	return idx[from:to], sum, pg
}

// Paged is the answer to q for a large configuration: src.Overview with
// the full public status of the selected checks only, a Summary of all
// and the PageInfo.
func Paged(src Source, q Query) Status {
	ov := src.Overview()
	idx, sum, pg := Select(ov, q)
	ids := make([]string, len(idx))
	for i, j := range idx {
		ids[i] = ov.Checks[j].ID
	}
	s := ov
	s.Checks = src.PublicChecks(ids, ov.Time)
	s.Summary, s.Page = &sum, &pg
	return s
}

// One is the answer for one check (?check=ID): every region's liveness and
// the check's full public status, built for that check alone. ok is false
// if there is no such check.
func One(src Source, id string) (s Status, ok bool) {
	s = src.Overview()
	s.Checks = src.PublicChecks([]string{id}, s.Time)
	return s, len(s.Checks) == 1
}

// Recent hands out what produce last made if it is at most maxAge old on
// the caller's clock, and otherwise one new build shared by every caller
// that asks while it is being made. The zero Recent is ready to use.
type Recent struct {
	shared Shared
	mu     sync.Mutex
	at     time.Time
	body   []byte
}

// Get returns a body at most maxAge old at now.
func (r *Recent) Get(now time.Time, maxAge time.Duration, produce func() ([]byte, error)) ([]byte, error) {
	r.mu.Lock()
	if r.body != nil && now.Sub(r.at) < maxAge && !now.Before(r.at) {
		b := r.body
		r.mu.Unlock()
		return b, nil
	}
	r.mu.Unlock()
	return r.shared.Get(func() ([]byte, error) {
		b, err := produce()
		if err == nil {
			r.mu.Lock()
			r.at, r.body = now, b
			r.mu.Unlock()
		}
		return b, err
	})
}
