package outbox

import (
	"fmt"
	"testing"
)

// BenchmarkNext: a worker picking its next entry in a full queue (10,000
// entries of 1,000 incidents, ten each, interleaved): with a new trigger at
// the head (the usual case, answered at once), and with resolves and
// updates only, which are read to the end.
func BenchmarkNext(b *testing.B) {
	for _, tc := range []struct {
		name  string
		first class
	}{{"new-at-head", classNew}, {"no-new", classResolve}} {
		b.Run(tc.name, func(b *testing.B) {
			q := &queue{}
			for i := range 10000 {
				cl := classUpdate
				if i < 1000 && i%2 == 0 {
					cl = classResolve
				}
				if i == 0 {
					cl = tc.first
				}
				q.items = append(q.items, item{seq: uint64(i + 1), key: fmt.Sprintf("outpost:check:c%04d:down", i%1000), class: cl})
			}
			for b.Loop() {
				if pickNext(q) < 0 {
					b.Fatal("nothing picked")
				}
			}
		})
	}
}

// pickNext is the pick a worker makes when nothing waits for a retry.
func pickNext(q *queue) int {
	i, _ := q.next(t0)
	return i
}
