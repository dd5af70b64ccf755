package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// written makes a store file of n records in bucket a, closed, and
// returns its path, its size and how far its pages reach.
func written(t *testing.T, n int) (path string, size, reach int64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Buckets: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s.Put("a", fmt.Sprintf("check-%04d", i), bytes.Repeat([]byte{'x'}, 300))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error { reach = tx.Size(); return nil })
	db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, fi.Size(), reach
}

// A file cut short, as a crash of the disk or the machine can leave it, is
// moved aside with a loud error naming it and what is lost, and the store
// starts empty: never a panic, never a refusal to start.
func TestCutShortFileIsSetAside(t *testing.T) {
	src, size, reach := written(t, 1000)
	t.Logf("file %d bytes, pages reach %d", size, reach)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{1, 100, 4096, 4096 + 100, 2 * 4096, 3*4096 + 7, reach / 2, reach - 4096, reach - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			s, err := Open(path, Options{Buckets: []string{"a"}, What: "incident state", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Open = %v, want a fresh start", err)
			}
			defer s.Close()
			aside := s.SetAside()
			if !asideName.MatchString(aside) || filepath.Dir(aside) != filepath.Dir(path) {
				t.Fatalf("SetAside = %q, want state.db.corrupt-YYYYMMDDTHHMMSSZ beside it", aside)
			}
			if got, err := os.ReadFile(aside); err != nil || int64(len(got)) != cut {
				t.Fatalf("the damaged file was not kept: %d bytes, %v", len(got), err)
			}
			log := logs.String()
			for _, want := range []string{"level=ERROR", path, aside, "incident state"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if r := records(t, s, "a"); len(r) != 0 {
				t.Fatalf("%d records in the fresh store", len(r))
			}
			s.Put("a", "k", []byte("v"))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// bbolt grows the file ahead of its pages: a cut there loses nothing.
	if size > reach {
		t.Run("beyond the pages", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			os.WriteFile(path, data[:reach], 0o600)
			s := open(t, path, nil)
			if s.SetAside() != "" || len(records(t, s, "a")) != 1000 {
				t.Fatalf("set aside %q, %d records", s.SetAside(), len(records(t, s, "a")))
			}
		})
	}
}

func TestDamagedFileIsSetAside(t *testing.T) {
	src, _, reach := written(t, 1000)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func([]byte) []byte{
		"not a bbolt file": func([]byte) []byte { return bytes.Repeat([]byte("garbage "), 4096) },
		"both meta pages zeroed": func(b []byte) []byte {
			b = bytes.Clone(b)
			clear(b[:2*4096])
			return b
		},
		"data pages zeroed": func(b []byte) []byte {
			b = bytes.Clone(b)
			clear(b[2*4096 : reach])
			return b
		},
	}
	for name, damage := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			os.WriteFile(path, damage(data), 0o600)
			s := open(t, path, nil)
			if s.SetAside() == "" {
				t.Fatal("not set aside")
			}
			if _, err := os.Stat(s.SetAside()); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("a second time", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.db")
		for i := 1; i <= 2; i++ {
			os.WriteFile(path, []byte("garbage"), 0o600)
			s, err := Open(path, Options{Buckets: []string{"a"}})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
		// Both kept: the second in the same second gets a suffix.
		kept, _ := filepath.Glob(filepath.Join(dir, "state.db.corrupt-*"))
		if len(kept) != 2 {
			t.Errorf("set aside: %v, want two files", kept)
		}
	})
}

// asideName is the name MoveAside gives.
var asideName = regexp.MustCompile(`/state\.db\.corrupt-\d{8}T\d{6}Z(-\d+)?$`)

// An empty file is a store that lost what it held (a store's meta pages
// are written when it is created): it is set aside like any damage, not
// taken for a new store in silence.
func TestEmptyFileIsSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	os.WriteFile(path, nil, 0o600)
	if s := open(t, path, nil); !asideName.MatchString(s.SetAside()) {
		t.Fatalf("set aside: %q", s.SetAside())
	}
}

// A file another process holds is an error, not corruption: it stays.
func TestFileInUseIsNotSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open(t, path, nil)
	_, err := Open(path, Options{Buckets: []string{"a"}, LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Open = %v, want ErrInUse", err)
	}
	if kept, _ := filepath.Glob(path + ".corrupt*"); len(kept) != 0 {
		t.Fatalf("a held file was set aside: %v", kept)
	}
}

// Records survive a reopen.
func TestReopenLoadsRecords(t *testing.T) {
	path, _, _ := written(t, 10)
	s := open(t, path, nil)
	if r := records(t, s, "a"); len(r) != 10 || len(r["check-0003"]) != 300 {
		t.Fatalf("%d records", len(r))
	}
}
