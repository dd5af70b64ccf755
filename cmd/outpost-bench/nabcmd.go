package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/cmd/outpost-bench/nab"
	"github.com/outposthq/outpost/probes/wire"
)

const nabAbout = `Scores Outpost's series detectors on the Numenta Anomaly Benchmark (NAB):
real labelled series (request counts, latencies, CPU, network bytes, road
traffic, Twitter volume) with their anomaly windows.

-data DIR is a NAB-format corpus: DIR/data/CATEGORY/FILE.csv (timestamp,value,
UTC, such as 2014-04-10 07:15:00) and DIR/windows.json (or, as in NAB's own
repository, DIR/labels/combined_windows.json) with each file's windows.

Each file is replayed through the real detectors in this process: a series
check with the project's default shape settings (interval: the file's median
step), one alerting/shape Tracker fed every value at the file's own timestamp
(the timestamps are the clock), as the evaluator feeds it. A row is a
detection (anomaly_score 1) where a page would open: the tracker's findings
go from none to some while no finding is open; a finding stays open until the
findings are empty on a row the tracker judged (a warm slot), as the
evaluator resolves it. Flap damping and maintenance are not modelled.

Prints NAB's scores (standard, reward_low_FP_rate, reward_low_FN_rate: raw,
and normalised so that the null detector scores 0 and the perfect one 100),
and per file the windows caught and the false alarms, also per week of scored
time. The first 15% of each file (at most 750 rows) is NAB's probationary
period and is not scored. With -out DIR, also writes each file's detections
in NAB's results format, DIR/outpost/CATEGORY/outpost_FILE.csv
(timestamp,value,anomaly_score,label), which NAB's own scorer reads.

-half A or -half B scores one half of the corpus: the files sorted by path
below data/, A the 1st, 3rd, 5th... and B the 2nd, 4th, 6th... The series
detectors' constants were chosen on half A of ../shared/nab-tune and
checked on half B; a large gap between the halves means a fit to half A.`

func nabCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("nab", nabAbout)
	data := fs.String("data", "", "the NAB corpus: DIR/data/**.csv and DIR/windows.json (required)")
	outDir := fs.String("out", "", "also write the detections in NAB's results format under DIR/outpost/")
	half := fs.String("half", "", "score only half the files: A (1st, 3rd, ... by path) or B (2nd, 4th, ...)")
	if err := parse(fs, args); err != nil {
		return err
	}
	pick, ok := nabHalves[strings.ToUpper(*half)]
	if !ok {
		fmt.Fprintf(fs.Output(), "-half %q: use A or B, or leave it out for all files\n", *half)
		fs.Usage()
		return errUsage
	}
	if *data == "" {
		fmt.Fprintln(fs.Output(), "-data DIR is required")
		fs.Usage()
		return errUsage
	}
	run, err := runNAB(ctx, *data, *outDir, pick)
	if err != nil {
		return err
	}
	printNAB(out, run)
	return nil
}

// nabRun is one replay of a corpus and its score.
type nabRun struct {
	data, out string
	series    []*nab.Series
	steps     []time.Duration // each file's interval
	scores    [][]float64     // each file's anomaly scores: 1 where a page opens
	report    *nab.Report
}

// nabDetector names the detector in the results tree, as NAB names its own.
const nabDetector = "outpost"

// nabHalves are -half's values: which files, by index in path order, each
// half holds (nil: all).
var nabHalves = map[string]func(i int) bool{
	"":  nil,
	"A": func(i int) bool { return i%2 == 0 },
	"B": func(i int) bool { return i%2 == 1 },
}

