package probes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// httpStep is one request, compiled from the check at construction.
type httpStep struct {
	name      string
	method    string
	url       string
	headers   [][2]string
	query     map[string]string
	body      []byte
	templated bool // the body holds {{name}} references
	expect    httpExpect
	captures  []namedCapture
}

type namedCapture struct {
	name string
	spec *checks.Capture
}

func newHTTPStep(name string, r *checks.HTTPRequest, fileBody []byte, caps map[string]*checks.Capture, common map[string]string) *httpStep {
	st := &httpStep{name: name, method: r.Method, url: r.URL, query: r.Query}
	// Headers common to every step first, so a step's own override them.
	seen := map[string]bool{}
	for k, v := range r.Headers {
		st.headers = append(st.headers, [2]string{k, v})
		seen[http.CanonicalHeaderKey(k)] = true
	}
	for k, v := range common {
		if !seen[http.CanonicalHeaderKey(k)] {
			st.headers = append(st.headers, [2]string{k, v})
		}
	}
	switch {
	case r.Body != "":
		st.body = []byte(r.Body)
	case fileBody != nil:
		st.body = fileBody
	}
	st.templated = templateRE.Match(st.body)
	st.expect = httpExpect{spec: r.Expect}
	for n, c := range caps {
		st.captures = append(st.captures, namedCapture{n, c})
	}
	return st
}

var templateRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// expandVars replaces {{name}} with captured values. Validation guarantees
// every name is captured by an earlier step.
func expandVars(s string, vars map[string]string) string {
	if len(vars) == 0 || !strings.Contains(s, "{{") {
		return s
	}
	return templateRE.ReplaceAllStringFunc(s, func(m string) string {
		return vars[templateRE.FindStringSubmatch(m)[1]]
	})
}

func expandVarsBytes(b []byte, vars map[string]string, templated bool) []byte {
	if !templated {
		return b
	}
	return []byte(expandVars(string(b), vars))
}

// evaluation is a response as the expectations see it.
type evaluation struct {
	resp      *http.Response
	body      []byte
	truncated bool
	limit     int64
	connected string
	tls       *wire.TLSObservation
	now       time.Time
	// headers collects the asserted headers' values as evidence,
	// redacted by redact (nil: not at all).
	headers map[string]string
	redact  func(string) string
	json    any
	jsonErr error
	decoded bool
	// ctx bounds a CEL evaluation; timings are the phases so far, in
	// seconds, for CEL.
	ctx     context.Context
	timings map[string]float64
}

// redactFn is ev.redact, or the identity when it is nil.
func (ev *evaluation) redactFn() func(string) string {
	if ev.redact == nil {
		return func(s string) string { return s }
	}
	return ev.redact
}

func (ev *evaluation) decodeJSON() (any, error) {
	if !ev.decoded {
		ev.decoded = true
		dec := json.NewDecoder(bytes.NewReader(ev.body))
		if err := dec.Decode(&ev.json); err != nil {
			ev.jsonErr = err
			if ev.truncated {
				ev.jsonErr = fmt.Errorf("%v (body truncated at %d bytes)", err, ev.limit)
			}
		}
	}
	return ev.json, ev.jsonErr
}

// truncNote explains a body assertion that may have failed only because the
// body was cut at max_body_bytes.
func (ev *evaluation) truncNote() string {
	if ev.truncated {
		return fmt.Sprintf(" (only the first %d bytes were read; raise max_body_bytes)", ev.limit)
	}
	return ""
}

type httpExpect struct {
	spec *checks.HTTPExpect
	// cel is spec.CEL's program, built once by newHTTP.
	cel *checks.CELProgram
}

var default2xx = checks.StatusSet{{Lo: 200, Hi: 299}}

