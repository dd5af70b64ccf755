// Package silence is ad-hoc maintenance made through the evaluator's API
// rather than its configuration: a silence names the checks (by id, label
// or region, as Alertmanager's matchers do) whose pages it holds back from
// its start to its end. It is pure: the evaluator stores silences, serves
// the API and asks Covers when it decides.
package silence

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what one silence, and all of them, may hold.
const (
	// MaxSilences bounds the silences an evaluator keeps, expired ones
	// included until they are forgotten.
	MaxSilences = 1000
	// MaxMatchers bounds the matchers of one silence.
	MaxMatchers = 20
	// MaxText bounds a matcher's name and value, the author and the
	// comment, in bytes.
	MaxText = 1024
	// MaxLength is the longest a silence may last.
	MaxLength = 90 * 24 * time.Hour
	// Keep is how long an expired silence stays listed.
	Keep = 24 * time.Hour
)

// The names a matcher may have besides a label's.
const (
	// NameCheck matches the check's id.
	NameCheck = "check"
	// NameRegion matches a region of the check: the silence holds back
	// pages only when every region involved matches.
	NameRegion = "region"
)

// Matcher selects checks by one property: NameCheck, NameRegion or a
// label name, equal to Value or, with Regex, matching it whole.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex,omitempty"`
	// IsEqual false negates it (Alertmanager's "!=" and "!~").
	IsEqual *bool `json:"isEqual,omitempty"`

	re *regexp.Regexp
}

// Silence holds back the pages of the checks it matches from StartsAt to
// EndsAt. The JSON form is Alertmanager's (API v2) for the fields they
// share.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	// UpdatedAt is when it was created or last expired.
	UpdatedAt time.Time `json:"updatedAt"`
}

// Check is what a silence matches against: a check's id, labels and the
// regions its incident involves.
type Check struct {
	ID      string
	Labels  map[string]string
	Regions []string
}

// NewID returns a random silence id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ValidID reports whether id has the form NewID gives.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Prepare validates s for storing at now: its matchers compile, its text
// is bounded, it ends after it starts and after now, and lasts at most
// MaxLength. A zero StartsAt means now. It returns every problem found.
func (s *Silence) Prepare(now time.Time) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.ID != "" && !ValidID(s.ID) {
		bad("id: want 32 hexadecimal digits")
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	switch {
	case s.EndsAt.IsZero():
		bad("endsAt is required")
	case !s.EndsAt.After(s.StartsAt):
		bad("endsAt %s is not after startsAt %s", s.EndsAt.UTC().Format(time.RFC3339), s.StartsAt.UTC().Format(time.RFC3339))
	case !s.EndsAt.After(now):
		bad("endsAt %s is in the past", s.EndsAt.UTC().Format(time.RFC3339))
	case s.EndsAt.Sub(s.StartsAt) > MaxLength:
		bad("a silence may last at most %s", MaxLength)
	}
	switch {
	case len(s.Matchers) == 0:
		bad("matchers: at least one is required (check, region or a label)")
	case len(s.Matchers) > MaxMatchers:
		bad("matchers: at most %d", MaxMatchers)
	}
	if err := s.Compile(); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		bad("createdBy is required")
	}
	if strings.TrimSpace(s.Comment) == "" {
		bad("comment is required: say why")
	}
	if !text(s.CreatedBy) || !text(s.Comment) {
		bad("createdBy and comment must be UTF-8 of at most %d bytes", MaxText)
	}
	s.UpdatedAt = now
	return errors.Join(errs...)
}

// Compile checks s's matchers and compiles their expressions: what a
// silence read back from storage needs before it matches anything.
func (s *Silence) Compile() error {
	var errs []error
	for i := range s.Matchers {
		m := &s.Matchers[i]
		switch {
		case m.Name == "":
			errs = append(errs, fmt.Errorf("matchers[%d].name is required", i))
		case !text(m.Name) || !text(m.Value):
			errs = append(errs, fmt.Errorf("matchers[%d]: name and value must be UTF-8 of at most %d bytes", i, MaxText))
		case m.IsRegex:
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				errs = append(errs, fmt.Errorf("matchers[%d].value: %v", i, err))
			}
			m.re = re
		}
	}
	return errors.Join(errs...)
}

