package nab

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// stampLayout is how NAB writes timestamps (UTC). Parsing also accepts a
// fraction of a second, as windows.json writes them.
const stampLayout = "2006-01-02 15:04:05"

// WindowFiles are where a corpus keeps its windows, tried in this order:
// the layout of ../shared/nab-tune, then NAB's own repository.
var WindowFiles = []string{"windows.json", "labels/combined_windows.json"}

// Load reads a NAB-format corpus from fsys: every data/**.csv
// (timestamp,value), sorted by name, and the windows of each from
// windows.json (or labels/combined_windows.json), keyed by the file's path
// below data/. A data file without an entry there is an error; entries
// without a data file are ignored, so a corpus may hold a subset of the
// files.
func Load(fsys fs.FS) ([]*Series, error) {
	windows, err := loadWindows(fsys)
	if err != nil {
		return nil, err
	}
	var names []string
	err = fs.WalkDir(fsys, "data", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".csv") {
			names = append(names, strings.TrimPrefix(p, "data/"))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nab: reading data/: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("nab: no data/**.csv files")
	}
	slices.Sort(names)
	var out []*Series
	for _, name := range names {
		ws, ok := windows[name]
		if !ok {
			return nil, fmt.Errorf("nab: data/%s has no entry in the windows file", name)
		}
		s, err := readSeries(fsys, name)
		if err != nil {
			return nil, err
		}
		s.Windows = ws
		if err := s.prepare(); err != nil {
			return nil, fmt.Errorf("nab: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func loadWindows(fsys fs.FS) (map[string][]Window, error) {
	var data []byte
	var name string
	for _, name = range WindowFiles {
		var err error
		if data, err = fs.ReadFile(fsys, name); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("nab: %w", err)
		}
	}
	if data == nil {
		return nil, fmt.Errorf("nab: no windows file (%s)", strings.Join(WindowFiles, " or "))
	}
	var raw map[string][][]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("nab: %s: %w", name, err)
	}
	out := make(map[string][]Window, len(raw))
	for file, ws := range raw {
		for k, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("nab: %s: %s: window %d has %d ends, want [start, end]", name, file, k+1, len(w))
			}
			start, err1 := parseStamp(w[0])
			end, err2 := parseStamp(w[1])
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("nab: %s: %s: window %d: %w", name, file, k+1, err)
			}
			out[file] = append(out[file], Window{Start: start, End: end})
		}
		if ws != nil && out[file] == nil {
			out[file] = []Window{}
		}
	}
	return out, nil
}

func parseStamp(s string) (time.Time, error) {
	t, err := time.Parse(stampLayout, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q is not like 2014-04-10 07:15:00", s)
	}
	return t, nil
}

// readSeries reads data/name: a header naming timestamp and value, then
// one row each, in time order.
func readSeries(fsys fs.FS, name string) (*Series, error) {
	f, err := fsys.Open("data/" + name)
	if err != nil {
		return nil, fmt.Errorf("nab: %w", err)
	}
	defer f.Close()
	s := &Series{Name: name}
	err = readCSV(f, []string{"timestamp", "value"}, func(line int, stamp string, t time.Time, cols []string) error {
		v, err := strconv.ParseFloat(strings.TrimSpace(cols[0]), 64)
		if err != nil {
			return fmt.Errorf("value %q is not a number", cols[0])
		}
		s.Stamps, s.Times, s.Values = append(s.Stamps, stamp), append(s.Times, t), append(s.Values, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("nab: data/%s: %w", name, err)
	}
	return s, nil
}

// readCSV reads a CSV with a header holding want's columns (timestamp
// first), calling row with each data row's timestamp and the other
// columns of want, in want's order. Timestamps must not go back.
func readCSV(r io.Reader, want []string, row func(line int, stamp string, t time.Time, cols []string) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty file")
		}
		return err
	}
	idx := make([]int, len(want))
	for j, w := range want {
		idx[j] = slices.IndexFunc(header, func(h string) bool { return strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) == w })
		if idx[j] < 0 {
			return fmt.Errorf("line 1: no %q column in the header %q", w, strings.Join(header, ","))
		}
	}
	cols := make([]string, len(want)-1)
	var prev time.Time
	rows := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		for j, i := range idx {
			if i >= len(rec) {
				return fmt.Errorf("line %d: no %s column", line, want[j])
			}
		}
		stamp := strings.TrimSpace(rec[idx[0]])
		t, err := parseStamp(stamp)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if rows > 0 && t.Before(prev) {
			return fmt.Errorf("line %d: %s comes before the row above it (%s): rows must be in time order", line, stamp, prev.Format(stampLayout))
		}
		for j := range cols {
			cols[j] = rec[idx[j+1]]
		}
		if err := row(line, stamp, t, cols); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		prev = t
		rows++
	}
	if rows == 0 {
		return errors.New("no rows after the header")
	}
	return nil
}

// ResultsPath is where NAB keeps a detector's results for the data file
// name ("realTraffic/speed_6005.csv"): DETECTOR/realTraffic/DETECTOR_speed_6005.csv.
func ResultsPath(detector, name string) string {
	dir, file := path.Split(name)
	return path.Join(detector, dir, detector+"_"+file)
}

// WriteResults writes s's rows with their anomaly scores in NAB's results
// format: timestamp,value,anomaly_score,label, the label 1 inside a window.
func WriteResults(w io.Writer, s *Series, scores []float64) error {
	if len(scores) != len(s.Times) {
		return fmt.Errorf("%s: %d scores for %d rows", s.Name, len(scores), len(s.Times))
	}
	if err := s.prepare(); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"timestamp", "value", "anomaly_score", "label"})
	for i := range s.Times {
		label := "0"
		if s.win[i] >= 0 {
			label = "1"
		}
		_ = cw.Write([]string{s.Stamps[i], strconv.FormatFloat(s.Values[i], 'g', -1, 64), strconv.FormatFloat(scores[i], 'g', -1, 64), label})
	}
	cw.Flush()
	return cw.Error()
}

// ReadResults reads a detector's anomaly scores for s from NAB's results
// format (any columns, among them timestamp and anomaly_score), one per
// row of s, with the same timestamps.
func ReadResults(r io.Reader, s *Series) ([]float64, error) {
	var scores []float64
	err := readCSV(r, []string{"timestamp", "anomaly_score"}, func(line int, stamp string, t time.Time, cols []string) error {
		i := len(scores)
		if i >= len(s.Times) {
			return fmt.Errorf("more rows than data/%s (%d)", s.Name, len(s.Times))
		}
		if !t.Equal(s.Times[i]) {
			return fmt.Errorf("timestamp %s, but data/%s has %s on its row %d", stamp, s.Name, s.Stamps[i], i+1)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(cols[0]), 64)
		if err != nil {
			return fmt.Errorf("anomaly_score %q is not a number", cols[0])
		}
		scores = append(scores, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(scores) != len(s.Times) {
		return nil, fmt.Errorf("%d rows, data/%s has %d", len(scores), s.Name, len(s.Times))
	}
	return scores, nil
}
