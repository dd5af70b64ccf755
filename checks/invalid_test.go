package checks

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err from the loader's output")

// TestInvalidConfigs loads every fixture under testdata/invalid — a NAME.yaml
// file or a NAME/ directory — and compares the error text with NAME.err.
// Run with -update to regenerate the .err files, then read every changed one:
// a golden file that captures a wrong message is a bug.
func TestInvalidConfigs(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name, isYAML := strings.CutSuffix(e.Name(), ".yaml")
		if !e.IsDir() && !isYAML {
			continue
		}
		n++
		path := filepath.Join("testdata/invalid", e.Name())
		golden := filepath.Join("testdata/invalid", name+".err")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load([]string{path}, mapEnv(fixtureEnv))
			if err == nil {
				t.Fatalf("Load(%s) succeeded with %d checks, want an error", path, len(cfg.Checks))
			}
			if cfg != nil {
				t.Errorf("Load returned a config alongside an error")
			}
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test -run TestInvalidConfigs -update to create it)", rerr)
			}
			if got != string(want) {
				t.Errorf("Load(%s) error:\ngot:\n%swant:\n%s", path, got, want)
			}
			checkErrorShape(t, err, path)
		})
	}
	if n < 30 {
		t.Errorf("found %d fixtures under testdata/invalid, want at least 30", n)
	}
}

// checkErrorShape asserts the contract of a Load error: every line is one
// *Error, in order, and each names a file under prefix.
func checkErrorShape(t *testing.T, err error, prefix string) {
	t.Helper()
	var target *Error
	if !errors.As(err, &target) {
		t.Errorf("errors.As(err, *Error) = false")
	}
	lines := strings.Split(err.Error(), "\n")
	list := Errors(err)
	if len(list) != len(lines) {
		t.Fatalf("Errors() returned %d errors for %d lines", len(list), len(lines))
	}
	for i, e := range list {
		if e.Error() != lines[i] {
			t.Errorf("Errors()[%d] = %q, line %d = %q", i, e.Error(), i, lines[i])
		}
		if !strings.HasPrefix(e.Pos.File, prefix) {
			t.Errorf("error %q names file %q, want one under %q", e.Error(), e.Pos.File, prefix)
		}
	}
	for i := 1; i < len(list); i++ {
		a, b := list[i-1].Pos, list[i].Pos
		if a.File == b.File && (a.Line > b.Line || a.Line == b.Line && a.Col > b.Col) {
			t.Errorf("errors out of file order: %s before %s", a, b)
		}
	}
}
