package nab

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var t0 = time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)

// minuteSeries is n rows a minute apart with windows over the given rows
// (first and last, both included).
func minuteSeries(n int, windows ...[2]int) *Series {
	s := &Series{Name: "test/x.csv"}
	for i := range n {
		t := t0.Add(time.Duration(i) * time.Minute)
		s.Times, s.Stamps, s.Values = append(s.Times, t), append(s.Stamps, t.Format(stampLayout)), append(s.Values, float64(i))
	}
	for _, w := range windows {
		s.Windows = append(s.Windows, Window{Start: s.Times[w[0]], End: s.Times[w[1]]})
	}
	return s
}

func at(n int, rows ...int) []bool {
	d := make([]bool, n)
	for _, i := range rows {
		d[i] = true
	}
	return d
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSigmoidAndProbation(t *testing.T) {
	for _, c := range []struct{ y, want float64 }{
		{-1, 0.9866142981514305}, {0, 0}, {1, -0.9866142981514303}, {2.999, -0.9999993851288645}, {3, -1}, {40, -1},
	} {
		if got := Sigmoid(c.y); !near(got, c.want) {
			t.Errorf("σ(%g) = %.16g, want %.16g", c.y, got, c.want)
		}
	}
	for _, c := range []struct{ n, want int }{{0, 0}, {20, 3}, {30, 4}, {4032, 604}, {5000, 750}, {15903, 750}} {
		if got := Probation(c.n); got != c.want {
			t.Errorf("Probation(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestScoreByHand: 30 rows (the first 4 on probation), one window over
// rows 10–13 (width 4), scored under the three profiles; every figure
// worked out by hand from σ(y) = 2/(1+e^(5y)) − 1.
func TestScoreByHand(t *testing.T) {
	const (
		atEnd  = 0.5621241486044827  // σ(−1/4)/σ(−1): the window's last row
		row11  = 0.9669890878000605  // σ(−3/4)/σ(−1)
		after2 = -0.9311096086675776 // σ(2/3): 2 rows past a window 4 rows wide (over width − 1)
	)
	for _, c := range []struct {
		name           string
		rows           []int
		std, lfp, lfn  float64
		caught, alarms int
	}{
		{"nothing: the window missed", nil, -1, -1, -2, 0, 0},
		{"at the window's start", []int{10}, 1, 1, 1, 1, 0},
		{"at the window's end", []int{13}, atEnd, atEnd, atEnd, 1, 0},
		{"only the first in a window counts", []int{11, 12, 13}, row11, row11, row11, 1, 0},
		{"before any window: a full false alarm, and the window missed", []int{5}, -1.11, -1.22, -2.11, 0, 1},
		{"two rows after the window: a false alarm, discounted", []int{10, 15}, 1 + 0.11*after2, 1 + 0.22*after2, 1 + 0.11*after2, 1, 1},
		{"far after the window (y ≥ 3): a full false alarm", []int{10, 25}, 1 - 0.11, 1 - 0.22, 1 - 0.11, 1, 1},
		{"on probation: not scored", []int{0, 3}, -1, -1, -2, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := minuteSeries(30, [2]int{10, 13})
			f, err := s.Score(at(30, c.rows...), Profiles)
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range []float64{c.std, c.lfp, c.lfn} {
				if !near(f.Raw[p], want) {
					t.Errorf("%s: raw %.12g, want %.12g", Profiles[p].Name, f.Raw[p], want)
				}
			}
			if f.Caught != c.caught || f.FalseAlarms != c.alarms || f.Windows != 1 || f.Scored != 26 {
				t.Errorf("caught %d false alarms %d windows %d scored %d, want %d %d 1 26", f.Caught, f.FalseAlarms, f.Windows, f.Scored, c.caught, c.alarms)
			}
		})
	}
}

// TestFalseAlarmAfterEachWindow: a false alarm is measured from the
// nearest window before it, not the first.
func TestFalseAlarmAfterEachWindow(t *testing.T) {
	s := minuteSeries(40, [2]int{10, 13}, [2]int{20, 22})
	// Row 24 is 2 rows past the second window (width 3, so over 2: y = 1).
	f, err := s.Score(at(40, 10, 20, 24), []Profile{Standard})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 + 0.11*Sigmoid(1); !near(f.Raw[0], want) {
		t.Errorf("raw %.12g, want %.12g", f.Raw[0], want)
	}
}

// TestNormalisation: a corpus of two files, null and perfect at the ends
// of the scale, one caught window and one missed in between.
func TestNormalisation(t *testing.T) {
	a, b := minuteSeries(30, [2]int{10, 13}), minuteSeries(30, [2]int{20, 23})
	for _, c := range []struct {
		name string
		det  [][]bool
		want float64
	}{
		{"null", [][]bool{at(30), at(30)}, 0},
		{"perfect", [][]bool{at(30, 10), at(30, 20)}, 100},
		{"one of two at its start", [][]bool{at(30, 10), at(30)}, 50},
		// null −2, perfect 2, raw 1 − 1 − 0.11: 100 × 1.89 / 4.
		{"one caught, one missed, a false alarm before it", [][]bool{at(30, 10), at(30, 5)}, 47.25},
	} {
		r, err := Score([]*Series{a, b}, c.det, []Profile{Standard})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Totals[0]; !near(got.Normalised, c.want) || got.Null != -2 || got.Perfect != 2 {
			t.Errorf("%s: %+v, want normalised %g, null −2, perfect 2", c.name, got, c.want)
		}
	}
}

// TestWindowOnProbation: a window wholly in the probationary period is
// not scored (no FN), though NAB's perfect detector still counts it.
func TestWindowOnProbation(t *testing.T) {
	s := minuteSeries(30, [2]int{1, 2}, [2]int{10, 13})
	r, err := Score([]*Series{s}, [][]bool{at(30, 1, 10)}, []Profile{Standard})
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Files[0]; f.Windows != 1 || f.Labelled != 2 || f.Caught != 1 || !near(f.Raw[0], 1) || r.Totals[0].Null != -1 || r.Totals[0].Perfect != 2 {
		t.Errorf("got %+v, %+v", f, r.Totals[0])
	}
}

// TestOptimize: the best threshold is found among the scores, and it
// scores what Score gives at it.
func TestOptimize(t *testing.T) {
	s := minuteSeries(30, [2]int{10, 13})
	scores := make([]float64, 30)
	scores[10], scores[20], scores[25] = 0.6, 0.9, 0.3 // the window's start, two false alarms
	th, norm, err := Optimize([]*Series{s}, [][]float64{scores}, Standard)
	if err != nil {
		t.Fatal(err)
	}
	// At 0.6: caught (1) and one false alarm (row 20, y = 7/3); at 0.3 a
	// second, at 0.9 the window missed.
	want := 100 * (1 + 0.11*Sigmoid(7.0/3) + 1) / 2
	if th != 0.6 || !near(norm, want) {
		t.Errorf("Optimize: threshold %g normalised %g, want 0.6 and %g", th, norm, want)
	}
	r, _ := Score([]*Series{s}, [][]bool{Detect(scores, th)}, []Profile{Standard})
	if !near(r.Totals[0].Normalised, norm) {
		t.Errorf("Score at %g gives %g, Optimize said %g", th, r.Totals[0].Normalised, norm)
	}
	// Only false alarms: never firing is best.
	scores[10] = 0
	if th, norm, _ = Optimize([]*Series{s}, [][]float64{scores}, Standard); th <= 0.9 || norm != 0 {
		t.Errorf("only false alarms: threshold %g normalised %g, want above 0.9 and 0", th, norm)
	}
}

// TestLoadAndResults: a corpus read from the NAB layout, results written
// and read back, and what is wrong with bad input said plainly.
func TestLoadAndResults(t *testing.T) {
	csvOf := func(rows ...string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("timestamp,value\n" + strings.Join(rows, "\n") + "\n")}
	}
	fsys := fstest.MapFS{
		"windows.json":   {Data: []byte(`{"cat/a.csv": [["2014-04-01 00:01:00.000000", "2014-04-01 00:02:00.000000"]], "cat/b.csv": [], "cat/absent.csv": []}`)},
		"data/cat/a.csv": csvOf("2014-04-01 00:00:00,1", "2014-04-01 00:01:00,2.5", "2014-04-01 00:02:00,3", "2014-04-01 00:03:00,4"),
		"data/cat/b.csv": csvOf("2014-04-01 00:00:00,1"),
	}
	series, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].Name != "cat/a.csv" || len(series[0].Windows) != 1 || series[0].Values[1] != 2.5 || len(series[1].Windows) != 0 {
		t.Fatalf("loaded %+v", series)
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, series[0], []float64{0, 1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	want := "timestamp,value,anomaly_score,label\n2014-04-01 00:00:00,1,0,0\n2014-04-01 00:01:00,2.5,1,1\n2014-04-01 00:02:00,3,0,1\n2014-04-01 00:03:00,4,0,0\n"
	if buf.String() != want {
		t.Errorf("results:\n%s\nwant:\n%s", buf.String(), want)
	}
	scores, err := ReadResults(&buf, series[0])
	if err != nil || len(scores) != 4 || scores[1] != 1 {
		t.Errorf("read back %v, %v", scores, err)
	}
	if p := ResultsPath("outpost", "cat/a.csv"); p != "outpost/cat/outpost_a.csv" {
		t.Errorf("ResultsPath: %s", p)
	}

	for name, c := range map[string]struct {
		fsys fstest.MapFS
		want string
	}{
		"no windows file":   {fstest.MapFS{"data/x.csv": csvOf("2014-04-01 00:00:00,1")}, "no windows file"},
		"not labelled":      {fstest.MapFS{"windows.json": {Data: []byte(`{}`)}, "data/x.csv": csvOf("2014-04-01 00:00:00,1")}, "data/x.csv has no entry"},
		"bad value":         {fstest.MapFS{"windows.json": {Data: []byte(`{"x.csv": []}`)}, "data/x.csv": csvOf("2014-04-01 00:00:00,one")}, `data/x.csv: line 2: value "one" is not a number`},
		"out of order":      {fstest.MapFS{"windows.json": {Data: []byte(`{"x.csv": []}`)}, "data/x.csv": csvOf("2014-04-01 00:01:00,1", "2014-04-01 00:00:00,1")}, "line 3: 2014-04-01 00:00:00 comes before"},
		"empty window":      {fstest.MapFS{"windows.json": {Data: []byte(`{"x.csv": [["2015-01-01 00:00:00", "2015-01-02 00:00:00"]]}`)}, "data/x.csv": csvOf("2014-04-01 00:00:00,1")}, "holds no row"},
		"no value column":   {fstest.MapFS{"windows.json": {Data: []byte(`{"x.csv": []}`)}, "data/x.csv": {Data: []byte("timestamp,v\n2014-04-01 00:00:00,1\n")}}, `no "value" column`},
		"no data directory": {fstest.MapFS{"windows.json": {Data: []byte(`{}`)}}, "data"},
	} {
		if _, err := Load(c.fsys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}
