package checks

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Pos is a position in a configuration file. Line and Col are 1-based; a zero
// Line means the position is the file as a whole.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem found in a configuration. Its text is
// "FILE:LINE:COL: check "ID": message", or without the check part when the
// problem is outside any check. Messages never contain values that came from
// the environment.
type Error struct {
	Pos   Pos
	Check string // the id of the check the error is in, if any
	Msg   string
}

func (e *Error) Error() string {
	if e.Check != "" {
		return fmt.Sprintf("%s: check %q: %s", e.Pos, e.Check, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
}

// Errors returns every *Error contained in err (as returned by Load), in file
// order. It returns nil if err holds none.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		var e *Error
		if errors.As(err, &e) && e == err {
			out = append(out, e)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// errorList collects configuration errors so that all of them are reported
// at once rather than only the first.
type errorList struct {
	errs []*Error
	at   map[Pos]bool // positions that have an error
}

// add records an error. A second error at the same position is dropped: it
// is almost always a consequence of the first (a value that failed to decode
// and then failed validation), and one message per place reads better.
func (l *errorList) add(pos Pos, check, format string, args ...any) {
	if pos.Line > 0 {
		if l.at[pos] {
			return
		}
		if l.at == nil {
			l.at = map[Pos]bool{}
		}
		l.at[pos] = true
	}
	// One error is one line: a message can quote text from the file (a
	// regular expression, a map key) that holds a line break.
	msg := oneLine.Replace(fmt.Sprintf(format, args...))
	l.errs = append(l.errs, &Error{Pos: pos, Check: oneLine.Replace(check), Msg: msg})
}

var oneLine = strings.NewReplacer("\r", `\r`, "\n", `\n`)

// redact replaces every value substituted from the environment, as written
// and as quoted by %q, in the collected messages. Validation quotes values
// without knowing where they came from; this keeps the promise that no
// error shows an environment value.
func (l *errorList) redact(secrets []string) {
	forms := slices.Clone(secrets)
	for _, s := range secrets {
		if q := strconv.Quote(s); q[1:len(q)-1] != s {
			forms = append(forms, q[1:len(q)-1])
		}
		if e := oneLine.Replace(s); e != s {
			forms = append(forms, e)
		}
	}
	r := NewRedactor(forms)
	for _, e := range l.errs {
		e.Msg, e.Check = r(e.Msg), r(e.Check)
	}
}

// err returns the collected errors sorted by position and joined, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
		)
	})
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
