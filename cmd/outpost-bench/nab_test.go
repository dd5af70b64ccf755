package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/cmd/outpost-bench/nab"
)

// nabTestdata holds three files of ../shared/nab-tune (see its README).
const nabTestdata = "nab/testdata"

// TestNABBench runs `outpost-bench nab -out` on the three files in
// testdata and checks its arithmetic, not its score: the results files it
// wrote, scored again, give exactly the figures it printed; the per-file
// lines add up to the totals; every file's labels are its windows.
func TestNABBench(t *testing.T) {
	out := t.TempDir()
	var buf bytes.Buffer
	if err := dispatch(context.Background(), []string{"nab", "-data", nabTestdata, "-out", out}, &buf); err != nil {
		t.Fatal(err)
	}
	printed := buf.String()
	t.Log("\n" + printed)

	series, err := nab.Load(os.DirFS(nabTestdata))
	if err != nil {
		t.Fatal(err)
	}
	detected := make([][]bool, len(series))
	pages := 0
	for i, s := range series {
		p := filepath.Join(out, "outpost", filepath.FromSlash(filepath.Dir(s.Name)), "outpost_"+filepath.Base(s.Name))
		f, err := os.Open(p)
		if err != nil {
			t.Fatalf("no results file for %s: %v", s.Name, err)
		}
		scores, err := nab.ReadResults(f, s)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, v := range scores {
			if v != 0 && v != 1 {
				t.Fatalf("%s: anomaly_score %g, want 0 or 1", p, v)
			}
			if v == 1 {
				pages++
			}
		}
		detected[i] = nab.Detect(scores, 0.5)
	}
	if pages == 0 {
		t.Fatal("no detection in any file: the arithmetic below would prove little")
	}
	r, err := nab.Score(series, detected, nab.Profiles)
	if err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(printed, "\n")
	fields := func(prefix string) []string {
		t.Helper()
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == prefix {
				return f
			}
		}
		t.Fatalf("no line for %q in the output", prefix)
		return nil
	}
	// Per file: windows, caught, false alarms, per week, raw standard.
	var caught, alarms, windows int
	for _, f := range r.Files {
		got := fields(f.Name)
		want := []string{strconv.Itoa(f.Windows), strconv.Itoa(f.Caught), strconv.Itoa(f.FalseAlarms),
			fmt.Sprintf("%.2f", float64(f.FalseAlarms)/(float64(f.Span)/float64(7*24*time.Hour))), fmt.Sprintf("%.3f", f.Raw[0])}
		if !slices.Equal(got[4:9], want) {
			t.Errorf("%s: printed %v, re-scored from the results file %v", f.Name, got[4:9], want)
		}
		n := func(s string) int { v, _ := strconv.Atoi(s); return v }
		windows, caught, alarms = windows+n(got[4]), caught+n(got[5]), alarms+n(got[6])
	}
	total := fields("total")
	if want := []string{strconv.Itoa(windows), strconv.Itoa(caught), strconv.Itoa(alarms)}; !slices.Equal(total[3:6], want) {
		t.Errorf("total line %v: the files add up to windows, caught, false alarms %v", total, want)
	}
	if windows != r.Windows || caught != r.Caught || alarms != r.FalseAlarms {
		t.Errorf("files add up to %d windows, %d caught, %d false alarms; re-scored %d, %d, %d", windows, caught, alarms, r.Windows, r.Caught, r.FalseAlarms)
	}
	rawSum := 0.0
	for _, f := range r.Files {
		rawSum += f.Raw[0]
	}
	if math.Abs(rawSum-r.Totals[0].Raw) > 1e-9 {
		t.Errorf("files' standard scores add up to %g, total %g", rawSum, r.Totals[0].Raw)
	}
	// Per profile: raw, null, perfect, NAB score.
	for _, tot := range r.Totals {
		got := fields(tot.Profile.Name)
		want := []string{fmt.Sprintf("%.3f", tot.Raw), fmt.Sprintf("%.1f", tot.Null), fmt.Sprintf("%.1f", tot.Perfect), fmt.Sprintf("%.1f", tot.Normalised)}
		if !slices.Equal(got[4:8], want) {
			t.Errorf("%s: printed %v, re-scored from the results files %v", tot.Profile.Name, got[4:8], want)
		}
		if wantN := 100 * (tot.Raw - tot.Null) / (tot.Perfect - tot.Null); math.Abs(tot.Normalised-wantN) > 1e-9 {
			t.Errorf("%s: normalised %g, want %g", tot.Profile.Name, tot.Normalised, wantN)
		}
	}
	if !strings.Contains(printed, fmt.Sprintf("windows caught: %d of %d", r.Caught, r.Windows)) {
		t.Errorf("summary line missing or wrong")
	}
}

