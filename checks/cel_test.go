package checks

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestCELValidFixture: every expression of testdata/valid/cel.yaml
// loads, compiled, and builds a program.
func TestCELValidFixture(t *testing.T) {
	cfg, err := Load([]string{"testdata/valid/cel.yaml"}, mapEnv(fixtureEnv))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cfg.Checks {
		reqs := []*HTTPRequest{&c.HTTP.HTTPRequest}
		for i := range c.HTTP.Steps {
			reqs = append(reqs, &c.HTTP.Steps[i].HTTPRequest)
		}
		for _, r := range reqs {
			if r.Expect == nil || r.Expect.CEL == nil {
				continue
			}
			n++
			if _, err := r.Expect.CEL.Program(); err != nil {
				t.Errorf("%s: %v", c.ID, err)
			}
		}
	}
	if n != len(cfg.Checks) {
		t.Errorf("%d expressions for %d checks", n, len(cfg.Checks))
	}
}

// TestCELEval: the variables, the verdicts and the values a failure
// reports.
func TestCELEval(t *testing.T) {
	in := CELInput{
		Status:  503,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    `{"ok":false,"items":[1,2]}`,
		JSON:    map[string]any{"ok": false, "items": []any{1.0, 2.0}},
		Timings: map[string]float64{"total": 0.25},
	}
	tests := []struct {
		expr   string
		ok     bool
		err    string
		values string
	}{
		{`status == 503 && json.items.size() == 2 && timings.total < 1`, true, "", ""},
		{`status == 200 || json.ok`, false, "", "status=503 json.ok=false"},
		{`headers["content-type"] == "text/html"`, false, "", `headers["content-type"]=application/json`},
		{`json.items.exists(i, i > 2)`, false, "", "json.items=[1 2]"},
		{`json.nothing == 1`, false, "no such key", ""},
		{`json.ok`, false, "", "json.ok=false"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			e, issues := CompileCEL(tc.expr)
			if issues != nil {
				t.Fatal(issues)
			}
			p, err := e.Program()
			if err != nil {
				t.Fatal(err)
			}
			out := p.Eval(context.Background(), in)
			if out.OK != tc.ok || (tc.err == "") != (out.Err == nil) || out.Err != nil && !strings.Contains(out.Err.Error(), tc.err) {
				t.Fatalf("Eval = %+v", out)
			}
			var vals []string
			for _, v := range out.Values {
				vals = append(vals, v.Expr+"="+fmt.Sprint(v.Value))
			}
			if got := strings.Join(vals, " "); got != tc.values {
				t.Errorf("values %q, want %q", got, tc.values)
			}
		})
	}
}

// TestCELUses: the variables an expression reads, so that a prober parses
// no body an expression does not read.
func TestCELUses(t *testing.T) {
	for expr, want := range map[string]string{
		`status == 200`: "status",
		`json.items.all(i, i.ready) && size(body) > 0`: "body json",
		`has(json.a) || "x" in headers`:                "headers json",
		`[1].exists(x, timings.total < x)`:             "timings",
	} {
		e, issues := CompileCEL(expr)
		if issues != nil {
			t.Fatal(issues)
		}
		p, err := e.Program()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range []string{CELBody, CELHeaders, CELJSON, CELStatus, CELTimings} {
			if p.Uses(v) {
				got = append(got, v)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s uses %v, want %s", expr, got, want)
		}
	}
}
