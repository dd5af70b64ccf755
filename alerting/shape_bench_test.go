package alerting

import (
	"runtime"
	runtimemetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// BenchmarkShapeIngest compares adding a result to its window alone with
// adding it to the window and its shape tracker (six sketch inserts, and
// a bucket close with detection every ten results), side by side.
func BenchmarkShapeIngest(b *testing.B) {
	c := loadTestConfig(b).Checks[0]
	results := passingResults()
	step := c.Shape.Bucket() / 10
	b.Run("window", func(b *testing.B) {
		w := newWindow(c, "r1")
		now := simStart
		for i := range b.N {
			r := &results[i%len(results)]
			w.add(r, "a", now, false)
			now = now.Add(step)
		}
	})
	b.Run("window+shape", func(b *testing.B) {
		w := newWindow(c, "r1")
		t := shape.NewTracker(c)
		now := simStart
		for i := range b.N {
			r := &results[i%len(results)]
			w.add(r, "a", now, false)
			t.Add(r, now)
			now = now.Add(step)
		}
	})
}

// BenchmarkShapeMemory builds an evaluator with 10,000 HTTPS checks in 5
// regions, gives every (check, region) a week of baseline in every slot
// and a full window (ten probes per bucket, five phases), and reports the
// heap it takes per (check, region), and the heap goal the collector sets
// for it, what a long-running evaluator's RSS settles at. Run it with
// -benchtime=1x.
func BenchmarkShapeMemory(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ev, _, _ := loadedEvaluator(b, 10_000)
		results := passingResults()
		week := weekOfBaseline(ev.config().Checks[0], results)
		estimate := 0
		for _, r := range ev.regionList {
			for _, t := range r.tables().shapes {
				fillWeek(t, week, results)
				estimate += t.Bytes()
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		pairs := 0
		for _, r := range ev.regionList {
			pairs += len(r.tables().shapes)
		}
		// The whole evaluator's heap, windows and deciders included.
		heap := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(heap/float64(pairs), "heap-B/pair")
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		// What a process holding it grows to: the collector lets the heap
		// reach its goal (the live heap plus GOGC percent) before it
		// collects, and a long-running evaluator's RSS settles there.
		// This, not the live heap, is what to size a machine by.
		b.ReportMetric(heapGoal()/float64(pairs), "goal-B/pair")
		b.ReportMetric(heapGoal()/(1<<20), "goal-MiB")
		b.ReportMetric(float64(estimate)/float64(pairs), "shape-estimate-B/pair")
		// The trackers' own share: the heap that dropping every tracker
		// gives back (issue 15 item 4 budgets this, not the evaluator).
		for _, r := range ev.regionList {
			clear(r.tables().shapes)
		}
		runtime.GC()
		var dropped runtime.MemStats
		runtime.ReadMemStats(&dropped)
		b.ReportMetric(float64(after.HeapAlloc-dropped.HeapAlloc)/float64(pairs), "shape-heap-B/pair")
		runtime.KeepAlive(ev)
	}
}

// heapGoal is the collector's current heap goal in bytes.
func heapGoal() float64 {
	s := []runtimemetrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	runtimemetrics.Read(s)
	return float64(s[0].Value.Uint64())
}

// fillWeek gives t the learned week of week (see weekOfBaseline) and fills
// its window with ten of results per bucket.
func fillWeek(t *shape.Tracker, week shape.Saved, results []wire.Result) {
	if !t.Restore(week) {
		panic("fillWeek: a tracker of other dimensions")
	}
	now := simStart
	bucket := 30 * time.Second // the interval: ten probes per 5m bucket
	for i := range 10 * (checks.ShapeBuckets + 1) {
		r := results[i%len(results)]
		t.Add(&r, now)
		now = now.Add(bucket)
	}
}

// weekOfBaseline is the learned state of a tracker for c after a week of
// steady probes: every slot warm.
func weekOfBaseline(c *checks.Check, results []wire.Result) shape.Saved {
	t := shape.NewTracker(c)
	now := simStart
	for i := 0; now.Before(simStart.Add(7 * 24 * time.Hour)); i++ {
		r := results[i%len(results)]
		t.Add(&r, now)
		now = now.Add(c.Interval)
	}
	return t.Save()
}

// BenchmarkIngestShape is BenchmarkIngest with shape tracking off and on,
// side by side: the cost shapes add to ingest, whose batches carry 90%
// passing HTTPS results with five phases each.
func BenchmarkIngestShape(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "shape-off"
		if on {
			name = "shape-on"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			if !on {
				for _, r := range f.ev.regionList {
					clear(r.tables().shapes) // before any ingest: nothing reads it yet
				}
			}
			h := f.ev.Handler()
			tmpl := f.template(b, "a1", benchResults("us-east", "a1"))
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				s := tmpl.next(uint64(i + 1))
				b.StartTimer()
				serve(b, h, s)
			}
			reportResultsPerSecond(b)
		})
	}
}

// passingResults are benchResults' passing HTTPS results, five phases each.
func passingResults() []wire.Result {
	var out []wire.Result
	for _, r := range benchResults("r1", "a1") {
		if r.OK {
			out = append(out, r)
		}
	}
	return out
}
