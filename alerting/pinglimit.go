package alerting

import (
	"net/netip"
	"sync"
	"time"
)

// Wrong credentials on the unauthenticated endpoints (/ping tokens,
// confirmation polls' signatures) are rate-limited per source: each
// source has a bucket of pingBurst wrong guesses that refills at one per
// pingRefill. Once it is empty, a wrong guess is answered 429 with
// Retry-After and counted. Only wrong guesses take from the bucket: a cron
// job that shares an address (a NAT, a CI runner pool) with someone
// guessing keeps its pings answered, since a right token is always
// served. Telling right from wrong costs a hash, which is all a refused
// guess costs the evaluator.
const (
	pingBurst  = 20
	pingRefill = 3 * time.Second // 20 per minute
	// maxPingSources bounds the buckets kept; when it is reached, full
	// buckets (sources idle long enough) are dropped first, then any.
	maxPingSources = 4096
)

// pingBucket is one source's allowance of wrong tokens.
type pingBucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// pingLimiter holds the buckets by source. It is safe for concurrent use;
// time is passed in.
type pingLimiter struct {
	mu      sync.Mutex
	buckets map[netip.Addr]*pingBucket
}

func newPingLimiter() *pingLimiter {
	return &pingLimiter{buckets: map[netip.Addr]*pingBucket{}}
}

// level refills b to now and returns its tokens.
func (b *pingBucket) level(now time.Time) float64 {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(pingBurst, b.tokens+float64(d)/float64(pingRefill))
		b.at = now
	}
	return b.tokens
}

// exhausted reports whether src has no wrong guess left at now, and if so
// how long until it has one. It changes nothing.
func (l *pingLimiter) exhausted(src netip.Addr, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil || b.level(now) >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.tokens) * float64(pingRefill))
}

// wrong takes one wrong guess from src's bucket at now.
func (l *pingLimiter) wrong(src netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxPingSources {
			l.evict(now)
		}
		b = &pingBucket{tokens: pingBurst, at: now}
		l.buckets[src] = b
	}
	b.level(now)
	b.tokens = max(b.tokens-1, 0)
}

// evict makes room for one bucket: it drops every full one, or, if none
// is, an arbitrary one (which then forgets its source's guesses: a bound
// on memory matters more than a perfect count under a spread-out attack).
func (l *pingLimiter) evict(now time.Time) {
	for src, b := range l.buckets {
		if b.level(now) >= pingBurst {
			delete(l.buckets, src)
		}
	}
	if len(l.buckets) < maxPingSources {
		return
	}
	for src := range l.buckets {
		delete(l.buckets, src)
		return
	}
}

// size is the number of buckets held.
func (l *pingLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
