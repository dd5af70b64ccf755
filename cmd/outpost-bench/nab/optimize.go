package nab

import (
	"cmp"
	"fmt"
	"slices"
)

// Optimize finds the threshold that gives a detector's anomaly scores
// (scores[i] for series[i], one per row) the best normalised score under
// profile p over the whole corpus, as NAB tunes each detector before it
// scores it. The score only changes where the threshold passes one of the
// scores, so every distinct score is tried, highest first; of equal
// results the highest threshold wins. A detector that does best by never
// firing gets a threshold above its highest score.
func Optimize(series []*Series, scores [][]float64, p Profile) (threshold, normalised float64, err error) {
	if len(scores) != len(series) {
		return 0, 0, fmt.Errorf("nab: scores for %d files, %d files", len(scores), len(series))
	}
	type point struct {
		score  float64
		file   int
		window int // index into best, or −1
		weight float64
	}
	var pts []point
	var best []float64 // per scored window, the best true positive so far (−1: none)
	var null, perfect float64
	for f, s := range series {
		if len(scores[f]) != len(s.Times) {
			return 0, 0, fmt.Errorf("%s: %d scores for %d rows", s.Name, len(scores[f]), len(s.Times))
		}
		if err := s.prepare(); err != nil {
			return 0, 0, err
		}
		start := Probation(len(s.Times))
		base := len(best)
		for k := range s.Windows {
			best = append(best, -1)
			perfect += p.TP
			if s.hi[k] >= start {
				null -= p.FN
			}
		}
		for i := start; i < len(s.Times); i++ {
			w := -1
			if s.win[i] >= 0 {
				w = base + s.win[i]
			}
			pts = append(pts, point{score: scores[f][i], file: f, window: w, weight: s.weight[i]})
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int { return cmp.Compare(b.score, a.score) })

	raw := null
	bestRaw, bestThreshold := null, 1.0
	if len(pts) > 0 {
		bestThreshold = max(1, pts[0].score) + 1e-9
	}
	for i := 0; i < len(pts); {
		t := pts[i].score
		for ; i < len(pts) && pts[i].score == t; i++ {
			pt := pts[i]
			switch {
			case pt.window < 0:
				raw += p.FP * pt.weight
			case best[pt.window] < 0:
				raw += p.TP*pt.weight + p.FN
				best[pt.window] = pt.weight
			case pt.weight > best[pt.window]:
				raw += p.TP * (pt.weight - best[pt.window])
				best[pt.window] = pt.weight
			}
		}
		if raw > bestRaw {
			bestRaw, bestThreshold = raw, t
		}
	}
	return bestThreshold, normalise(bestRaw, null, perfect), nil
}
