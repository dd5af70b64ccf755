package checks

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzCELExpr feeds arbitrary text to the expect.cel field, through the
// loader (as a block scalar, so that positions inside the value are
// worked out) and to CompileCEL: nothing panics, every error is one
// "fuzz.yaml:LINE:COL: ..." line, and an expression that compiles builds
// a program whose evaluation ends, true, false or an error, within the
// cost limit.
func FuzzCELExpr(f *testing.F) {
	for _, s := range []string{
		`status == 200`,
		`json.status == "ok" && json.items.all(i, i.ready)`,
		`headers["content-type"].startsWith("application/json")`,
		`timings.total < 1 && body.matches("[0-9]+")`,
		`has(json.a) ? json.a.b : false`,
		"status == 200 &&\n  jsn.ok",
		`status + 1`,
		`[1,2,3].all(a, [1,2,3].all(b, body.size() >= 0))`,
		`'\u00e9t\u00e9' == body`,
	} {
		f.Add(s)
	}
	in := CELInput{Status: 200, Headers: map[string]string{"content-type": "application/json"}, Body: `{"a":{"b":true},"items":[]}`,
		JSON: map[string]any{"a": map[string]any{"b": true}, "items": []any{}}, Timings: map[string]float64{"total": 0.1}}
	f.Fuzz(func(t *testing.T, expr string) {
		var b strings.Builder
		b.WriteString("checks:\n  - id: a\n    http:\n      url: https://example.com/\n      expect:\n        cel: |-\n")
		for line := range strings.SplitSeq(expr, "\n") {
			b.WriteString("          " + line + "\n")
		}
		const name = "fuzz.yaml"
		_, err := LoadBytes(name, []byte(b.String()), mapEnv(fuzzEnv))
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, name+":") {
					t.Fatalf("error line does not start with %q: %q", name+":", line)
				}
			}
		}
		e, issues := CompileCEL(expr)
		for _, is := range issues {
			if is.Line < 1 || is.Col < 1 || is.Msg == "" {
				t.Fatalf("issue %+v", is)
			}
		}
		if (e == nil) == (len(issues) == 0) {
			t.Fatalf("CompileCEL = %v, %v", e, issues)
		}
		if e == nil {
			return
		}
		p, err := e.Program()
		if err != nil {
			t.Fatalf("Program: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p.Eval(ctx, in)
	})
}
