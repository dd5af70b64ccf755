// Package atomicfile replaces files so that a crash at any point leaves
// either the old content or the new, never a mix or an empty file: the
// agent's spool and the evaluator's state files are all written through it.
// It imports only the standard library.
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// tempMark is in the name of every temporary file this package makes, so
// that a directory's owner can remove what a crash left behind (IsTemp).
const tempMark = ".atomic-"

// WriteFile replaces path with data: a temporary file in the same
// directory, synced, renamed over path, then the directory synced.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is WriteFile for content that write streams, through a buffer,
// instead of one slice held in memory. When write fails, path is left as
// it was and the error is returned.
func Write(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMark+"*")
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(tmp)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		// Without the sync, a power cut after the rename can leave an
		// empty or partial file under the final name on some filesystems.
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		// Best effort: some file systems cannot sync a directory. Without
		// it, the rename itself may not survive a power cut.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// IsTemp reports whether name (a base name) is a temporary file of this
// package, left behind by a crash between its creation and its rename.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMark)
}
