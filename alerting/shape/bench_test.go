package shape

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// benchStart is a Monday, midnight UTC.
var benchStart = time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)

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

// BenchmarkBucketAdd is one passing probe with five phases into a
// latency bucket, the cost at the heart of every result's shape tracking:
// in buckets of 10 probes (a 30s check), and of 256 (a fast one, whose
// buckets fold past 64).
func BenchmarkBucketAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	rs := make([]wire.Result, 4096)
	for i := range rs {
		rs[i] = phasedResult(rng, benchStart)
	}
	for _, per := range []int{10, 256} {
		b.Run(fmt.Sprintf("per-bucket=%d", per), func(b *testing.B) {
			var bk latencyBucket
			for i := range b.N {
				if i%per == 0 {
					bk.clear()
				}
				bk.add(&rs[i%len(rs)])
			}
		})
	}
}

// BenchmarkShapeDetect is the work of one bucket close for one (check,
// region): merging the window's sketches, the quantiles of the total and
// of five phases, the detectors and learning, against a warm baseline.
// DetectLatency alone is the pure detectors.
func BenchmarkShapeDetect(b *testing.B) {
	c := benchCheck(b)
	rng := rand.New(rand.NewPCG(1, 2))
	t := NewTracker(c)
	now := benchStart
	step := c.Interval
	for now.Before(benchStart.Add(26 * time.Hour)) { // every slot warm
		r := phasedResult(rng, now)
		t.Add(&r, now)
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

// BenchmarkTrackerAdd is the ingest cost of one passing latency result
// with five phases in a tracker with a warm baseline, ten results per
// bucket, so that every tenth Add closes a bucket (measure, detect,
// learn): what Tracker.Add costs on average under an evaluator's lock.
func BenchmarkTrackerAdd(b *testing.B) {
	c := benchCheck(b)
	rng := rand.New(rand.NewPCG(1, 2))
	t := NewTracker(c)
	now := benchStart
	step := c.Interval
	for now.Before(benchStart.Add(26 * time.Hour)) { // every slot warm
		r := phasedResult(rng, now)
		t.Add(&r, now)
		now = now.Add(step)
	}
	results := make([]wire.Result, 1024)
	for i := range results {
		results[i] = phasedResult(rng, now)
	}
	b.ResetTimer()
	for i := range b.N {
		t.Add(&results[i%len(results)], now)
		now = now.Add(step)
	}
}
