// Package nab scores anomaly detections the way the Numenta Anomaly
// Benchmark (NAB) does, written from its published rules: labelled
// windows, a probationary period that is not scored, the scaled sigmoid
// that rewards early detections and forgives false alarms soon after a
// window, the three application profiles, the normalisation between the
// null and the perfect detector, and the search for the best threshold.
//
// It reads NAB-format corpora and results from an fs.FS and writes results
// to an io.Writer: it opens no file and imports nothing of Outpost's, so
// `outpost-bench nab` and anyone else can score with it.
package nab

import (
	"fmt"
	"math"
	"time"
)

// Profile is an application profile: what a caught window earns, what a
// missed one costs and what a false alarm costs, before the sigmoid.
type Profile struct {
	Name string
	// TP is A_TP: a detection at a window's first row earns exactly TP.
	TP float64
	// FP is A_FP: a false alarm far from any window costs FP.
	FP float64
	// FN is A_FN: a window with no detection costs FN.
	FN float64
}

// NAB's three profiles, with the names its results files use.
var (
	Standard = Profile{Name: "standard", TP: 1, FP: 0.11, FN: 1}
	LowFP    = Profile{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1}
	LowFN    = Profile{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2}
	Profiles = []Profile{Standard, LowFP, LowFN}
)

// Sigmoid is NAB's scaled sigmoid σ(y) = 2/(1+e^(5y)) − 1 of a position y:
// −1 at a window's first row, 0 just past its last, and beyond it the
// distance past the window in window lengths. It is about 0.987 at −1 and
// −0.987 at 1; from y = 3 on it is exactly −1, as in NAB.
func Sigmoid(y float64) float64 {
	if y >= 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// maxTP is σ(−1): a true positive's sigmoid is divided by it, so that a
// detection at a window's first row earns exactly A_TP.
var maxTP = Sigmoid(-1)

// Probation is how many leading rows of a file of n rows are not scored:
// 15% of them, at most 750 (NAB's min(floor(0.15 n), 0.15 × 5000)).
func Probation(n int) int {
	return int(math.Min(math.Floor(0.15*float64(n)), 0.15*5000))
}

// Window is one labelled anomaly window, both ends included.
type Window struct {
	Start, End time.Time
}

// Series is one file of a corpus: its rows and its labelled windows.
type Series struct {
	// Name is the file's path below data/, such as "realTraffic/speed_6005.csv".
	Name string
	// Stamps are the timestamps as written in the file; Times the same parsed.
	Stamps []string
	Times  []time.Time
	Values []float64
	// Windows are the file's anomaly windows, in order, not overlapping.
	Windows []Window

	// What scoring needs, set by prepare: per row, the window it lies in
	// (−1 outside) and its unweighted score, σ(y)/σ(−1) inside a window
	// and σ(y) (negative) outside; per window, its first and last row.
	win    []int
	weight []float64
	lo, hi []int
}

// prepare places the windows on the rows: a window spans the rows whose
// time lies within it (NAB's windows start and end on rows exactly).
func (s *Series) prepare() error {
	if s.win != nil {
		return nil
	}
	n := len(s.Times)
	s.lo, s.hi = make([]int, len(s.Windows)), make([]int, len(s.Windows))
	next := 0
	for k, w := range s.Windows {
		if w.End.Before(w.Start) {
			return fmt.Errorf("%s: window %d ends (%s) before it starts (%s)", s.Name, k+1, w.End.Format(stampLayout), w.Start.Format(stampLayout))
		}
		lo := next
		for lo < n && s.Times[lo].Before(w.Start) {
			lo++
		}
		hi := lo - 1
		for hi+1 < n && !s.Times[hi+1].After(w.End) {
			hi++
		}
		if hi < lo {
			return fmt.Errorf("%s: window %d [%s, %s] holds no row (or overlaps the one before it)", s.Name, k+1, w.Start.Format(stampLayout), w.End.Format(stampLayout))
		}
		if k > 0 && !w.Start.After(s.Windows[k-1].End) {
			return fmt.Errorf("%s: window %d starts at %s, before window %d ends", s.Name, k+1, w.Start.Format(stampLayout), k)
		}
		s.lo[k], s.hi[k], next = lo, hi, hi+1
	}
	win, weight := make([]int, n), make([]float64, n)
	k, prev := 0, -1 // the next window, and the last one passed
	for i := range n {
		switch {
		case k < len(s.lo) && i >= s.lo[k]:
			// Inside window k: y runs from −1 at its first row to
			// −1/width at its last (NAB's −(hi − i + 1)/width).
			width := float64(s.hi[k] - s.lo[k] + 1)
			win[i], weight[i] = k, Sigmoid(-float64(s.hi[k]-i+1)/width)/maxTP
			if i == s.hi[k] {
				prev, k = k, k+1
			}
		case prev < 0:
			// Before the first window: as far as a false alarm can be.
			win[i], weight[i] = -1, -1
		default:
			// After window prev: rows past its end over its width − 1,
			// as NAB measures it; a one-row window counts as far.
			y := 3.0
			if span := float64(s.hi[prev] - s.lo[prev]); span > 0 {
				y = float64(i-s.hi[prev]) / span
			}
			win[i], weight[i] = -1, Sigmoid(y)
		}
	}
	s.win, s.weight = win, weight
	return nil
}

// FileScore is how one file scored under one set of detections.
type FileScore struct {
	Name string
	// Rows in the file, and Scored of them after the probationary period.
	Rows, Scored int
	// Span is the time the scored rows cover, first to last.
	Span time.Duration
	// Windows is how many windows are scored (those with a row after the
	// probationary period), Caught how many of them hold a detection;
	// Labelled counts every window, the perfect detector's due.
	Windows, Caught, Labelled int
	// Detections in the scored rows, and FalseAlarms of them outside
	// every window.
	Detections, FalseAlarms int
	// Raw is the file's score per profile, in the order given to Score.
	Raw []float64
	// First is, per window, the row of its first detection (−1: missed,
	// or a window not scored).
	First []int
}

// Score scores one file's detections (one per row) under each profile.
func (s *Series) Score(detected []bool, profiles []Profile) (FileScore, error) {
	if len(detected) != len(s.Times) {
		return FileScore{}, fmt.Errorf("%s: %d detections for %d rows", s.Name, len(detected), len(s.Times))
	}
	if err := s.prepare(); err != nil {
		return FileScore{}, err
	}
	n := len(s.Times)
	start := Probation(n)
	f := FileScore{Name: s.Name, Rows: n, Scored: n - start, Labelled: len(s.Windows), First: make([]int, len(s.Windows)), Raw: make([]float64, len(profiles))}
	if start < n {
		f.Span = s.Times[n-1].Sub(s.Times[start])
	}
	for k := range f.First {
		f.First[k] = -1
	}
	fpSum := 0.0
	for i := start; i < n; i++ {
		if !detected[i] {
			continue
		}
		f.Detections++
		if k := s.win[i]; k >= 0 {
			if f.First[k] < 0 {
				f.First[k] = i // only the first detection in a window counts
			}
			continue
		}
		f.FalseAlarms++
		fpSum += s.weight[i]
	}
	for p, prof := range profiles {
		f.Raw[p] = prof.FP * fpSum
	}
	for k := range s.Windows {
		if s.hi[k] < start {
			continue // wholly in the probationary period: not scored
		}
		f.Windows++
		if i := f.First[k]; i >= 0 {
			f.Caught++
			for p, prof := range profiles {
				f.Raw[p] += prof.TP * s.weight[i]
			}
			continue
		}
		for p, prof := range profiles {
			f.Raw[p] -= prof.FN
		}
	}
	return f, nil
}

// Total is a corpus' score under one profile.
type Total struct {
	Profile Profile
	// Raw is the sum of the files' scores; Null what a detector that never
	// fires scores (−A_FN per scored window); Perfect what one that fires
	// at the first row of every window scores (A_TP per labelled window,
	// as NAB counts it).
	Raw, Null, Perfect float64
	// Normalised is 100 × (Raw − Null) / (Perfect − Null): 0 for the null
	// detector, 100 for the perfect one.
	Normalised float64
}

// Report is a corpus' score.
type Report struct {
	Files  []FileScore
	Totals []Total
	// Sums over the files.
	Windows, Caught, Labelled, Detections, FalseAlarms int
	// Weeks is the scored time of every file added up, in weeks.
	Weeks float64
}

// FalseAlarmsPerWeek is the false alarms per series-week of scored time.
func (r *Report) FalseAlarmsPerWeek() float64 {
	if r.Weeks == 0 {
		return 0
	}
	return float64(r.FalseAlarms) / r.Weeks
}

const week = 7 * 24 * time.Hour

// Score scores a corpus: detected[i] are the detections of series[i], one
// per row.
func Score(series []*Series, detected [][]bool, profiles []Profile) (*Report, error) {
	if len(detected) != len(series) {
		return nil, fmt.Errorf("nab: detections for %d files, %d files", len(detected), len(series))
	}
	r := &Report{Totals: make([]Total, len(profiles))}
	for p, prof := range profiles {
		r.Totals[p].Profile = prof
	}
	for i, s := range series {
		f, err := s.Score(detected[i], profiles)
		if err != nil {
			return nil, err
		}
		r.Files = append(r.Files, f)
		r.Windows += f.Windows
		r.Caught += f.Caught
		r.Labelled += f.Labelled
		r.Detections += f.Detections
		r.FalseAlarms += f.FalseAlarms
		r.Weeks += float64(f.Span) / float64(week)
		for p, prof := range profiles {
			t := &r.Totals[p]
			t.Raw += f.Raw[p]
			t.Null -= prof.FN * float64(f.Windows)
			t.Perfect += prof.TP * float64(f.Labelled)
		}
	}
	for p := range r.Totals {
		r.Totals[p].Normalised = normalise(r.Totals[p].Raw, r.Totals[p].Null, r.Totals[p].Perfect)
	}
	return r, nil
}

func normalise(raw, null, perfect float64) float64 {
	if perfect == null {
		return 0 // no window anywhere: nothing to be good at
	}
	return 100 * (raw - null) / (perfect - null)
}

// Detect turns anomaly scores into detections: a score at or above the
// threshold is a detection.
func Detect(scores []float64, threshold float64) []bool {
	d := make([]bool, len(scores))
	for i, v := range scores {
		d[i] = v >= threshold
	}
	return d
}
