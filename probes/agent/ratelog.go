package agent

import (
	"sync"
	"time"
)

// LogLimiter lets a repeating log line through at most once per Every and
// counts the lines it held back, so that a failure storm costs a line every
// so often, not a line per failure. The zero value with Every set is ready
// to use; it is safe for concurrent use.
type LogLimiter struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log at now and, if so, how many lines were held
// back since the last one.
func (l *LogLimiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.Every {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed, l.last = l.suppressed, 0, now
	return true, suppressed
}
