package shape

import (
	"math"
	"time"
)

// slotStats is where a tracker's baseline lives: a baseline (float32
// moments) for series, a packedBaseline (16-bit moments) for latency.
type slotStats interface {
	learn(slot int, now time.Time, vals []float64)
	usual(slot int) ([]Usual, bool)
	// usualValue is usual(slot)[stat].Value and whether the slot is
	// warm, without allocating: metrics read it for every tracker.
	usualValue(slot, stat int) (float64, bool)
	bytes() int
	// save returns copies of the slots' bookkeeping and moments.
	save() ([]SlotMeta, []Moment)
	// restore copies saved state in and reports whether its dimensions
	// match.
	restore(meta []SlotMeta, moments []Moment) bool
	numStats() int
}

func (b *baseline) save() ([]SlotMeta, []Moment) {
	return append([]SlotMeta(nil), b.meta...), append([]Moment(nil), b.moments...)
}

func (b *baseline) restore(meta []SlotMeta, moments []Moment) bool {
	if len(meta) != len(b.meta) || len(moments) != len(b.moments) {
		return false
	}
	copy(b.meta, meta)
	copy(b.moments, moments)
	return true
}

func (b *baseline) numStats() int { return b.stats }

// A packedBaseline is a baseline whose moments are 16-bit fixed point:
// the mean of the log in steps of 1/meanScale (0.05%) from -meanOffset
// (every latency from 1 µs to an hour lies well inside)
// and its mean absolute deviation in steps of 1/devScale. A latency
// tracker keeps 13 moments in each of 24 (or 168) slots, and this halves
// them: 4 bytes a moment, not 8.
//
// Learning decodes a slot's moments, learns as baseline does, and encodes
// them again with dithered rounding: a pseudo-random offset in [0, 1)
// drawn from the slot's state (so still a pure function) before the
// floor, which keeps the rounding unbiased. A decayed mean learning its
// hundredth value moves by a hundredth of a deviation, often less than
// one step; plain rounding would drop those moves and leave the baseline
// behind a slow drift, dithered rounding makes them on average.
type packedBaseline struct {
	base *baseline // one slot, the scratch learning happens in
	meta []SlotMeta
	mean []uint16 // meanUnset when never learned
	dev  []uint16
}

const (
	meanScale  = 2048
	meanOffset = 16 // logs from -16 (0.1 µs) to +16 (100 days)
	devScale   = 4096
	meanUnset  = 0
)

func newPackedBaseline(slots, stats int, halfLife time.Duration, warmN int) *packedBaseline {
	p := &packedBaseline{
		base: newBaseline(1, stats, halfLife, warmN),
		meta: make([]SlotMeta, slots),
		mean: make([]uint16, slots*stats),
		dev:  make([]uint16, slots*stats),
	}
	return p
}

func (p *packedBaseline) numStats() int { return p.base.stats }

// load decodes slot into the scratch baseline.
func (p *packedBaseline) load(slot int) {
	s := p.base.stats
	p.base.meta[0] = p.meta[slot]
	for i := range s {
		p.base.moments[i] = unpack(p.mean[slot*s+i], p.dev[slot*s+i])
	}
}

func unpack(mean, dev uint16) Moment {
	if mean == meanUnset {
		return Moment{}
	}
	return Moment{Mean: float32(float64(mean)/meanScale - meanOffset), Dev: float32(float64(dev) / devScale)}
}

// pack encodes m, rounding with the dither u and v in [0, 1).
func pack(m Moment, u, v float64) (uint16, uint16) {
	if m == (Moment{}) {
		return meanUnset, 0
	}
	mean := math.Floor((float64(m.Mean)+meanOffset)*meanScale + u)
	// A learned deviation never packs to 0, so that a moment of mean 0
	// (1 s) never reads as unset.
	dev := math.Floor(float64(m.Dev)*devScale + v)
	return uint16(min(max(mean, meanUnset+1), math.MaxUint16)), uint16(min(max(dev, 1), math.MaxUint16))
}

func (p *packedBaseline) learn(slot int, now time.Time, vals []float64) {
	p.load(slot)
	p.base.learn(0, now, vals)
	s := p.base.stats
	m := p.base.meta[0]
	p.meta[slot] = m
	for i := range s {
		h := mix(uint64(slot)<<40 | uint64(i)<<32 | uint64(m.N))
		p.mean[slot*s+i], p.dev[slot*s+i] = pack(p.base.moments[i], unit(h), unit(mix(h)))
	}
}

// mix is splitmix64's finaliser: a well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// unit maps h to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// usual reads slot as baseline.usual does, without the scratch, so that
// it writes nothing.
func (p *packedBaseline) usual(slot int) ([]Usual, bool) {
	s, m := p.base.stats, p.meta[slot]
	out := make([]Usual, s)
	for i := range out {
		mo := unpack(p.mean[slot*s+i], p.dev[slot*s+i])
		if m.N == 0 || mo == (Moment{}) {
			continue
		}
		out[i] = Usual{Value: math.Exp(float64(mo.Mean)), Spread: float64(mo.Dev)}
	}
	return out, m.N >= p.base.warmN
}

func (p *packedBaseline) usualValue(slot, stat int) (float64, bool) {
	s, m := p.base.stats, p.meta[slot]
	mo := unpack(p.mean[slot*s+stat], p.dev[slot*s+stat])
	if m.N == 0 || mo == (Moment{}) {
		return 0, m.N >= p.base.warmN
	}
	return math.Exp(float64(mo.Mean)), m.N >= p.base.warmN
}

func (p *packedBaseline) bytes() int {
	return 64 + p.base.bytes() + len(p.meta)*16 + 2*len(p.mean) + 2*len(p.dev)
}

// save returns the moments unpacked, as Saved has always carried them.
func (p *packedBaseline) save() ([]SlotMeta, []Moment) {
	moments := make([]Moment, len(p.mean))
	for i := range moments {
		moments[i] = unpack(p.mean[i], p.dev[i])
	}
	return append([]SlotMeta(nil), p.meta...), moments
}

// restore packs saved moments, rounding to nearest: a snapshot written
// before moments were packed loads with at most half a step of error.
func (p *packedBaseline) restore(meta []SlotMeta, moments []Moment) bool {
	if len(meta) != len(p.meta) || len(moments) != len(p.mean) {
		return false
	}
	copy(p.meta, meta)
	for i, m := range moments {
		p.mean[i], p.dev[i] = pack(m, 0.5, 0.5)
	}
	return true
}
