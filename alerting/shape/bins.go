package shape

import (
	"errors"
	"slices"

	enc "github.com/DataDog/sketches-go/ddsketch/encoding"
	"github.com/DataDog/sketches-go/ddsketch/pb/sketchpb"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// binStore is a store.Store for the many small sketches of shape windows:
// a sorted list of 8-byte bins. sketches-go's smallest store keeps 8
// bytes per value added plus about 110 bytes of structure, and a sketch
// needs two stores; a bucket of a few dozen probes in a handful of
// distinct bins fits here in a third of that. Like the library's exact
// stores it never collapses bins, so a sketch's relative accuracy holds.
// Counts are float32: exact up to 2^24 per bin, far beyond a bucket.
type binStore struct {
	bins  []bin
	total float64
}

type bin struct {
	index int32
	count float32
}

var _ store.Store = (*binStore)(nil)

func newBinStore() store.Store { return &binStore{} }

var errEmptyStore = errors.New("the store is empty")

// find returns where index is or would go.
func (s *binStore) find(index int) (int, bool) {
	return slices.BinarySearchFunc(s.bins, int32(index), func(b bin, i int32) int { return int(b.index) - int(i) })
}

func (s *binStore) Add(index int) { s.AddWithCount(index, 1) }

func (s *binStore) AddBin(b store.Bin) { s.AddWithCount(b.Index(), b.Count()) }

func (s *binStore) AddWithCount(index int, count float64) {
	if count == 0 {
		return
	}
	i, ok := s.find(index)
	if ok {
		s.bins[i].count += float32(count)
	} else {
		s.bins = slices.Insert(s.bins, i, bin{index: int32(index), count: float32(count)})
	}
	s.total += count
}

// Bins sends every bin on a buffered channel, closed when done, so that
// no goroutine is left behind if the caller stops reading.
func (s *binStore) Bins() <-chan store.Bin {
	ch := make(chan store.Bin, len(s.bins))
	for _, b := range s.bins {
		nb, err := store.NewBin(int(b.index), float64(b.count))
		if err == nil {
			ch <- *nb
		}
	}
	close(ch)
	return ch
}

func (s *binStore) ForEach(f func(index int, count float64) (stop bool)) {
	for _, b := range s.bins {
		if f(int(b.index), float64(b.count)) {
			return
		}
	}
}

func (s *binStore) Copy() store.Store { return &binStore{bins: slices.Clone(s.bins), total: s.total} }

func (s *binStore) Clear() { s.bins, s.total = s.bins[:0], 0 }

func (s *binStore) IsEmpty() bool { return len(s.bins) == 0 }

func (s *binStore) MaxIndex() (int, error) {
	if len(s.bins) == 0 {
		return 0, errEmptyStore
	}
	return int(s.bins[len(s.bins)-1].index), nil
}

func (s *binStore) MinIndex() (int, error) {
	if len(s.bins) == 0 {
		return 0, errEmptyStore
	}
	return int(s.bins[0].index), nil
}

func (s *binStore) TotalCount() float64 { return s.total }

// KeyAtRank returns the lowest index whose cumulative count exceeds rank,
// as the library's stores do; the highest index when none does.
func (s *binStore) KeyAtRank(rank float64) int {
	rank = max(rank, 0)
	cum := 0.0
	for _, b := range s.bins {
		cum += float64(b.count)
		if cum > rank {
			return int(b.index)
		}
	}
	k, _ := s.MaxIndex()
	return k
}

func (s *binStore) MergeWith(other store.Store) {
	if o, ok := other.(*binStore); ok && len(s.bins) == 0 {
		s.bins, s.total = append(s.bins, o.bins...), o.total
		return
	}
	other.ForEach(func(index int, count float64) bool {
		s.AddWithCount(index, count)
		return false
	})
}

func (s *binStore) ToProto() *sketchpb.Store {
	if len(s.bins) == 0 {
		return &sketchpb.Store{}
	}
	counts := make(map[int32]float64, len(s.bins))
	for _, b := range s.bins {
		counts[b.index] = float64(b.count)
	}
	return &sketchpb.Store{BinCounts: counts}
}

func (s *binStore) EncodeProto(builder *sketchpb.StoreBuilder) {
	for _, b := range s.bins {
		builder.AddBinCounts(func(w *sketchpb.Store_BinCountsEntryBuilder) {
			w.SetKey(b.index)
			w.SetValue(float64(b.count))
		})
	}
}

func (s *binStore) Reweight(w float64) error {
	if w <= 0 {
		return errors.New("can't reweight by a negative factor")
	}
	for i := range s.bins {
		s.bins[i].count *= float32(w)
	}
	s.total *= w
	return nil
}

// Encode writes the bins in the library's format, through its own store,
// so that the encoding stays theirs.
func (s *binStore) Encode(b *[]byte, t enc.FlagType) {
	ps := store.NewBufferedPaginatedStore()
	s.ForEach(func(index int, count float64) bool {
		ps.AddWithCount(index, count)
		return false
	})
	ps.Encode(b, t)
}

func (s *binStore) DecodeAndMergeWith(b *[]byte, mode enc.SubFlag) error {
	ps := store.NewBufferedPaginatedStore()
	if err := ps.DecodeAndMergeWith(b, mode); err != nil {
		return err
	}
	s.MergeWith(ps)
	return nil
}
