package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	"gopkg.in/yaml.v3"
)

// CELExpr is an expect.cel assertion: a CEL expression over an HTTP
// response that must be true. It is parsed and type-checked at load;
// Program builds what a prober evaluates. The expression sees
//
//	status   int                  the response status
//	headers  map(string, string)  by lower-case name, values joined with ", "
//	body     string               the body, as far as max_body_bytes reads it
//	json     dyn                  the body parsed when it is JSON, else null
//	timings  map(string, double)  seconds by phase: resolve, connect, tls,
//	                              processing, transfer, total
type CELExpr struct {
	// Expr is the expression as written.
	Expr string
	ast  *cel.Ast
}

// Limits of CEL expressions.
const (
	// MaxCELBytes bounds the text of an expression.
	MaxCELBytes = 4096
	// CELCostLimit bounds the work of one evaluation, in cel-go's cost
	// units (about one per operation and one per ten bytes a string
	// function reads: ten full reads of a 1 MiB body): an expression that
	// would cost more stops with an error, so that a costly one cannot
	// stall a probe.
	CELCostLimit      = 10_000_000
	celRecursionLimit = 64
)

// CEL variables, by name.
const (
	CELStatus  = "status"
	CELHeaders = "headers"
	CELBody    = "body"
	CELJSON    = "json"
	CELTimings = "timings"
)

// celEnv is the one environment of every expression: built once, and
// immutable after (cel.Env is safe for concurrent use).
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(CELStatus, cel.IntType),
		cel.Variable(CELHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(CELBody, cel.StringType),
		cel.Variable(CELJSON, cel.DynType),
		cel.Variable(CELTimings, cel.MapType(cel.StringType, cel.DoubleType)),
		// timings.total < 1 and json.count > 2 mean what they say.
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxCELBytes),
		cel.ParserRecursionLimit(celRecursionLimit),
	)
})

// CELIssue is one problem of an expression: a message and where, in
// 1-based lines and columns of the expression's text.
type CELIssue struct {
	Line, Col int
	Msg       string
}

// CompileCEL parses and type-checks expr, which must yield a boolean.
func CompileCEL(expr string) (*CELExpr, []CELIssue) {
	if len(expr) > MaxCELBytes {
		return nil, []CELIssue{{Line: 1, Col: 1, Msg: fmt.Sprintf("the expression is %d bytes, more than the limit of %d", len(expr), MaxCELBytes)}}
	}
	if strings.TrimSpace(expr) == "" {
		return nil, []CELIssue{{Line: 1, Col: 1, Msg: "the expression is empty; write one such as status == 200 && json.ok"}}
	}
	env, err := celEnv()
	if err != nil {
		return nil, []CELIssue{{Line: 1, Col: 1, Msg: err.Error()}}
	}
	checked, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var out []CELIssue
		for _, e := range iss.Errors() {
			msg := strings.ReplaceAll(e.Message, " (in container '')", "")
			out = append(out, CELIssue{Line: max(e.Location.Line(), 1), Col: max(e.Location.Column(), 0) + 1, Msg: msg})
		}
		return nil, out
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, []CELIssue{{Line: 1, Col: 1, Msg: fmt.Sprintf("the expression must be true or false, but it is of type %s", t)}}
	}
	return &CELExpr{Expr: expr, ast: checked}, nil
}

// decodeNode compiles the expression at load and reports each problem at
// its place in the file.
func (e *CELExpr) decodeNode(d *decoder, n *yaml.Node, path string) {
	s, ok := d.scalar(n, path, "a CEL expression such as status == 200")
	if !ok {
		return
	}
	c, issues := CompileCEL(s.Value)
	for _, is := range issues {
		if pos, exact := d.exprPos(n, s, is.Line, is.Col); exact {
			d.errs.add(pos, d.check, "%s: %s", path, is.Msg)
		} else {
			d.errs.add(pos, d.check, "%s: line %d, column %d of the expression: %s", path, is.Line, is.Col, is.Msg)
		}
	}
	if c != nil {
		*e = *c
	}
}

// CELProgram is an expression ready to evaluate; it is safe for
// concurrent use.
type CELProgram struct {
	expr *CELExpr
	prg  cel.Program
	// accesses are the parts of the expression that read the response,
	// each a program of its own, evaluated after a failure for the
	// reason. (cel-go v0.31 tracks no cost when it also tracks the state
	// of every sub-expression, so the state is not tracked.)
	accesses []celAccess
	// uses holds the variables the expression reads.
	uses map[string]bool
}

type celAccess struct {
	text string
	prg  cel.Program
}

// Program builds the evaluable form of e, with the cost limit.
func (e *CELExpr) Program() (*CELProgram, error) {
	if e == nil || e.ast == nil {
		return nil, errors.New("cel: expression not compiled")
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	opts := []cel.ProgramOption{cel.CostLimit(CELCostLimit), cel.InterruptCheckFrequency(64)}
	prg, err := env.Program(e.ast, opts...)
	if err != nil {
		return nil, fmt.Errorf("cel: %w", err)
	}
	p := &CELProgram{expr: e, prg: prg, uses: map[string]bool{}}
	native := e.ast.NativeRep()
	var accesses []ast.Expr
	collectAccesses(native.Expr(), &accesses)
	ast.PostOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.IdentKind {
			p.uses[e.AsIdent()] = true
		}
	}))
	seen := map[string]bool{}
	for _, a := range accesses {
		text, err := parser.Unparse(a, native.SourceInfo())
		if err != nil || seen[text] {
			continue
		}
		seen[text] = true
		// An access that names a comprehension's variable (headers[h])
		// does not compile alone; it is left out of reasons.
		checked, iss := env.Compile(text)
		if iss != nil && iss.Err() != nil {
			continue
		}
		if ap, err := env.Program(checked, opts...); err == nil {
			p.accesses = append(p.accesses, celAccess{text, ap})
		}
		if len(p.accesses) == maxCELValues {
			break
		}
	}
	return p, nil
}