func runNAB(ctx context.Context, data, out string, pick func(i int) bool) (*nabRun, error) {
	series, err := nab.Load(os.DirFS(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", data, err)
	}
	if pick != nil {
		var kept []*nab.Series
		for i, s := range series {
			if pick(i) {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			return nil, fmt.Errorf("%s: no files in that half", data)
		}
		series = kept
	}
	run := &nabRun{data: data, out: out, series: series}
	detected := make([][]bool, len(series))
	for i, s := range series {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		scores, step, err := replaySeries(s)
		if err != nil {
			return nil, err
		}
		run.scores, run.steps = append(run.scores, scores), append(run.steps, step)
		detected[i] = nab.Detect(scores, 1)
		if out != "" {
			if err := writeNABResults(out, s, scores); err != nil {
				return nil, err
			}
		}
	}
	if run.report, err = nab.Score(series, detected, nab.Profiles); err != nil {
		return nil, err
	}
	return run, nil
}

func writeNABResults(out string, s *nab.Series, scores []float64) error {
	p := filepath.Join(out, filepath.FromSlash(nab.ResultsPath(nabDetector, s.Name)))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	err = nab.WriteResults(f, s, scores)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// medianStep is the median time between a file's rows, in whole seconds,
// at least one second (the shortest interval a check may have).
func medianStep(ts []time.Time) time.Duration {
	if len(ts) < 2 {
		return time.Minute
	}
	d := make([]time.Duration, len(ts)-1)
	for i := range d {
		d[i] = ts[i+1].Sub(ts[i])
	}
	slices.Sort(d)
	return max(d[len(d)/2].Round(time.Second), time.Second)
}

// nabCheck is the check a file is replayed as: a series check with the
// project's defaults, which Load fills in, at the file's interval. The
// Prometheus server is never asked: values come from the file.
func nabCheck(step time.Duration) (*checks.Check, error) {
	conf := fmt.Sprintf(`version: 1
regions: [nab]
checks:
  - id: nab
    interval: %s
    series:
      prometheus: {url: "http://127.0.0.1:9090", query: "nab"}
`, step)
	cfg, err := checks.LoadBytes("nab.yaml", []byte(conf), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, fmt.Errorf("the replay's check at interval %s: %w", step, err)
	}
	c := cfg.Checks[0]
	if c.Shape == nil || c.Series == nil {
		return nil, errors.New("the replay's check has no series shape detectors")
	}
	return c, nil
}

// replaySeries feeds s's values through a shape.Tracker at the file's
// timestamps and returns, per row, 1 where a page opens (see nabAbout) and
// 0 elsewhere, with the interval used.
func replaySeries(s *nab.Series) ([]float64, time.Duration, error) {
	step := medianStep(s.Times)
	c, err := nabCheck(step)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", s.Name, err)
	}
	t := shape.NewTracker(c)
	scores := make([]float64, len(s.Times))
	open := false
	for i, now := range s.Times {
		v := s.Values[i]
		t.Add(&wire.Result{Check: c.ID, Time: now, OK: true, Observed: wire.Observed{Value: &v}}, now)
		found, _, judged := t.Findings()
		switch {
		case len(found) > 0 && !open:
			scores[i], open = 1, true
		case len(found) == 0 && judged:
			open = false
		}
	}
	return scores, step, nil
}

func printNAB(w io.Writer, run *nabRun) {
	r := run.report
	fmt.Fprintf(w, "NAB corpus %s: %d files; detector: Outpost's series detectors, project defaults, a detection where a page opens\n\n", run.data, len(run.series))
	// Names padded to one width, so that right-aligning leaves them flush left.
	width := len("total")
	for _, f := range r.Files {
		width = max(width, len(f.Name))
	}
	name := func(s string) string { return s + strings.Repeat(" ", width-len(s)) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, name("file")+"\tinterval\trows\tscored\twindows\tcaught\tfalse alarms\tper week\tstandard\t")
	for i, f := range r.Files {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.3f\t\n", name(f.Name), run.steps[i], f.Rows, f.Scored, f.Windows, f.Caught, f.FalseAlarms, perWeek(f.FalseAlarms, f.Span), f.Raw[0])
	}
	fmt.Fprintf(tw, "%s\t\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.3f\t\n", name("total"), sumFiles(r, func(f nab.FileScore) int { return f.Rows }), sumFiles(r, func(f nab.FileScore) int { return f.Scored }),
		r.Windows, r.Caught, r.FalseAlarms, r.FalseAlarmsPerWeek(), r.Totals[0].Raw)
	_ = tw.Flush()

	fmt.Fprintf(w, "\nwindows caught: %d of %d (%.0f%%); false alarms: %d in %.1f series-weeks of scored time, %.2f per series-week\n\n",
		r.Caught, r.Windows, pct(r.Caught, r.Windows), r.FalseAlarms, r.Weeks, r.FalseAlarmsPerWeek())
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "profile\tA_TP\tA_FP\tA_FN\traw\tnull\tperfect\tNAB score\t")
	for _, t := range r.Totals {
		fmt.Fprintf(tw, "%s\t%g\t%g\t%g\t%.3f\t%.1f\t%.1f\t%.1f\t\n", t.Profile.Name, t.Profile.TP, t.Profile.FP, t.Profile.FN, t.Raw, t.Null, t.Perfect, t.Normalised)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nNAB score: 100 × (raw − null) / (perfect − null); the null detector scores 0, the perfect one 100.")
	if run.out != "" {
		fmt.Fprintf(w, "detections written in NAB's results format under %s\n", filepath.Join(run.out, nabDetector)+string(filepath.Separator))
	}
}

func perWeek(n int, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return float64(n) / (float64(span) / float64(7*24*time.Hour))
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func sumFiles(r *nab.Report, f func(nab.FileScore) int) int {
	n := 0
	for _, x := range r.Files {
		n += f(x)
	}
	return n
}
