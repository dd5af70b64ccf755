package checks

import (
	"testing"
)

// FuzzNormalizeRecord normalises arbitrary text as a record of one of
// DNSTypes (typ picks it, modulo their number): no panic, and a
// normalised value is a fixed point. The second property is what makes an
// expectation written in normalised form, as answers are shown in results,
// match the answer it was copied from.
func FuzzNormalizeRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ byte, text string) {
		rtype := DNSTypes[int(typ)%len(DNSTypes)]
		n, err := NormalizeRecord(rtype, text)
		if err != nil {
			return
		}
		again, err := NormalizeRecord(rtype, n)
		if err != nil {
			t.Fatalf("NormalizeRecord(%s, %q) = %q, which does not normalise again: %v", rtype, text, n, err)
		}
		if again != n {
			t.Fatalf("NormalizeRecord(%s, %q) = %q, then %q: not idempotent", rtype, text, n, again)
		}
	})
}