// check returns every expectation the response fails.
func (x httpExpect) check(ev *evaluation) []string {
	var f []string
	e := x.spec
	status := default2xx
	if e != nil && len(e.Status) > 0 {
		status = e.Status
	}
	if code := ev.resp.StatusCode; !status.Contains(code) {
		f = append(f, fmt.Sprintf("status %d, want %s", code, status))
	}
	if e == nil {
		return f
	}
	if e.BodyContains != "" && !bytes.Contains(ev.body, []byte(e.BodyContains)) {
		f = append(f, fmt.Sprintf("body does not contain %q%s", e.BodyContains, ev.truncNote()))
	}
	if e.BodyNotContains != "" && bytes.Contains(ev.body, []byte(e.BodyNotContains)) {
		f = append(f, fmt.Sprintf("body contains %q", e.BodyNotContains))
	}
	if e.BodyRegex != nil && !e.BodyRegex.Match(ev.body) {
		f = append(f, fmt.Sprintf("body does not match %s%s", e.BodyRegex, ev.truncNote()))
	}
	for _, a := range e.JSON {
		doc, err := ev.decodeJSON()
		if err != nil {
			f = append(f, fmt.Sprintf("body is not JSON: %s", wire.Clip(err.Error(), 120)))
			break
		}
		got, err := a.Path.Eval(doc)
		switch {
		case err != nil:
			f = append(f, fmt.Sprintf("%s: %v", a.Path, err))
		case !checks.JSONEqual(got, a.Want):
			f = append(f, fmt.Sprintf("%s = %s, want %s", a.Path, checks.FormatJSONValue(got), checks.FormatJSONValue(a.Want)))
		}
	}
	for name, re := range e.Headers {
		vals, ok := ev.resp.Header[http.CanonicalHeaderKey(name)]
		if ev.headers == nil {
			ev.headers = map[string]string{}
		}
		if !ok {
			f = append(f, fmt.Sprintf("header %s missing, want match %s", name, re))
			continue
		}
		// Redact before cutting: a secret cut in two would no longer be
		// recognised. Match what the server sent.
		raw := strings.Join(vals, ", ")
		v := wire.Clip(ev.redactFn()(raw), 200)
		ev.headers[http.CanonicalHeaderKey(name)] = v
		if !re.MatchString(wire.Clip(raw, 200)) {
			f = append(f, fmt.Sprintf("header %s = %q, want match %s", name, v, re))
		}
	}
	if msg, ok := addressAllowed(ev.connected, e.Addresses); !ok {
		f = append(f, msg)
	}
	if e.Fresh != nil {
		if msg := freshness(e.Fresh, ev); msg != "" {
			f = append(f, msg)
		}
	}
	if x.cel != nil {
		if msg := celReason(x.cel, ev); msg != "" {
			f = append(f, msg)
		}
	}
	if e.CertMinDays > 0 {
		if ev.tls == nil {
			f = append(f, "no TLS certificate to check (the response came over plain HTTP)")
		} else if msg, ok := certDaysReason(ev.tls, e.CertMinDays, ev.now); !ok {
			f = append(f, msg)
		}
	}
	return f
}

// capture extracts the step's captures into vars, or explains which failed.
func (st *httpStep) capture(ev *evaluation, vars map[string]string) string {
	for _, c := range st.captures {
		switch {
		case !c.spec.JSON.IsZero():
			doc, err := ev.decodeJSON()
			if err != nil {
				return fmt.Sprintf("capture %s: body is not JSON: %s", c.name, wire.Clip(err.Error(), 120))
			}
			v, err := c.spec.JSON.Eval(doc)
			if err != nil {
				return fmt.Sprintf("capture %s: %s: %v", c.name, c.spec.JSON, err)
			}
			switch x := v.(type) {
			case string:
				vars[c.name] = x
			case float64, bool:
				vars[c.name] = checks.FormatJSONValue(x)
			default:
				return fmt.Sprintf("capture %s: %s is %s, want a string or number", c.name, c.spec.JSON, checks.FormatJSONValue(v))
			}
		case c.spec.Header != "":
			v := ev.resp.Header.Get(c.spec.Header)
			if v == "" {
				return fmt.Sprintf("capture %s: no %s header in the response", c.name, c.spec.Header)
			}
			if strings.EqualFold(c.spec.Header, "Location") && ev.resp.Request != nil {
				if u, err := ev.resp.Request.URL.Parse(v); err == nil {
					v = u.String()
				}
			}
			vars[c.name] = v
		case c.spec.Regex != nil:
			m := c.spec.Regex.FindSubmatch(ev.body)
			if m == nil {
				return fmt.Sprintf("capture %s: body does not match %s%s", c.name, c.spec.Regex, ev.truncNote())
			}
			vars[c.name] = string(m[1])
		}
	}
	return ""
}

// freshness checks a response time against max_age and returns the
// failure, if any. JSON values may be RFC 3339 strings or Unix seconds;
// headers may be HTTP dates (Last-Modified) or RFC 3339.
func freshness(f *checks.Freshness, ev *evaluation) string {
	var (
		t    time.Time
		what string
	)
	if !f.JSON.IsZero() {
		what = f.JSON.String()
		doc, err := ev.decodeJSON()
		if err != nil {
			return fmt.Sprintf("fresh: body is not JSON: %s", wire.Clip(err.Error(), 120))
		}
		v, err := f.JSON.Eval(doc)
		if err != nil {
			return fmt.Sprintf("fresh: %s: %v", what, err)
		}
		switch x := v.(type) {
		case string:
			if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
				return fmt.Sprintf("fresh: %s = %s is not an RFC 3339 time", what, checks.FormatJSONValue(x))
			}
		case float64:
			t = time.Unix(0, int64(x*1e9))
		default:
			return fmt.Sprintf("fresh: %s = %s is not a time", what, checks.FormatJSONValue(v))
		}
	} else {
		what = "header " + f.Header
		v := ev.resp.Header.Get(f.Header)
		if v == "" {
			return fmt.Sprintf("fresh: no %s header", f.Header)
		}
		var err error
		if t, err = http.ParseTime(v); err != nil {
			if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Sprintf("fresh: %s = %q is not a time", what, wire.Clip(v, 80))
			}
		}
	}
	age := ev.now.Sub(t)
	if age <= f.MaxAge {
		return ""
	}
	return fmt.Sprintf("stale: %s = %s, %s old, want at most %s", what, t.UTC().Format(time.RFC3339), roundDuration(age).Round(time.Second), f.MaxAge)
}
