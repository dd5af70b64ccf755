// Package state keeps small keyed records durably in one bbolt file: named
// buckets of key → value, where a change costs what it changed, never a
// rewrite of everything.
//
// Put and Delete only queue a change, coalesced by key (the last value
// wins), and return at once: they do no I/O and wait on no disk. One writer
// goroutine commits what is queued in one bbolt transaction, one fsync;
// while it commits, new changes gather for the next commit, so writers that
// arrive together share an fsync (group commit). A caller that must not
// acknowledge anything before its change is on disk calls Sync, which
// returns once everything queued before the call is durable.
//
// A file bbolt cannot read (truncated, damaged) is moved aside at Open with
// an ERROR log, and the store starts empty: a damaged file never keeps its
// owner from starting. The package imports only the standard library and
// bbolt.
package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults of Options.
const (
	DefaultLockTimeout  = time.Second
	DefaultCloseTimeout = 3 * time.Second
	DefaultRetryEvery   = time.Second
)

// Errors callers branch on.
var (
	// ErrClosed: the store is closed; the change was not queued.
	ErrClosed = errors.New("state store closed")
	// ErrNoBucket: the bucket was not named in Options.Buckets.
	ErrNoBucket = errors.New("no such bucket")
	// ErrBadRecord: an empty or oversized key, or an oversized value,
	// which bbolt would refuse; refused at once, so that one bad record
	// cannot fail the commits of every other.
	ErrBadRecord = errors.New("bad record")
)

// Options configure a Store. Every field but Buckets is optional.
type Options struct {
	// Buckets are the buckets the store holds, created at Open if missing.
	Buckets []string
	// What the file holds, in words, for the log line when it must be set
	// aside: "incident state and heartbeat pings".
	What string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// LockTimeout bounds the wait for another process that holds the
	// file; DefaultLockTimeout when zero.
	LockTimeout time.Duration
	// CloseTimeout bounds how long Close waits for queued changes to
	// reach the disk; DefaultCloseTimeout when zero.
	CloseTimeout time.Duration
	// RetryEvery is how long after a failed commit the writer tries
	// again; DefaultRetryEvery when zero.
	RetryEvery time.Duration
	// OnCommit, when set, is called by the writer after every commit
	// with what it wrote. It must not call the store.
	OnCommit func(Commit)
	// BeforeCommit, when set, runs in the writer before every commit; an
	// error fails the commit as a disk's would. It is for fault
	// injection in tests.
	BeforeCommit func() error
	// NoRetry names buckets whose changes a failed commit drops instead
	// of queueing again: records whose writers Sync and, when that fails,
	// act as if the change never happened (a refused request), so that
	// it must not reach the disk later.
	NoRetry []string
}

// Commit describes one commit: one bbolt transaction, one fsync.
type Commit struct {
	// Records is the number of puts and deletes written.
	Records int
	// Bytes is the sum of their keys' and values' lengths.
	Bytes int
	// Pages is the number of pages bbolt wrote, meta page included.
	Pages int64
	// Err is why the commit failed, nil when it is durable.
	Err error
}

// Stats are a store's totals since Open.
type Stats struct {
	// Commits counts transactions (fsyncs), failed ones included.
	Commits int64
	// Failed counts the commits that failed.
	Failed int64
	// Records and Bytes sum the Commit fields of the commits that
	// succeeded.
	Records, Bytes int64
	// Queued is the number of changes waiting for a commit now.
	Queued int
}

// Store is a set of buckets of records in one bbolt file. Its methods are
// safe for concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	opts     Options
	buckets  map[string]bool
	noRetry  map[string]bool
	setAside string

	mu      sync.Mutex
	pending map[recordKey]change // queued, not yet being written
	// gathering is the commit pending's changes go out in, writing the
	// one under way, if any.
	gathering, writing *group
	closed             bool
	stats              Stats // totals; Queued is filled in by Stats

	wake   chan struct{} // capacity 1: something was queued
	quit   chan struct{} // closed by Close
	exited chan struct{} // closed when the writer returns

	// beforeWrite, set by tests, runs in the writer before each
	// transaction; an error fails the commit.
	beforeWrite func() error
}

