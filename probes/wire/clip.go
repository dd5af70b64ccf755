package wire

import "unicode/utf8"

// MaxReasonBytes bounds a Result's Reason, which travels in every result,
// window and page. Agents clip reasons to it with Clip.
const MaxReasonBytes = 1024

// clipMark marks where Clip cut a string.
const clipMark = "…"

// Clip returns s if it is at most n bytes long. Otherwise it returns the
// longest prefix of s that ends between two characters and leaves room for
// an ellipsis ("…"), followed by the ellipsis: at most n bytes in all, with
// no character split. (Below len("…") bytes, n leaves no room for the mark
// and the prefix is returned alone.) It is the one way Outpost shortens
// text that travels: reasons, answers, lines and details.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	mark := clipMark
	if n < len(mark) {
		mark = ""
	}
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
