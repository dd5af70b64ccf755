package shape

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/outposthq/outpost/probes/wire"
)

// A bucket's quantiles must be exactly those of the library's DDSketch
// over the same values, raw and folded (more than foldProbes probes, and
// more than a bin's count holds), for the duration and for a phase that
// some probes lack.
func TestBucketQuantilesMatchTheLibrarysSketch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	qs := []float64{0, 0.01, 0.5, 0.9, 0.99, 1}
	for _, n := range []int{1, 7, 30, foldProbes + 1, 5000, 70_000} {
		var b latencyBucket
		total := ddsketch.NewDDSketch(sketchMapping, store.NewBufferedPaginatedStore(), store.NewBufferedPaginatedStore())
		tls := ddsketch.NewDDSketch(sketchMapping, store.NewBufferedPaginatedStore(), store.NewBufferedPaginatedStore())
		for i := range n {
			r := wire.Result{Duration: 0.001 * (1 + 50*rng.ExpFloat64())}
			if n == 70_000 {
				r.Duration = 0.040 // one bin, past a bin entry's count
			}
			if i%3 != 0 {
				r.Phases.TLS = 0.0001 * (1 + 20*rng.Float64())
				_ = tls.Add(r.Phases.TLS)
			}
			_ = total.Add(r.Duration)
			b.add(&r)
		}
		for _, c := range []struct {
			name  string
			value int
			sk    *ddsketch.DDSketch
		}{{"duration", 0, total}, {"tls", 3, tls}} {
			_, count := quantiles(b.gather(c.value, nil), 0.5)
			if float64(count) != c.sk.GetCount() {
				t.Errorf("n=%d %s: %d values, the sketch has %v", n, c.name, count, c.sk.GetCount())
			}
			for _, q := range qs {
				got, _ := quantiles(b.gather(c.value, nil), q)
				want, err := c.sk.GetValueAtQuantile(q)
				if err != nil {
					if count != 0 {
						t.Errorf("n=%d %s: the sketch is empty, we have %d values", n, c.name, count)
					}
					continue
				}
				if got[0] != want {
					t.Errorf("n=%d %s q=%v: %v, the sketch says %v", n, c.name, q, got[0], want)
				}
			}
		}
		// Three quantiles in one call, as measure reads them, are the
		// three read one by one.
		three, _ := quantiles(b.gather(0, nil), 0.5, 0.9, 0.99)
		for i, q := range []float64{0.5, 0.9, 0.99} {
			if one, _ := quantiles(b.gather(0, nil), q); one[0] != three[i] {
				t.Errorf("n=%d q=%v: %v read alone, %v read with others", n, q, one[0], three[i])
			}
		}
		if n > foldProbes && len(b.bins) == 0 {
			t.Errorf("n=%d: never folded", n)
		}
		if n > foldProbes && b.bytes() > 2*foldProbes*perProbe*2+4*len(b.bins)+64 {
			t.Errorf("n=%d: %d bytes for %d bins", n, b.bytes(), len(b.bins))
		}
	}
}

// Every latency's index fits an int16 and a folded bin's index bits.
func TestLatencyIndexRange(t *testing.T) {
	for _, v := range []float64{0, minLatency, 0.04, maxLatency, 1e9} {
		i := int(latencyIndex(v))
		if i+binOffset < 0 || i+binOffset >= 1<<binIndexBits {
			t.Errorf("index of %v is %d, outside the bin range", v, i)
		}
	}
}

// Clearing keeps the capacity, so that a bucket's reuse allocates nothing.
func TestBucketClearKeepsCapacity(t *testing.T) {
	var b latencyBucket
	r := wire.Result{Duration: 0.04, Phases: wire.Phases{Connect: 0.01}}
	for range 10 {
		b.add(&r)
	}
	c := cap(b.raw)
	b.clear()
	if n := testing.AllocsPerRun(10, func() {
		for range 10 {
			b.add(&r)
		}
		b.clear()
	}); n != 0 || cap(b.raw) != c {
		t.Errorf("%v allocations per refill, capacity %d then %d", n, c, cap(b.raw))
	}
	if _, n := quantiles(b.gather(0, nil), 0.5); n != 0 {
		t.Errorf("a cleared bucket holds %d values", n)
	}
}

// Bytes counts the Tracker itself at no less than its size.
func TestTrackerBytesCountsTheTracker(t *testing.T) {
	if n := unsafe.Sizeof(Tracker{}); n > trackerBytes {
		t.Errorf("a Tracker is %d bytes, Bytes counts %d", n, trackerBytes)
	}
}
