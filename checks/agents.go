package checks

import (
	"fmt"
	"unicode/utf8"
)

// Warnings returns what is valid in c but likely not meant, one line each
// as "FILE:LINE:COL: message", in configuration order: agents: entries
// without a name, whose key may sign for any agent of their region (so
// one leaked agent key lets its holder report as every other agent of the
// region); then checks whose shape.min_samples is too few for the
// quantiles their detectors judge (see shapeWarnings). "outpost validate"
// prints them; they never fail a load.
func (c *Config) Warnings() []string {
	var out []string
	for i, a := range c.Agents {
		if a.Name != "" {
			continue
		}
		out = append(out, fmt.Sprintf("%s: agents[%d]: no name: this key may sign for any agent of region %q; add name: (the agent's --name) so that it signs for that agent only",
			a.Src.Pos, i, a.Region))
	}
	return append(out, c.shapeWarnings()...)
}

// maxQuotedName bounds a configured value quoted back in an error.
const maxQuotedName = 64

// clipName cuts s to maxQuotedName bytes, on a rune boundary, marking the
// cut, so that an error never grows with a hostile value.
func clipName(s string) string {
	if len(s) <= maxQuotedName {
		return s
	}
	n := maxQuotedName
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
