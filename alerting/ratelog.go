package alerting

import (
	"sync"
	"time"

	"github.com/outposthq/outpost/probes/agent"
)

// rejectLogEvery is the most often one kind of refusal is logged per region.
const rejectLogEvery = 10 * time.Second

// logLimiter is an agent.LogLimiter per key, for lines that repeat per
// region, outcome or notifier. Keys must come from a bounded set.
type logLimiter struct {
	every time.Duration

	mu   sync.Mutex
	keys map[string]*agent.LogLimiter
}

func newLogLimiter(every time.Duration) *logLimiter {
	return &logLimiter{every: every, keys: map[string]*agent.LogLimiter{}}
}

// allow reports whether a line for key may be logged at now and, if so,
// how many were held back since the last one.
func (l *logLimiter) allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	lim := l.keys[key]
	if lim == nil {
		lim = &agent.LogLimiter{Every: l.every}
		l.keys[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow(now)
}
