package shape

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// binStore must answer exactly as the library's exact stores do.
func TestBinStoreMatchesTheLibrarysStore(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range []int{1, 7, 100, 5000} {
		ours := newSketch()
		theirs := ddsketch.NewDDSketch(sketchMapping, store.NewBufferedPaginatedStore(), store.NewBufferedPaginatedStore())
		for range []int{1, 7, 100, 5000}[n] {
			v := 0.001 * (1 + 50*rng.ExpFloat64())
			_ = ours.Add(v)
			_ = theirs.Add(v)
		}
		for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 1} {
			a, err1 := ours.GetValueAtQuantile(q)
			b, err2 := theirs.GetValueAtQuantile(q)
			if a != b || (err1 == nil) != (err2 == nil) {
				t.Errorf("n=%d q=%v: ours %v (%v), theirs %v (%v)", n, q, a, err1, b, err2)
			}
		}
		if ours.GetCount() != theirs.GetCount() {
			t.Errorf("count %v vs %v", ours.GetCount(), theirs.GetCount())
		}
		// Encoded by ours, decoded by the library, and back.
		var buf []byte
		ours.Encode(&buf, false)
		dec, err := ddsketch.DecodeDDSketch(buf, store.BufferedPaginatedStoreConstructor, nil)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got, want := quantile(dec, 0.9), quantile(theirs, 0.9); got != want {
			t.Errorf("round trip p90 %v, want %v", got, want)
		}
		back, err := ddsketch.DecodeDDSketch(buf, newBinStore, nil)
		if err != nil || quantile(back, 0.5) != quantile(ours, 0.5) {
			t.Errorf("decoding into binStore: %v", err)
		}
	}
}

func TestBinStoreMergeCopyClear(t *testing.T) {
	a, b := &binStore{}, &binStore{}
	for _, i := range []int{5, 1, 3, 3, 9} {
		a.Add(i)
	}
	for _, i := range []int{2, 3, 10} {
		b.Add(i)
	}
	c := a.Copy().(*binStore)
	c.MergeWith(b)
	var idx []int
	c.ForEach(func(i int, n float64) bool { idx = append(idx, i); return false })
	if !slices.Equal(idx, []int{1, 2, 3, 5, 9, 10}) || c.TotalCount() != 8 || !slices.IsSortedFunc(c.bins, func(x, y bin) int { return int(x.index - y.index) }) {
		t.Fatalf("merged bins %v total %v", idx, c.TotalCount())
	}
	if a.TotalCount() != 5 {
		t.Error("Copy shares bins with the original")
	}
	// Cumulative counts: 1→1, 2→2, 3→5, 5→6, 9→7, 10→8.
	for rank, want := range map[float64]int{0: 1, 3.5: 3, 5.5: 5, 7.9: 10, 100: 10} {
		if k := c.KeyAtRank(rank); k != want {
			t.Errorf("KeyAtRank(%v) = %d, want %d", rank, k, want)
		}
	}
	n := 0
	for range c.Bins() {
		n++
	}
	if n != 6 {
		t.Errorf("Bins sent %d bins, want 6", n)
	}
	c.Clear()
	if !c.IsEmpty() || c.TotalCount() != 0 {
		t.Error("Clear left something")
	}
	if _, err := c.MinIndex(); err == nil {
		t.Error("MinIndex of an empty store should fail")
	}
}