func text(s string) bool { return len(s) <= MaxText && utf8.ValidString(s) }

// Active reports whether s holds back pages at now.
func (s *Silence) Active(now time.Time) bool {
	return !now.Before(s.StartsAt) && now.Before(s.EndsAt)
}

// State is Alertmanager's: "pending", "active" or "expired".
func (s *Silence) State(now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return "pending"
	case s.Active(now):
		return "active"
	}
	return "expired"
}

// Expire ends s at now, if it has not ended already.
func (s *Silence) Expire(now time.Time) {
	if now.Before(s.EndsAt) {
		s.EndsAt = now
		if now.Before(s.StartsAt) {
			s.StartsAt = now
		}
		s.UpdatedAt = now
	}
}

// CoversCheck reports whether s is active at now and its matchers other
// than region matchers match c: the check is silenced in the regions
// Restrict gives.
func (s *Silence) CoversCheck(c Check, now time.Time) bool {
	if !s.Active(now) {
		return false
	}
	for i := range s.Matchers {
		m := &s.Matchers[i]
		switch m.Name {
		case NameRegion:
		case NameCheck:
			if !m.matches(c.ID) {
				return false
			}
		default:
			if !m.matches(c.Labels[m.Name]) {
				return false
			}
		}
	}
	return true
}

// Covers reports whether s, active at now, holds back the pages of c: each
// matcher matches. A region matcher must match every region of c.Regions
// (a silence of one region does not hide an outage seen from others); with
// no regions involved, it matches none.
func (s *Silence) Covers(c Check, now time.Time) bool {
	if !s.Active(now) {
		return false
	}
	for i := range s.Matchers {
		m := &s.Matchers[i]
		switch m.Name {
		case NameCheck:
			if !m.matches(c.ID) {
				return false
			}
		case NameRegion:
			if len(c.Regions) == 0 || slices.ContainsFunc(c.Regions, func(r string) bool { return !m.matches(r) }) {
				return false
			}
		default:
			if !m.matches(c.Labels[m.Name]) {
				return false
			}
		}
	}
	return true
}

// matches reports whether v satisfies m.
func (m *Matcher) matches(v string) bool {
	var ok bool
	if m.IsRegex {
		// Prepare compiled it; a silence that skipped it matches nothing.
		ok = m.re != nil && m.re.MatchString(v)
	} else {
		ok = v == m.Value
	}
	if m.IsEqual != nil && !*m.IsEqual {
		return !ok
	}
	return ok
}

// Restrict returns the regions of regions that a region matcher of s
// selects (every one without such a matcher): the regions a maintenance
// window made of s covers.
func (s *Silence) Restrict(regions []string) []string {
	out := slices.Clone(regions)
	for i := range s.Matchers {
		m := &s.Matchers[i]
		if m.Name == NameRegion {
			out = slices.DeleteFunc(out, func(r string) bool { return !m.matches(r) })
		}
	}
	return out
}

// String describes s in one line for logs and the status page.
func (s *Silence) String() string {
	parts := make([]string, 0, len(s.Matchers))
	for _, m := range s.Matchers {
		op := "="
		switch {
		case m.IsRegex && m.IsEqual != nil && !*m.IsEqual:
			op = "!~"
		case m.IsRegex:
			op = "=~"
		case m.IsEqual != nil && !*m.IsEqual:
			op = "!="
		}
		parts = append(parts, fmt.Sprintf("%s%s%q", m.Name, op, m.Value))
	}
	return fmt.Sprintf("silence %s {%s} by %s until %s: %s", s.ID[:min(8, len(s.ID))], strings.Join(parts, ", "), s.CreatedBy,
		s.EndsAt.UTC().Format(time.RFC3339), s.Comment)
}
