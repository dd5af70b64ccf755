package shape

import (
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch/mapping"

	"github.com/outposthq/outpost/probes/wire"
)

// A latency bucket holds the passing probes of one bucket of a shape
// window as DDSketch bin indices: the index of a value in sketchMapping is
// what a sketch would count it under, so quantiles read from them are
// exactly a DDSketch's (1% relative accuracy), at 2 bytes a value instead
// of a sketch per phase. A bucket of a few dozen probes, the usual case,
// keeps each probe's indices as they came (raw); one that grows past
// foldProbes folds them into counted bins, so that memory follows the
// spread of the latencies, not the probe rate.

// sketchAccuracy is the relative accuracy of every latency quantile: one
// reported is within 1% of the true one.
const sketchAccuracy = 0.01

// Latencies are clamped into [minLatency, maxLatency] before they are
// indexed, which bounds the index range to what an int16 holds.
const (
	minLatency = 1e-6
	maxLatency = 3600
)

// sketchMapping maps latencies to bin indices; mappings are immutable.
var sketchMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(sketchAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

// perProbe is how many values a probe gives: its duration, then each phase.
const perProbe = 1 + len(wire.PhaseNames)

const (
	// noValue marks a phase a probe did not measure.
	noValue = math.MinInt16
	// foldProbes is how many probes a bucket keeps raw before it folds
	// them into bins: 64 probes × 6 values × 2 bytes, 768 bytes.
	foldProbes = 64
	// binOffset moves indices (-691 to 409 at 1%) to a positive range
	// of binIndexBits bits.
	binOffset    = 1024
	binIndexBits = 11
	binCountMax  = 1<<16 - 1
)

// latencyBucket is one bucket of a latency window.
type latencyBucket struct {
	// raw holds perProbe indices per probe not yet folded.
	raw []int16
	// bins are folded counts, sorted: value<<27 | index+binOffset<<16 |
	// count, where value is 0 for the duration, 1+i for phase i. A count
	// past binCountMax continues in another entry of the same key.
	bins []uint32
}

func latencyIndex(v float64) int16 { return int16(sketchMapping.Index(clampLatency(v))) }

func clampLatency(v float64) float64 {
	if math.IsNaN(v) {
		return minLatency
	}
	return min(max(v, minLatency), maxLatency)
}

func (b *latencyBucket) add(r *wire.Result) {
	if len(b.raw) >= foldProbes*perProbe {
		b.fold()
	}
	b.raw = append(b.raw, latencyIndex(r.Duration))
	for _, v := range r.Phases.Values() {
		if v <= 0 {
			b.raw = append(b.raw, noValue)
			continue
		}
		b.raw = append(b.raw, latencyIndex(v))
	}
}

// fold moves the raw indices into the counted bins: each found by binary
// search and counted there, or inserted in order. A full entry (count
// binCountMax) is followed by a new one of the same key, put before it.
func (b *latencyBucket) fold() {
	for i, x := range b.raw {
		if x == noValue {
			continue
		}
		k := binKey(i%perProbe, x)
		j, _ := slices.BinarySearch(b.bins, k) // the first entry of k, if any
		if j < len(b.bins) && b.bins[j]&^binCountMax == k && b.bins[j]&binCountMax < binCountMax {
			b.bins[j]++
			continue
		}
		b.bins = slices.Insert(b.bins, j, k|1)
	}
	b.raw = b.raw[:0]
}

func binKey(value int, index int16) uint32 {
	return uint32(value)<<(16+binIndexBits) | uint32(int(index)+binOffset)<<16
}

func (b *latencyBucket) clear() { b.raw, b.bins = b.raw[:0], b.bins[:0] }

// bytes is what the bucket holds beyond its own fields.
func (b *latencyBucket) bytes() int { return 2*cap(b.raw) + 4*cap(b.bins) }

// A counted bin is one bin of a window: its index (offset by binOffset)
// in the high 32 bits, how many values it holds in the low 32, so that a
// plain sort orders bins by index.
type counted = uint64

func countedBin(index int16, n int) counted {
	return uint64(int(index)+binOffset)<<32 | uint64(n)
}

// gather appends value's bins from b (0 the duration, 1+i phase i).
func (b *latencyBucket) gather(value int, out []counted) []counted {
	for i := value; i < len(b.raw); i += perProbe {
		if x := b.raw[i]; x != noValue {
			out = append(out, countedBin(x, 1))
		}
	}
	lo, _ := slices.BinarySearch(b.bins, uint32(value)<<(16+binIndexBits)) // the first of value's
	for _, e := range b.bins[lo:] {
		if int(e>>(16+binIndexBits)) != value {
			break
		}
		out = append(out, uint64(e>>16&(1<<binIndexBits-1))<<32|uint64(e&binCountMax))
	}
	return out
}

// maxQuantiles is the most quantiles one call of quantiles reads.
const maxQuantiles = 3

// quantiles returns the values at qs (ascending, at most maxQuantiles)
// of the bins, as a DDSketch over the same values answers (the lowest bin
// whose cumulative count exceeds q × (n−1)), and how many values there
// are. bins is sorted in place.
func quantiles(bins []counted, qs ...float64) (out [maxQuantiles]float64, n int) {
	for _, c := range bins {
		n += int(c & math.MaxUint32)
	}
	if n == 0 {
		return out, 0
	}
	slices.Sort(bins)
	value := func(c counted) float64 { return sketchMapping.Value(int(c>>32) - binOffset) }
	cum, j := 0, 0
	for _, c := range bins {
		cum += int(c & math.MaxUint32)
		for j < len(qs) && float64(cum) > qs[j]*float64(n-1) {
			out[j] = value(c)
			j++
		}
	}
	for ; j < len(qs); j++ {
		out[j] = value(bins[len(bins)-1])
	}
	return out, n
}
