package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new content")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new content" {
		t.Fatalf("content %q", got)
	}

	// A writer that fails half way leaves the old file and no temporary.
	boom := errors.New("disk full")
	err := Write(path, func(w io.Writer) error {
		if _, err := w.Write([]byte("half")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the writer's", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new content" {
		t.Fatalf("after a failed write the content is %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
}

func TestWriteIntoAReadOnlyDirectoryFails(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if err := WriteFile(filepath.Join(dir, "f"), []byte("x")); err == nil {
		t.Fatal("no error writing into a read-only directory")
	}
}

func TestIsTempNamesWhatACrashLeaves(t *testing.T) {
	dir := t.TempDir()
	tmp, err := os.CreateTemp(dir, ".state.json"+tempMark+"*")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if !IsTemp(filepath.Base(tmp.Name())) {
		t.Errorf("%s is not recognised", tmp.Name())
	}
	for _, name := range []string{"state.json", ".hidden", "000001.batch", "x.atomic-1"} {
		if IsTemp(name) {
			t.Errorf("%s taken for a temporary", name)
		}
	}
}
