package checks

import (
	"cmp"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// minSecretLen keeps short values (a port, "1") from being redacted out of
// unrelated text.
const minSecretLen = 4

// minEmbeddedLen is the shortest base64 run recognised as a secret encoded
// inside a longer base64 text: shorter runs would match unrelated text.
const minEmbeddedLen = 8

// redactedMark replaces every form of a secret.
const redactedMark = "<redacted>"

// NewRedactor returns a function that replaces each of secrets, in every
// form it travels in, with "<redacted>": as written; as Go-quoted (%q);
// URL-encoded as a query value and as a path segment; base64-encoded in
// the standard and URL alphabets, with and without padding; and the run
// of base64 characters that encodes it inside a longer base64 text, at
// any of the three alignments (a token inside an encoded JSON document).
// "Bearer <secret>" is covered by the secret as written; the base64 of
// "user:password" for basic auth is covered by passing "user:password"
// as a secret (Config.Redactor does). Longer forms are replaced first.
//
// The forms are computed once. The function returned is safe for
// concurrent use and cheap on text that holds no secret: it returns its
// argument without allocating unless a 4-byte window of it starts one of
// the forms.
func NewRedactor(secrets []string) func(string) string {
	forms := map[string]struct{}{}
	for _, s := range secrets {
		if len(s) < minSecretLen {
			continue
		}
		for _, f := range secretForms(s) {
			if len(f) >= minSecretLen {
				forms[f] = struct{}{}
			}
		}
	}
	if len(forms) == 0 {
		return func(s string) string { return s }
	}
	keep := make([]string, 0, len(forms))
	for f := range forms {
		keep = append(keep, f)
	}
	// Longest first, so that a padded encoding wins over the run it
	// starts with; ties in order, so that the function is deterministic.
	slices.SortFunc(keep, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	r := &redactor{}
	pairs := make([]string, 0, 2*len(keep))
	for _, f := range keep {
		pairs = append(pairs, f, redactedMark)
		r.starts.add(f)
	}
	r.replacer = strings.NewReplacer(pairs...)
	return r.redact
}

// secretForms lists the forms of s that NewRedactor replaces.
func secretForms(s string) []string {
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if q := strconv.Quote(s); q[1:len(q)-1] != s {
		forms = append(forms, q[1:len(q)-1])
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(s)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for shift := range 3 {
			if core := embeddedBase64(enc, s, shift); len(core) >= minEmbeddedLen {
				forms = append(forms, core)
			}
		}
	}
	return forms
}

// embeddedBase64 is the run of characters that encodes s wherever s starts
// shift bytes past a 3-byte boundary of a longer text: the characters
// whose 6 bits all come from s. (Those at its edges mix in the
// neighbouring bytes; they stay, and reveal a few bits at most.)
func embeddedBase64(enc *base64.Encoding, s string, shift int) string {
	buf := make([]byte, shift+len(s))
	copy(buf[shift:], s)
	e := enc.EncodeToString(buf)
	from := (8*shift + 5) / 6        // first character past the prefix
	to := (8 * (shift + len(s))) / 6 // characters entirely within s
	if to <= from {
		return ""
	}
	return e[from:to]
}

// redactor is NewRedactor's function: a prefilter and a replacer.
type redactor struct {
	replacer *strings.Replacer
	starts   windowSet
}

func (r *redactor) redact(s string) string {
	for i := 0; i+4 <= len(s); i++ {
		if r.starts.has(s[i : i+4]) {
			return r.replacer.Replace(s)
		}
	}
	return s
}

// windowSet is a Bloom filter of one hash over 4-byte strings: has is
// false for every window no form starts with, and rarely true otherwise.
type windowSet [1 << 10]uint64 // 65536 bits

func windowHash(w string) uint32 {
	x := uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
	return (x * 0x9E3779B1) >> 16
}

func (ws *windowSet) add(form string) {
	h := windowHash(form[:4])
	ws[h>>6] |= 1 << (h & 63)
}

func (ws *windowSet) has(w string) bool {
	h := windowHash(w)
	return ws[h>>6]&(1<<(h&63)) != 0
}
