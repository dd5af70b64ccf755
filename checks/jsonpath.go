package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// JSONPath is a small subset of JSONPath: "$" followed by ".name",
// "['name']" or "[index]" steps, e.g. "$.items[0].status". It selects one
// value; there are no wildcards or filters.
type JSONPath struct {
	raw   string
	steps []pathStep
}

type pathStep struct {
	key   string
	index int // used when key == "" and isIdx
	isIdx bool
}

// maxPathSteps bounds the work a path can ask for.
const maxPathSteps = 64

// ParseJSONPath compiles a path.
func ParseJSONPath(s string) (JSONPath, error) {
	p := JSONPath{raw: s}
	rest := strings.TrimSpace(s)
	if !strings.HasPrefix(rest, "$") {
		return p, errors.New("must start with $")
	}
	rest = rest[1:]
	for rest != "" {
		if len(p.steps) == maxPathSteps {
			return p, fmt.Errorf("more than %d steps", maxPathSteps)
		}
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if name == "" {
				return p, errors.New("empty name after '.'")
			}
			p.steps = append(p.steps, pathStep{key: name})
			rest = rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return p, errors.New("missing ']'")
			}
			inner := strings.TrimSpace(rest[1:end])
			rest = rest[end+1:]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
				p.steps = append(p.steps, pathStep{key: inner[1 : len(inner)-1]})
				continue
			}
			i, err := strconv.Atoi(inner)
			if err != nil || i < 0 {
				return p, fmt.Errorf("[%s] is neither a quoted name nor an index >= 0", inner)
			}
			p.steps = append(p.steps, pathStep{index: i, isIdx: true})
		default:
			return p, fmt.Errorf("unexpected %q: steps are .name, ['name'] or [index]", rest[0])
		}
	}
	return p, nil
}

func (p JSONPath) String() string { return p.raw }

// IsZero reports whether the path was never set.
func (p JSONPath) IsZero() bool { return p.raw == "" }

// ErrNoValue is returned by Eval when the path selects nothing.
var ErrNoValue = errors.New("no value")

// Eval selects the value at p in doc, a value decoded by encoding/json into
// any. A step that does not fit the document is ErrNoValue, wrapped with the
// step that failed.
func (p JSONPath) Eval(doc any) (any, error) {
	cur := doc
	for i, st := range p.steps {
		switch v := cur.(type) {
		case map[string]any:
			if st.isIdx {
				return nil, fmt.Errorf("%w: step %d wants an array, found an object", ErrNoValue, i+1)
			}
			next, ok := v[st.key]
			if !ok {
				return nil, fmt.Errorf("%w: no key %q", ErrNoValue, st.key)
			}
			cur = next
		case []any:
			if !st.isIdx {
				return nil, fmt.Errorf("%w: step %d wants an object, found an array", ErrNoValue, i+1)
			}
			if st.index >= len(v) {
				return nil, fmt.Errorf("%w: index %d out of range (length %d)", ErrNoValue, st.index, len(v))
			}
			cur = v[st.index]
		default:
			return nil, fmt.Errorf("%w: step %d reaches a %s", ErrNoValue, i+1, jsonKind(cur))
		}
	}
	return cur, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

func (p *JSONPath) decodeScalar(s scalar) error {
	q, err := ParseJSONPath(s.Value)
	if err != nil {
		return fmt.Errorf("%s is not a JSON path: %v", s.Show, err)
	}
	*p = q
	return nil
}

// JSONAssertion is one "path: expected value" pair of an HTTP expectation.
type JSONAssertion struct {
	Path JSONPath
	// Want is a string, float64, bool or nil, compared with the JSON value
	// at Path by JSONEqual.
	Want any
}

// JSONExpect is the list of JSON assertions, written as a mapping from path
// to expected value.
type JSONExpect []JSONAssertion

func (e *JSONExpect) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping from JSON path to value, got %s", describe(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		jp, err := ParseJSONPath(k.Value)
		if err != nil {
			d.errAt(k, path, "%q is not a JSON path: %v", k.Value, err)
			continue
		}
		want, ok := d.anyValue(val, joinPath(path, k.Value))
		if !ok {
			continue
		}
		*e = append(*e, JSONAssertion{Path: jp, Want: want})
	}
}

// JSONEqual compares a decoded JSON value with an expected scalar. Numbers
// compare by value; a string expectation also matches the JSON text of a
// number or boolean ("200" matches 200).
func JSONEqual(got, want any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case float64:
		g, ok := got.(float64)
		return ok && g == w
	case string:
		switch g := got.(type) {
		case string:
			return g == w
		case float64:
			return strconv.FormatFloat(g, 'f', -1, 64) == w
		case bool:
			return strconv.FormatBool(g) == w
		}
	}
	return false
}

// FormatJSONValue renders a decoded JSON value briefly for a reason.
func FormatJSONValue(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return fmt.Sprintf("an object with %d keys", len(x))
	case []any:
		return fmt.Sprintf("an array of %d items", len(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
