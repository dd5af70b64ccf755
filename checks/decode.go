package checks

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The loader walks yaml.Node trees itself instead of calling node.Decode:
// yaml.v3 drops KnownFields inside custom unmarshalers (go-yaml #460) and its
// errors carry no column. Walking the tree lets every error name its exact
// position, lets all errors be reported at once, and lets ${ENV} expansion
// happen per scalar so positions stay true and expanded values never reach a
// message.

// Source records where a mapping and each of its keys were written, so that
// validation can point at the exact line of the offending key.
type Source struct {
	Pos  Pos
	keys map[string]Pos
	// env records the keys whose value used an ${ENV} reference.
	env map[string]bool
}

// At returns the position of key's value, or of the mapping if key is absent.
// List items are addressed as "key[i]".
func (s *Source) At(key string) Pos {
	if p, ok := s.keys[key]; ok {
		return p
	}
	return s.Pos
}

// Has reports whether key was written in the mapping.
func (s *Source) Has(key string) bool {
	_, ok := s.keys[key]
	return ok
}

// fromEnv reports whether key's value used an ${ENV} reference, so that a
// message about it can avoid showing even part of it.
func (s *Source) fromEnv(key string) bool { return s.env[key] }

// scalar is one expanded YAML scalar as a leaf type sees it.
type scalar struct {
	Value string
	Tag   string // the YAML tag before expansion, e.g. "!!int"
	// Show is how a message may refer to the value: quoted when written
	// literally, "the value of ${NAME}" when it came from the environment.
	Show    string
	FromEnv bool
}

// scalarDecoder is implemented by leaf types that parse one scalar. Errors
// must not contain the value; use s.Show to refer to it.
type scalarDecoder interface {
	decodeScalar(s scalar) error
}

// nodeDecoder is implemented by types whose YAML form is richer than one
// scalar (a scalar or a list, a mapping with computed keys).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

type decoder struct {
	file string
	// raw is the file's text, for positions inside a value (CELExpr).
	raw    []byte
	lookup LookupEnv
	errs   *errorList
	check  string // id of the check being decoded, for error messages
	// secrets collects every value substituted from the environment.
	secrets map[string]struct{}
	// envUsed is set when a scalar used an ${ENV} reference; decodeFields
	// records it per key in Source.
	envUsed bool
	// budget is how many more nodes may be decoded. Aliases let a small
	// file name one mapping millions of times; see spend.
	budget int
	// merging holds the merge sources being applied, to stop a mapping
	// that merges itself.
	merging map[*yaml.Node]bool
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	regexpPtrType = reflect.TypeFor[*regexp.Regexp]()
	prefixType    = reflect.TypeFor[netip.Prefix]()
	sourceType    = reflect.TypeFor[Source]()
	timeType      = reflect.TypeFor[time.Time]()
	checkType     = reflect.TypeFor[Check]()
)

// The spellings of a boolean: YAML 1.2's, which yaml.v3 resolves too. The
// schema (schema.go) offers the same.
var (
	trueWords  = []string{"true", "True", "TRUE"}
	falseWords = []string{"false", "False", "FALSE"}
)

// nodeBudget is the number of nodes a document of n written nodes may
// decode to: generous for configs that share blocks through aliases, small
// enough that a billion-laughs document fails in well under a second.
func nodeBudget(n int) int { return 10*n + 100_000 }

// countNodes counts the nodes of a tree as written, not following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, x := range n.Content {
		c += countNodes(x)
	}
	return c
}

// spend counts one node against the budget and reports whether decoding may
// go on. Exhausting it is reported once.
func (d *decoder) spend(n *yaml.Node) bool {
	d.budget--
	if d.budget == 0 {
		d.errorf(n, "the document expands to too many values through aliases (*name)")
	}
	return d.budget > 0
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(d.pos(n), d.check, format, args...)
}

// errAt reports an error at n prefixed with the key path, if any.
func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.errs.add(d.pos(n), d.check, "%s", msg)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a string"
	}
	return "an unsupported YAML node"
}

// scalar expands and returns n's value. It reports an error and returns
// false if n is not a scalar or the expansion fails.
func (d *decoder) scalar(n *yaml.Node, path, want string) (scalar, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errAt(n, path, "expected %s, got %s", want, describe(n))
		return scalar{}, false
	}
	x, err := expandEnv(n.Value, d.lookup)
	if err != nil {
		d.errAt(n, path, "%v", err)
		return scalar{}, false
	}
	for _, v := range x.fromEnv {
		d.secrets[v] = struct{}{}
	}
	s := scalar{Value: x.value, Tag: n.Tag, FromEnv: len(x.refs) > 0}
	if s.FromEnv {
		d.envUsed = true
		s.Show = "the value of ${" + strings.Join(x.refs, "}, ${") + "}"
	} else {
		s.Show = quoteShort(x.value)
	}
	return s, true
}