// CELInput is the response an expression sees.
type CELInput struct {
	Status  int
	Headers map[string]string
	Body    string
	// JSON is the body decoded by encoding/json into any, or nil.
	JSON    any
	Timings map[string]float64
}

// CELValue is the value one part of the expression (a variable, a field,
// an index) had during an evaluation.
type CELValue struct {
	Expr  string
	Value any
}

// CELOutcome is an evaluation's verdict: OK when the expression was true;
// otherwise Err says why it could not be evaluated, if that is why.
// Values are what the expression read of the response, in the order it
// names them, for a reason.
type CELOutcome struct {
	OK     bool
	Err    error
	Values []CELValue
}

// maxCELValues bounds the values an outcome reports.
const maxCELValues = 6

// Eval evaluates p over in, bounded by ctx and the cost limit.
func (p *CELProgram) Eval(ctx context.Context, in CELInput) CELOutcome {
	vars := map[string]any{
		CELStatus: int64(in.Status), CELHeaders: in.Headers, CELBody: in.Body,
		CELJSON: in.JSON, CELTimings: in.Timings,
	}
	if in.Headers == nil {
		vars[CELHeaders] = map[string]string{}
	}
	if in.Timings == nil {
		vars[CELTimings] = map[string]float64{}
	}
	out, _, err := p.prg.ContextEval(ctx, vars)
	var res CELOutcome
	switch {
	case err != nil:
		res.Err = err
	case out.Type() != types.BoolType:
		res.Err = fmt.Errorf("the result is %s, not true or false", out.Type())
	default:
		res.OK = out.Value() == true
	}
	if res.OK {
		return res
	}
	for _, a := range p.accesses {
		v, _, err := a.prg.ContextEval(ctx, vars)
		if err != nil || v == nil || types.IsError(v) || types.IsUnknown(v) {
			continue
		}
		res.Values = append(res.Values, CELValue{Expr: a.text, Value: v.Value()})
	}
	return res
}

// Uses reports whether the expression reads the variable name (CELJSON,
// ...): a prober need not parse a body no expression reads.
func (p *CELProgram) Uses(name string) bool { return p.uses[name] }

// String is the expression as written.
func (p *CELProgram) String() string { return p.expr.Expr }

var celVars = map[string]bool{CELStatus: true, CELHeaders: true, CELBody: true, CELJSON: true, CELTimings: true}

// isAccess reports whether e reads the response: a variable, a field of
// one, an index into one.
func isAccess(e ast.Expr) bool {
	switch e.Kind() {
	case ast.IdentKind:
		return celVars[e.AsIdent()]
	case ast.SelectKind:
		return isAccess(e.AsSelect().Operand())
	case ast.CallKind:
		c := e.AsCall()
		return (c.FunctionName() == operators.Index || c.FunctionName() == operators.OptIndex) && len(c.Args()) == 2 && isAccess(c.Args()[0])
	}
	return false
}

// collectAccesses appends the outermost accesses of e, in source order.
func collectAccesses(e ast.Expr, out *[]ast.Expr) {
	if isAccess(e) {
		*out = append(*out, e)
		if e.Kind() == ast.CallKind {
			collectAccesses(e.AsCall().Args()[1], out)
		}
		return
	}
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			collectAccesses(c.Target(), out)
		}
		for _, a := range c.Args() {
			collectAccesses(a, out)
		}
	case ast.SelectKind:
		collectAccesses(e.AsSelect().Operand(), out)
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			collectAccesses(el, out)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			m := en.AsMapEntry()
			collectAccesses(m.Key(), out)
			collectAccesses(m.Value(), out)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		collectAccesses(c.IterRange(), out)
		collectAccesses(c.AccuInit(), out)
		collectAccesses(c.LoopCondition(), out)
		collectAccesses(c.LoopStep(), out)
		collectAccesses(c.Result(), out)
	}
}

// exprPos maps line and col (1-based, in characters) of the value of n to
// the file. exact is false when the value does not stand in the file as
// written (escapes, folding, ${ENV}): then the position is n's own.
func (d *decoder) exprPos(n *yaml.Node, s scalar, line, col int) (pos Pos, exact bool) {
	at := d.pos(n)
	lines := strings.Split(s.Value, "\n")
	if s.FromEnv || line < 1 || line > len(lines) {
		return at, false
	}
	want := []rune(lines[line-1])
	fileLine := func(i int) []rune {
		rest := d.raw
		for ; i > 1 && len(rest) > 0; i-- {
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				return nil
			}
			rest = rest[j+1:]
		}
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			rest = rest[:j]
		}
		return []rune(strings.TrimSuffix(string(rest), "\r"))
	}
	switch n.Style {
	case 0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		off := 0
		if n.Style != 0 {
			off = 1
		}
		raw := fileLine(n.Line)
		start := n.Column - 1 + off
		if len(lines) != 1 || start < 0 || start+len(want) > len(raw) || string(raw[start:start+len(want)]) != string(want) {
			return at, false
		}
		return Pos{File: d.file, Line: n.Line, Col: n.Column + off + col - 1}, true
	case yaml.LiteralStyle:
		raw := fileLine(n.Line + line)
		indent := len(raw) - len(want)
		if indent < 1 || string(raw[indent:]) != string(want) || strings.TrimLeft(string(raw[:indent]), " ") != "" {
			return at, false
		}
		return Pos{File: d.file, Line: n.Line + line, Col: indent + col}, true
	}
	return at, false
}
