// Package ratelog bounds how often a repeating log line is written, so that
// a failure storm costs a line every so often, not a line per failure. It is
// shared by the agent and the evaluator and imports only the standard
// library.
package ratelog

import (
	"sync"
	"time"
)

// Limiter lets a repeating log line through at most once per Every and
// counts the lines it held back. The zero value with Every set is ready to
// use; it is safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log at now and, if so, how many lines were held
// back since the last one.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Every {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed, l.last = l.suppressed, 0, now
	return true, suppressed
}

// Keyed is a Limiter per key, for lines that repeat per region, outcome or
// notifier. Keys must come from a bounded set.
type Keyed struct {
	every time.Duration

	mu   sync.Mutex
	keys map[string]*Limiter
}

// NewKeyed returns limiters that let each key's line through once per every.
func NewKeyed(every time.Duration) *Keyed {
	return &Keyed{every: every, keys: map[string]*Limiter{}}
}

// Allow reports whether a line for key may be logged at now and, if so,
// how many were held back since the last one.
func (l *Keyed) Allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	lim := l.keys[key]
	if lim == nil {
		lim = &Limiter{Every: l.every}
		l.keys[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow(now)
}