func quoteShort(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode stores n into v, reporting every problem found.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if !d.spend(n) {
		return
	}
	if v.CanAddr() {
		switch x := v.Addr().Interface().(type) {
		case *Secret:
			d.decodeSecret(n, path, x)
			return
		case nodeDecoder:
			x.decodeNode(d, n, path)
			return
		case scalarDecoder:
			if s, ok := d.scalar(n, path, "a value"); ok {
				if err := x.decodeScalar(s); err != nil {
					d.errAt(n, path, "%v", err)
				}
			}
			return
		}
	}
	switch v.Type() {
	case durationType:
		if s, ok := d.scalar(n, path, "a duration such as 30s"); ok {
			dur, err := time.ParseDuration(s.Value)
			switch {
			case err != nil:
				d.errAt(n, path, "%s is not a duration: use a number and a unit, such as 30s, 2m or 1h30m", s.Show)
			case dur < 0:
				d.errAt(n, path, "%s is negative", s.Show)
			default:
				v.SetInt(int64(dur))
			}
		}
		return
	case regexpPtrType:
		if s, ok := d.scalar(n, path, "a regular expression"); ok {
			re, err := regexp.Compile(s.Value)
			if err != nil {
				msg := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
				if s.FromEnv {
					msg = "invalid syntax"
				}
				d.errAt(n, path, "%s is not a valid regular expression: %s", s.Show, msg)
				return
			}
			v.Set(reflect.ValueOf(re))
		}
		return
	case timeType:
		if s, ok := d.scalar(n, path, "a time such as 2026-11-21T02:00:00Z"); ok {
			t, err := time.Parse(time.RFC3339, s.Value)
			if err != nil {
				d.errAt(n, path, "%s is not a time: use RFC 3339, such as 2026-11-21T02:00:00+01:00", s.Show)
				return
			}
			v.Set(reflect.ValueOf(t))
		}
		return
	case prefixType:
		if s, ok := d.scalar(n, path, "an address or CIDR"); ok {
			p, err := parsePrefix(s.Value)
			if err != nil {
				d.errAt(n, path, "%s is not an IP address or CIDR prefix (such as 203.0.113.0/24)", s.Show)
				return
			}
			v.Set(reflect.ValueOf(p))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Type().Elem().Kind() == reflect.Struct {
			// "console:" with nothing after it still selects the block.
			d.decode(&yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}, v.Elem(), path)
			return
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s.Value)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			switch {
			case slices.Contains(trueWords, s.Value):
				v.SetBool(true)
			case slices.Contains(falseWords, s.Value):
				v.SetBool(false)
			default:
				d.errAt(n, path, "expected true or false, got %s", s.Show)
			}
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if s, ok := d.scalar(n, path, "an integer"); ok {
			i, err := strconv.ParseInt(s.Value, 0, v.Type().Bits())
			if err != nil {
				d.errAt(n, path, "expected an integer, got %s", s.Show)
				return
			}
			v.SetInt(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path, "a number"); ok {
			f, err := strconv.ParseFloat(s.Value, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				d.errAt(n, path, "expected a number, got %s", s.Show)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Interface:
		// Free-form values (JSON expectations). Strings are expanded.
		val, ok := d.anyValue(n, path)
		if ok && val != nil {
			v.Set(reflect.ValueOf(val))
		}
	default:
		panic(fmt.Sprintf("checks: decoder cannot handle %s", v.Type()))
	}
}

// anyValue decodes a free-form scalar into string, int64, float64, bool or nil.
func (d *decoder) anyValue(n *yaml.Node, path string) (any, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, path, "expected a string, number, boolean or null, got %s", describe(n))
		return nil, false
	}
	if n.Tag == "!!null" {
		return nil, true
	}
	s, ok := d.scalar(n, path, "a value")
	if !ok {
		return nil, false
	}
	switch n.Tag {
	case "!!int":
		if i, err := strconv.ParseInt(s.Value, 0, 64); err == nil {
			return float64(i), true
		}
	case "!!float":
		if f, err := strconv.ParseFloat(s.Value, 64); err == nil {
			return f, true
		}
	case "!!bool":
		return strings.EqualFold(s.Value, "true"), true
	}
	return s.Value, true
}

type fieldInfo struct {
	name  string
	index []int
}

type structInfo struct {
	fields []fieldInfo
	source []int // index of the Source field, if any
}

func fieldsOf(t reflect.Type) structInfo {
	var info structInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if f.Type == sourceType {
			info.source = f.Index
			continue
		}
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			inner := fieldsOf(f.Type)
			for _, in := range inner.fields {
				info.fields = append(info.fields, fieldInfo{name: in.name, index: append([]int{i}, in.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		info.fields = append(info.fields, fieldInfo{name: name, index: f.Index})
	}
	return info
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	info := fieldsOf(v.Type())
	var src *Source
	if info.source != nil {
		src = v.FieldByIndex(info.source).Addr().Interface().(*Source)
		src.Pos = d.pos(n)
		if src.keys == nil {
			src.keys = map[string]Pos{}
		}
		if src.env == nil {
			src.env = map[string]bool{}
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	d.decodeFields(n, v, path, info, src, map[string]bool{})
}

// decodeFields decodes the keys of mapping n into struct v, skipping the
// keys in done. As YAML merge keys require, the keys written in a mapping
// win over the ones it merges wherever the << is, and an earlier merge
// source wins over a later one.
func (d *decoder) decodeFields(n *yaml.Node, v reflect.Value, path string, info structInfo, src *Source, done map[string]bool) {
	seen := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if seen[k.Value] {
			d.errAt(k, path, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		f, ok := lookupField(info, k.Value)
		if !ok {
			d.errAt(k, path, "unknown key %q%s", k.Value, suggest(k.Value, info))
			continue
		}
		if done[k.Value] {
			continue
		}
		field := v.FieldByIndex(f.index)
		if src != nil {
			src.keys[k.Value] = d.pos(val)
			switch rv := resolve(val); {
			case rv.Kind == yaml.SequenceNode:
				for j, item := range rv.Content {
					src.keys[fmt.Sprintf("%s[%d]", k.Value, j)] = d.pos(item)
				}
			case rv.Kind == yaml.MappingNode && field.Kind() == reflect.Map:
				// "labels.team" is where the key team of labels is written.
				for j := 0; j+1 < len(rv.Content); j += 2 {
					src.keys[k.Value+"."+rv.Content[j].Value] = d.pos(rv.Content[j])
				}
			}
		}
		outer := d.envUsed
		d.envUsed = false
		d.decode(val, field, joinPath(path, k.Value))
		if src != nil && d.envUsed {
			src.env[k.Value] = true
		}
		d.envUsed = d.envUsed || outer
	}
	for k := range seen {
		done[k] = true
	}
	for _, m := range merges {
		d.decodeMerge(m, v, path, info, src, done)
	}
}

// decodeMerge applies a YAML merge key ("<<: *base") to a struct.
func (d *decoder) decodeMerge(n *yaml.Node, v reflect.Value, path string, info structInfo, src *Source, done map[string]bool) {
	n = resolve(n)
	if !d.spend(n) {
		return
	}
	if d.merging[n] {
		d.errAt(n, path, "<< merges a mapping into itself")
		return
	}
	if d.merging == nil {
		d.merging = map[*yaml.Node]bool{}
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	switch n.Kind {
	case yaml.MappingNode:
		d.decodeFields(n, v, path, info, src, done)
	case yaml.SequenceNode:
		for _, item := range n.Content {
			d.decodeMerge(item, v, path, info, src, done)
		}
	default:
		d.errAt(n, path, "<< must merge a mapping, got %s", describe(n))
	}
}

func lookupField(info structInfo, name string) (fieldInfo, bool) {
	for _, f := range info.fields {
		if f.name == name {
			return f, true
		}
	}
	return fieldInfo{}, false
}

// misplaced says where keys commonly written at the wrong level belong.
var misplaced = map[string]string{
	"cert_warn_days": "; cert_warn_days goes on http: or tls: itself, not under expect: (it warns, it does not fail the check)",
}

// suggest names the closest known key, or lists them all.
func suggest(key string, info structInfo) string {
	if hint, ok := misplaced[key]; ok {
		return hint
	}
	best, bestDist := "", 3
	names := make([]string, 0, len(info.fields))
	for _, f := range info.fields {
		names = append(names, f.name)
		if dist := levenshtein(strings.ToLower(key), f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errAt(n, path, "expected a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	isCheck := v.Type().Elem() == checkType
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if isCheck {
			d.check = peekID(item)
			p = ""
		}
		d.decode(item, out.Index(i), p)
	}
	if isCheck {
		d.check = ""
	}
	v.Set(out)
}

// peekID returns the literal id of a check mapping, for error messages
// about the rest of it.
func peekID(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errAt(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("checks: map keys must be strings")
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			d.errAt(k, path, "keys must be plain strings, got %s", describe(k))
			continue
		}
		key := reflect.ValueOf(k.Value).Convert(v.Type().Key())
		if out.MapIndex(key).IsValid() {
			d.errAt(k, path, "key %q appears twice", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, joinPath(path, k.Value))
		out.SetMapIndex(key, elem)
	}
	v.Set(out)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
