package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{name: "short", in: "abc", n: 5, want: "abc"},
		{name: "exactly n", in: "abcde", n: 5, want: "abcde"},
		{name: "ascii", in: "abcdefgh", n: 6, want: "abc…"},
		{name: "inside a rune", in: "abé" + "xyz", n: 6, want: "ab…"},
		{name: "rune boundary", in: "aéb" + "xyz", n: 6, want: "aé…"},
		{name: "four-byte rune", in: "a😀bcdef", n: 7, want: "a…"},
		{name: "no room for the mark", in: "abcdef", n: 2, want: "ab"},
		{name: "no room for a rune", in: "éé", n: 1, want: ""},
		{name: "zero", in: "abc", n: 0, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Clip(tc.in, tc.n); got != tc.want {
				t.Fatalf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

// Clip never exceeds its bound and never makes invalid UTF-8 of valid text.
func TestClipBoundsAndRunes(t *testing.T) {
	s := strings.Repeat("aé😀€", 50)
	for n := 0; n <= len(s)+1; n++ {
		got := Clip(s, n)
		if len(got) > n || !utf8.ValidString(got) {
			t.Fatalf("Clip(s, %d) = %q (%d bytes, valid %v)", n, got, len(got), utf8.ValidString(got))
		}
		if n >= len(s) && got != s {
			t.Fatalf("Clip(s, %d) cut a string that fits", n)
		}
	}
}
