package alerting

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// phasedResult is a passing HTTPS probe with every phase.
func phasedResult(rng *rand.Rand, now time.Time) wire.Result {
	n := func(v float64) float64 { return v * (0.8 + 0.4*rng.Float64()) }
	r := wire.Result{V: 1, Check: "c", Region: "r1", Time: now, OK: true,
		Phases: wire.Phases{Resolve: n(0.002), Connect: n(0.004), TLS: n(0.008), Processing: n(0.025), Transfer: n(0.001)}}
	for _, v := range r.Phases.Values() {
		r.Duration += v
	}
	return r
}

func benchCheck(b *testing.B) *checks.Check {
	b.Helper()
	cfg, err := checks.LoadBytes("b.yaml", []byte("version: 1\nchecks:\n  - {id: c, interval: 30s, http: {url: \"https://127.0.0.1/\"}}\n"), nil)
	if err != nil {
		b.Fatal(err)
	}
	return cfg.Checks[0]
}

// BenchmarkSketchInsert is one latency value into a DDSketch, the cost at
// the heart of every result's shape tracking.
func BenchmarkSketchInsert(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = 0.04 * (0.5 + rng.Float64())
	}
	sk := newSketch()
	b.ResetTimer()
	for i := range b.N {
		if i%256 == 0 {
			sk.Clear() // a bucket's worth, as trackers hold
		}
		_ = sk.Add(vals[i%len(vals)])
	}
}

// BenchmarkShapeIngest compares adding a result to its window alone with
// adding it to the window and its shape tracker (six sketch inserts, and
// a bucket close with detection every ten results), side by side.
func BenchmarkShapeIngest(b *testing.B) {
	c := benchCheck(b)
	rng := rand.New(rand.NewPCG(1, 2))
	results := make([]wire.Result, 1024)
	for i := range results {
		results[i] = phasedResult(rng, simStart)
	}
	step := c.Shape.Bucket() / 10
	b.Run("window", func(b *testing.B) {
		w := newWindow(c, "r1")
		now := simStart
		for i := range b.N {
			r := &results[i%len(results)]
			w.add(r, "a", now)
			now = now.Add(step)
		}
	})
	b.Run("window+shape", func(b *testing.B) {
		w := newWindow(c, "r1")
		t := newShapeTracker(c)
		now := simStart
		for i := range b.N {
			r := &results[i%len(results)]
			w.add(r, "a", now)
			t.add(r, now)
			now = now.Add(step)
		}
	})
}

// BenchmarkShapeDetect is the work of one bucket close for one (check,
// region): merging the window's sketches, the quantiles of the total and
// of five phases, the detectors and learning, against a warm baseline.
// DetectLatency alone is the pure detectors.
func BenchmarkShapeDetect(b *testing.B) {
	c := benchCheck(b)
	rng := rand.New(rand.NewPCG(1, 2))
	t := newShapeTracker(c)
	now := simStart
	step := c.Interval
	for now.Before(simStart.Add(26 * time.Hour)) { // every slot warm
		r := phasedResult(rng, now)
		t.add(&r, now)
		now = now.Add(step)
	}
	base := t.latencyBaseline(t.spec.Slot(now), now)
	win := t.measure()
	win.Trend, win.Step = []float64{0.04, 0.041, 0.04, 0.042}, t.bucketLen
	if !base.Warm || win.Samples < t.spec.MinSamples {
		b.Fatalf("baseline warm %v, window %d samples: the detectors would not run", base.Warm, win.Samples)
	}
	// Each close follows a bucket's worth of probes, so that every close
	// merges full buckets.
	perBucket := int(t.bucketLen / step)
	fresh := make([]wire.Result, perBucket)
	for i := range fresh {
		fresh[i] = phasedResult(rng, now)
	}
	b.Run("bucket-close", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			for i := range fresh {
				t.buckets[t.open].add(&fresh[i])
			}
			now = now.Add(t.bucketLen)
			b.StartTimer()
			t.closeBucket(now)
		}
	})
	b.Run("detectors", func(b *testing.B) {
		for range b.N {
			DetectLatency(t.spec, base, win, now)
		}
	})
}

// BenchmarkShapeMemory builds an evaluator with 10,000 HTTPS checks in 5
// regions, gives every (check, region) a week of baseline in every slot
// and a full window (ten probes per bucket, five phases), and reports the
// heap it takes per (check, region). Run it with -benchtime=1x.
func BenchmarkShapeMemory(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ev, _, _ := loadedEvaluator(b, 10_000)
		rng := rand.New(rand.NewPCG(1, 2))
		estimate := 0
		for _, r := range ev.regionList {
			for _, t := range r.shapes {
				fillWeek(t, rng)
				estimate += t.bytes()
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		pairs := 0
		for _, r := range ev.regionList {
			pairs += len(r.shapes)
		}
		// The whole evaluator's heap, windows and deciders included.
		heap := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(heap/float64(pairs), "heap-B/pair")
		b.ReportMetric(heap/(1<<20), "heap-MiB")
		b.ReportMetric(float64(estimate)/float64(pairs), "shape-estimate-B/pair")
		runtime.KeepAlive(ev)
	}
}

// fillWeek teaches every slot of t a week of values and fills its window.
func fillWeek(t *shapeTracker, rng *rand.Rand) {
	stats := make([]float64, numLatencyStats)
	for slot := range t.base.meta {
		for day := range 7 {
			for range 12 {
				for i := range stats {
					stats[i] = 0.01 * (1 + rng.Float64())
				}
				t.base.learn(slot, simStart.Add(time.Duration(day)*24*time.Hour), stats)
			}
		}
	}
	now := simStart
	for range 10 * (checks.ShapeBuckets + 1) {
		r := phasedResult(rng, now)
		t.add(&r, now)
		now = now.Add(t.bucketLen / 10)
	}
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
					clear(r.shapes) // before any ingest: nothing reads it yet
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
