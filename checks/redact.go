package checks

import (
	"cmp"
	"slices"
	"strings"
)

// minSecretLen keeps short values (a port, "1") from being redacted out of
// unrelated text.
const minSecretLen = 4

// NewRedactor returns a function that replaces each of secrets (longest
// first) with "<redacted>".
func NewRedactor(secrets []string) func(string) string {
	var keep []string
	for _, s := range secrets {
		if len(s) >= minSecretLen {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return func(s string) string { return s }
	}
	slices.SortFunc(keep, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(keep))
	for _, s := range keep {
		pairs = append(pairs, s, "<redacted>")
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}
