package state

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// failureLogEvery bounds how often the writer logs commits that keep
// failing.
const failureLogEvery = time.Minute

// run is the writer: it commits what is queued whenever something is,
// until Close, and then once more.
func (s *Store) run() {
	defer close(s.exited)
	var retry <-chan time.Time
	var failures int     // commits failed in a row
	var logged time.Time // when the latest of them was logged
	for {
		select {
		case <-s.wake:
		case <-retry:
		case <-s.quit:
		}
		s.mu.Lock()
		closed := s.closed
		if len(s.pending) == 0 {
			s.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		batch, g := s.pending, s.gathering
		s.pending, s.gathering, s.writing = make(map[recordKey]change, len(batch)), newGroup(), g
		s.mu.Unlock()

		c := s.commit(batch)
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(c)
		}

		s.mu.Lock()
		s.stats.Commits++
		if c.Err != nil {
			s.stats.Failed++
		} else {
			s.stats.Records += int64(c.Records)
			s.stats.Bytes += int64(c.Bytes)
		}
		if c.Err != nil {
			// Back in the queue, behind anything newer for the same key.
			for k, ch := range batch {
				if _, newer := s.pending[k]; !newer && !s.noRetry[k.bucket] {
					s.pending[k] = ch
				}
			}
		}
		s.writing = nil
		g.err = c.Err
		close(g.done)
		s.mu.Unlock()
		if c.Err != nil {
			// Once a minute at most: a full disk fails every retry.
			if failures++; time.Since(logged) >= failureLogEvery {
				s.opts.Logger.Error("state not written; retrying", "path", s.path, "changes", len(batch), "failed_commits", failures, "err", c.Err)
				logged = time.Now()
			}
			if closed {
				return
			}
			retry = time.After(s.opts.RetryEvery)
		} else {
			if failures > 0 {
				s.opts.Logger.Info("state written again", "path", s.path, "failed_commits", failures)
			}
			failures, logged, retry = 0, time.Time{}, nil
		}
	}
}

// commit writes batch in one transaction, in key order.
func (s *Store) commit(batch map[recordKey]change) Commit {
	for _, hook := range []func() error{s.beforeWrite, s.opts.BeforeCommit} {
		if hook == nil {
			continue
		}
		if err := hook(); err != nil {
			return Commit{Err: fmt.Errorf("state %s: %w", s.path, err)}
		}
	}
	keys := slices.SortedFunc(maps.Keys(batch), func(a, b recordKey) int { return cmp.Or(cmp.Compare(a.bucket, b.bucket), cmp.Compare(a.key, b.key)) })
	var c Commit
	st := s.db.Stats()
	before := st.TxStats.GetWrite()
	c.Err = s.db.Update(func(tx *bolt.Tx) error {
		c.Records, c.Bytes = 0, 0
		for _, k := range keys {
			b := tx.Bucket([]byte(k.bucket))
			ch := batch[k]
			var err error
			if ch.del {
				err = b.Delete([]byte(k.key))
			} else {
				err = b.Put([]byte(k.key), ch.value)
			}
			if err != nil {
				return fmt.Errorf("%s %q: %w", k.bucket, k.key, err)
			}
			c.Records++
			c.Bytes += len(k.key) + len(ch.value)
		}
		return nil
	})
	if c.Err != nil {
		c.Err = fmt.Errorf("state %s: %w", s.path, c.Err)
	}
	st = s.db.Stats()
	c.Pages = st.TxStats.GetWrite() - before
	return c
}
