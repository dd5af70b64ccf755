package alerting

import (
	"sync"
	"time"
)

// rejectLogEvery is the most often one kind of refusal is logged per region.
const rejectLogEvery = 10 * time.Second

// logLimiter lets one log line per key through per interval and counts the
// lines it held back, so that a storm of bad batches costs a line every few
// seconds, not a line each. Keys must come from a bounded set.
type logLimiter struct {
	every time.Duration

	mu   sync.Mutex
	keys map[string]*limiterEntry
}

type limiterEntry struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, keys: map[string]*limiterEntry{}}
}

// allow reports whether a line for key may be logged at now and, if so,
// how many were held back since the last one.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	en := l.keys[key]
	if en == nil {
		en = &limiterEntry{}
		l.keys[key] = en
	} else if now.Sub(en.last) < l.every {
		en.suppressed++
		return false, 0
	}
	suppressed, en.suppressed, en.last = en.suppressed, 0, now
	return true, suppressed
}