// TestNABReplay: a day of steady traffic every 5 minutes, then an
// eightfold jump for three rows and a fall to nothing for four: the replay
// pages once for each, on its first row (the default detectors judge each
// value by its surprise, with no rows to wait for), at the file's own
// timestamps, and never during the warm-up.
func TestNABReplay(t *testing.T) {
	s := &nab.Series{Name: "test/steady.csv"}
	start := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	n := 2 * 288
	for i := range n {
		v := 100 + float64(i%3) // ±1%
		switch {
		case i >= 400 && i < 403:
			v = 800
		case i >= 450 && i < 454:
			v = 0.5
		}
		ts := start.Add(time.Duration(i) * 5 * time.Minute)
		s.Times, s.Values = append(s.Times, ts), append(s.Values, v)
	}
	scores, step, err := replaySeries(s)
	if err != nil {
		t.Fatal(err)
	}
	var pages []int
	for i, v := range scores {
		if v == 1 {
			pages = append(pages, i)
		}
	}
	if step != 5*time.Minute || !slices.Equal(pages, []int{400, 450}) {
		t.Errorf("interval %s, pages at rows %v; want 5m0s and rows 400 (the spike's first row) and 450 (the drop's first)", step, pages)
	}
}

// TestNABBadCorpus: a directory that is not a NAB corpus is an error that
// names what is missing, not a usage error.
func TestNABBadCorpus(t *testing.T) {
	err := dispatch(context.Background(), []string{"nab", "-data", t.TempDir()}, &bytes.Buffer{})
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "windows.json") {
		t.Errorf("got %v, want an error naming windows.json", err)
	}
}

// TestNABHalves: -half A scores the 1st, 3rd, ... files by path and -half
// B the others, each file's line exactly as in the run on all of them, so
// that the tuning/check split of docs/config.md can be reproduced; any
// other value is a usage error.
func TestNABHalves(t *testing.T) {
	lines := func(args ...string) map[string]string {
		t.Helper()
		var buf bytes.Buffer
		if err := dispatch(context.Background(), append([]string{"nab", "-data", nabTestdata}, args...), &buf); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, l := range strings.Split(buf.String(), "\n") {
			if f := strings.Fields(l); len(f) > 0 && strings.HasSuffix(f[0], ".csv") {
				out[f[0]] = l
			}
		}
		return out
	}
	all, a, b := lines(), lines("-half", "A"), lines("-half", "b")
	names := slices.Sorted(maps.Keys(all))
	if len(names) != 3 {
		t.Fatalf("%d files in the full run, want the 3 of %s", len(names), nabTestdata)
	}
	for i, name := range names {
		half, other := a, b
		if i%2 == 1 {
			half, other = b, a
		}
		if _, ok := other[name]; ok {
			t.Errorf("%s (file %d) in the wrong half", name, i+1)
		}
		// The name column is padded to the longest name in the run.
		if got, want := strings.Fields(half[name]), strings.Fields(all[name]); !slices.Equal(got, want) {
			t.Errorf("%s: %q in its half, %q in the full run", name, half[name], all[name])
		}
	}
	if len(a)+len(b) != len(all) {
		t.Errorf("halves of %d and %d files, of %d", len(a), len(b), len(all))
	}
	err := dispatch(context.Background(), []string{"nab", "-data", nabTestdata, "-half", "C"}, &bytes.Buffer{})
	if !errors.Is(err, errUsage) {
		t.Errorf("-half C: %v, want a usage error", err)
	}
}
