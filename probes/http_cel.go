package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Bounds of what a CEL failure's reason quotes.
const (
	maxCELExprQuote  = 200
	maxCELValueQuote = 120
	maxCELReason     = 600
)

// celInput is the response as a CEL expression sees it.
// Only what the expression reads is worked out: a body is neither copied
// nor parsed for an expression that reads only the status.
func celInput(prg *checks.CELProgram, ev *evaluation) checks.CELInput {
	in := checks.CELInput{Status: ev.resp.StatusCode, Timings: ev.timings}
	if prg.Uses(checks.CELBody) {
		in.Body = string(ev.body)
	}
	if prg.Uses(checks.CELHeaders) {
		in.Headers = make(map[string]string, len(ev.resp.Header))
		for k, v := range ev.resp.Header {
			in.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
	}
	if prg.Uses(checks.CELJSON) {
		if doc, err := ev.decodeJSON(); err == nil {
			in.JSON = doc
		}
	}
	return in
}

// celReason evaluates prg over the response and returns why it failed,
// or "" when it held: the expression and the values it read, redacted
// and bounded.
func celReason(prg *checks.CELProgram, ev *evaluation) string {
	ctx := ev.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	out := prg.Eval(ctx, celInput(prg, ev))
	if out.OK {
		return ""
	}
	redact := ev.redactFn()
	var b strings.Builder
	b.WriteString("cel: ")
	b.WriteString(wire.Clip(redact(strings.Join(strings.Fields(prg.String()), " ")), maxCELExprQuote))
	if out.Err != nil {
		b.WriteString(": ")
		b.WriteString(wire.Clip(redact(out.Err.Error()), maxCELValueQuote))
	} else {
		b.WriteString(" is false")
	}
	if len(out.Values) > 0 {
		parts := make([]string, 0, len(out.Values))
		for _, v := range out.Values {
			parts = append(parts, v.Expr+" = "+wire.Clip(redact(celValueText(v.Value)), maxCELValueQuote))
		}
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	if ev.truncated {
		b.WriteString(ev.truncNote())
	}
	return wire.Clip(b.String(), maxCELReason)
}

// celValueText renders a value an expression read, briefly.
func celValueText(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(wire.Clip(x, maxCELValueQuote))
	case map[string]string:
		keys := slices.Sorted(maps.Keys(x))
		return fmt.Sprintf("{%d keys: %s}", len(keys), strings.Join(keys[:min(len(keys), 8)], ", "))
	case map[string]float64:
		keys := slices.Sorted(maps.Keys(x))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %.3f", k, x[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case http.Header:
		return fmt.Sprintf("{%d headers}", len(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