type recordKey struct{ bucket, key string }

// change is a queued put, or a delete when del is set.
type change struct {
	value []byte
	del   bool
}

// group is the fate of the changes committed together: done is closed
// once err says how it went.
type group struct {
	done chan struct{}
	err  error
}

func newGroup() *group { return &group{done: make(chan struct{})} }

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// SetAside returns where Open moved a file it could not read, or "".
func (s *Store) SetAside() string { return s.setAside }

// Stats returns the store's totals.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.pending)
	return st
}

// ForEach calls fn for every record of bucket, in key order, until fn
// returns an error, which ForEach returns. value is valid only during the
// call. Changes queued and not yet committed are not seen.
func (s *Store) ForEach(bucket string, fn func(key string, value []byte) error) error {
	if !s.buckets[bucket] {
		return fmt.Errorf("state: %w: %q", ErrNoBucket, bucket)
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			if v == nil {
				return nil // a nested bucket: not a record
			}
			return fn(string(k), v)
		})
	})
}

// Put queues value as key's record in bucket. It does no I/O; the store
// keeps value, which the caller must not change afterwards.
func (s *Store) Put(bucket, key string, value []byte) error {
	return s.queue(recordKey{bucket, key}, change{value: value})
}

// Delete queues the removal of key's record from bucket. It does no I/O.
func (s *Store) Delete(bucket, key string) error {
	return s.queue(recordKey{bucket, key}, change{del: true})
}

// PutSync puts value as key's record in bucket and returns once it is
// durable, or the error of the commit that failed to write it, or ctx's
// error. Unlike Put then Sync, it learns of a failed commit even in a
// NoRetry bucket, whose failed changes are dropped: Sync, finding nothing
// queued, would not wait for them.
func (s *Store) PutSync(ctx context.Context, bucket, key string, value []byte) error {
	g, err := s.queueIn(recordKey{bucket, key}, change{value: value})
	if err != nil {
		return err
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) queue(k recordKey, c change) error {
	_, err := s.queueIn(k, c)
	return err
}

// queueIn queues c and returns the group that will commit it.
func (s *Store) queueIn(k recordKey, c change) (*group, error) {
	if !s.buckets[k.bucket] {
		return nil, fmt.Errorf("state: %w: %q", ErrNoBucket, k.bucket)
	}
	if len(k.key) == 0 || len(k.key) > bolt.MaxKeySize || len(c.value) > bolt.MaxValueSize {
		return nil, fmt.Errorf("state: %w: key of %d bytes, value of %d", ErrBadRecord, len(k.key), len(c.value))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.pending[k] = c
	g := s.gathering
	s.mu.Unlock()
	s.kick()
	return g, nil
}

func (s *Store) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Sync returns nil once every change queued before the call is durable,
// the error of the commit that failed to write them, or ctx's error. Calls
// at the same time share commits. The changes of a NoRetry bucket that a
// failed commit dropped before the call are not waited for: their writers
// learn of the failure through PutSync.
func (s *Store) Sync(ctx context.Context) error {
	s.mu.Lock()
	var g *group
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case len(s.pending) > 0:
		g = s.gathering
	case s.writing != nil:
		g = s.writing
	default:
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	s.kick()
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and closes the file. It waits at most
// Options.CloseTimeout: past that it returns an error saying how many
// changes may be lost and leaves the file to the process's exit. Changes
// queued after Close are refused with ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	t := time.NewTimer(s.opts.CloseTimeout)
	defer t.Stop()
	select {
	case <-s.exited:
	case <-t.C:
		s.mu.Lock()
		n := len(s.pending)
		if s.writing != nil {
			n++
		}
		s.mu.Unlock()
		return fmt.Errorf("state %s: a commit still under way after %s; up to %d queued changes may be lost", s.path, s.opts.CloseTimeout, n)
	}
	s.mu.Lock()
	n := len(s.pending)
	s.mu.Unlock()
	err := s.db.Close()
	if n > 0 {
		err = errors.Join(fmt.Errorf("state %s: %d changes not written: the last commit failed", s.path, n), err)
	}
	return err
}
