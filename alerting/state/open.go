package state

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse: another process holds the file.
var ErrInUse = errors.New("in use by another process")

// Open opens the store at path, creating the file and opts.Buckets as
// needed, and starts its writer. A file that cannot be read as a store
// (cut short by a crash of the disk or the machine, damaged, not a bbolt
// file) is renamed with MoveAside (path + ".corrupt-" and a timestamp),
// an ERROR log names both paths and what is lost, and the store
// starts empty. A file another process holds is an error wrapping
// ErrInUse after opts.LockTimeout; so is a file that cannot be opened at
// all (permissions), which is left where it is.
func Open(path string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = DefaultRetryEvery
	}
	if opts.What == "" {
		opts.What = "every record"
	}
	db, setAside, err := OpenBolt(path, opts.LockTimeout, opts.Buckets, opts.Logger, opts.What)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:        db,
		path:      path,
		opts:      opts,
		buckets:   map[string]bool{},
		noRetry:   map[string]bool{},
		setAside:  setAside,
		pending:   map[recordKey]change{},
		gathering: newGroup(),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		exited:    make(chan struct{}),
	}
	for _, b := range opts.Buckets {
		s.buckets[b] = true
	}
	for _, b := range opts.NoRetry {
		s.noRetry[b] = true
	}
	go s.run()
	return s, nil
}

// OpenBolt opens the bbolt file at path as Open does, for a package that
// keeps its own bbolt file (the outbox): it reads every record once and
// creates buckets; a file that cannot be read as a bbolt file is moved
// aside (its new path is returned, and an ERROR on log names both paths
// and lost, what it held) and an empty one takes its place, so that one
// damaged file never keeps the process from starting. A file another
// process holds is an error wrapping ErrInUse after lockTimeout.
func OpenBolt(path string, lockTimeout time.Duration, buckets []string, log *slog.Logger, lost string) (db *bolt.DB, setAside string, err error) {
	opts := Options{LockTimeout: lockTimeout, Buckets: buckets}
	db, corrupt, err := openChecked(path, opts)
	if corrupt != nil {
		setAside, err = moveAside(path)
		if err != nil {
			return nil, "", fmt.Errorf("%s cannot be read (%v) and cannot be moved aside: %w", path, corrupt, err)
		}
		log.Error("file cannot be read; moved aside, starting without it",
			"path", path, "moved_to", setAside, "lost", lost, "err", corrupt)
		db, corrupt, err = openChecked(path, opts)
		if corrupt != nil {
			err = corrupt
		}
	}
	if err != nil {
		return nil, "", err
	}
	return db, setAside, nil
}

// openChecked opens path and reads every page a record lives on, creating
// the buckets. It returns the database, or why the file cannot be read as
// one (corrupt), or an error that says nothing of the file's content
// (locked, no permission).
//
// bbolt trusts its file: a damaged one can make it panic, and a file cut
// short makes it read past the end of its memory map, a fault the runtime
// turns into a crash unless the goroutine asked for a panic instead. So
// the work runs on a goroutine of its own with SetPanicOnFault, which
// recovers, and the file is checked to reach as far as its own meta page
// says before anything else is read.
func openChecked(path string, opts Options) (db *bolt.DB, corrupt, err error) {
	// bbolt would take an empty file for a new one and start afresh in
	// silence. A store is never empty once created (its meta pages are
	// written first), so an empty file is one that lost what it held.
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, errors.New("the file is empty: whatever it held is gone"), nil
	}
	type result struct {
		db           *bolt.DB
		corrupt, err error
	}
	ch := make(chan result, 1)
	go func() {
		debug.SetPanicOnFault(true)
		var file *os.File
		defer func() {
			if r := recover(); r != nil {
				if file != nil {
					file.Close() // releases the lock; the broken mapping stays until exit
				}
				ch <- result{corrupt: fmt.Errorf("bbolt: %v", r)}
			}
		}()
		db, err := bolt.Open(path, 0o600, &bolt.Options{
			Timeout: opts.LockTimeout,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				file = f
				return f, err
			},
		})
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			ch <- result{err: fmt.Errorf("state %s: %w", path, ErrInUse)}
			return
		case environmental(err):
			ch <- result{err: fmt.Errorf("opening state %s: %w", path, err)}
			return
		case err != nil: // bad meta pages, a file too small to be one...
			ch <- result{corrupt: err}
			return
		}
		if bad := check(db, path, opts.Buckets); bad != nil {
			db.Close()
			ch <- result{corrupt: bad}
			return
		}
		ch <- result{db: db}
	}()
	r := <-ch
	return r.db, r.corrupt, r.err
}

// environmental reports whether err comes from the system (permissions,
// no memory to map), not from what the file holds.
func environmental(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// check reads every record of db and creates the buckets missing.
func check(db *bolt.DB, path string, buckets []string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("file is %d bytes but its pages reach %d: cut short", fi.Size(), tx.Size())
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
	})
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("bucket %q: %w", name, err)
			}
		}
		return nil
	})
}

// walk visits every record of b and its nested buckets.
func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walk(nb)
			}
		}
		return nil
	})
}

// moveAside renames path to the first free path.corrupt, path.corrupt-2...
func moveAside(path string) (string, error) { return MoveAside(path, time.Now()) }

// MoveAside renames a damaged file at path to path + ".corrupt-" and now
// in UTC ("state.db.corrupt-20261207T134501Z", with "-2"... when that is
// taken), so that repeated damage never overwrites the evidence of an
// earlier one, and returns the new path.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		to := base
		if i > 1 {
			to = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		return to, os.Rename(path, to)
	}
}
