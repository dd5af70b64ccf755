package checks

import (
	"bytes"
	_ "embed" // schema.json
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The JSON Schema of a configuration file is generated from the types the
// loader decodes into, never written by hand: the keys come from fieldsOf,
// the loader's own reading of the yaml tags, so that a key the loader
// knows is a key the schema knows; every mapping is closed
// (additionalProperties: false) because the loader rejects unknown keys
// everywhere; leaf types get the schema of what their decoder accepts,
// with ${ENV} wherever the loader expands it (in every scalar); and the
// enumerations are the lists the validator checks against.
//
// What only the validator can judge (references between checks,
// notifiers and regions, a quorum larger than the regions, ranges,
// timeouts below intervals) is left to "outpost validate".
//
// schema.json is checked in and embedded; TestSchemaUpToDate fails when it
// differs from what the types give now. Regenerate it with:
//
//go:generate go test -run ^TestSchemaUpToDate$ -update .

// SchemaURL is where the checked-in schema is published: its $id, and what
// a "# yaml-language-server: $schema=" line points editors at.
const SchemaURL = "https://raw.githubusercontent.com/outposthq/outpost/main/checks/schema.json"

//go:embed schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft-07) of one configuration file, as
// checked in at checks/schema.json. A file that the loader accepts passes
// it; it rejects unknown keys, values of the wrong type, unknown
// enumeration values, missing required keys and a check or notifier with
// no type or two. Cross-references and ranges are the validator's.
func Schema() []byte { return bytes.Clone(schemaJSON) }

// jsonSchema is one schema object; encoding/json writes its keys sorted,
// so the output is stable.
type jsonSchema = map[string]any

// envRef matches a string that holds an ${ENV} reference, which the
// loader expands in any scalar before decoding it.
const envRef = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// withEnv is a pattern accepting a whole string matching p, or any string
// with an ${ENV} reference (whose value is known only at load).
func withEnv(p string) string { return "^(?:" + p + ")$|" + envRef }

// alternation is a pattern matching one of words exactly; with caseless,
// in any case.
func alternation(words []string, caseless bool) string {
	parts := make([]string, len(words))
	for i, w := range words {
		if !caseless {
			parts[i] = regexp.QuoteMeta(w)
			continue
		}
		var b strings.Builder
		for _, r := range w {
			lo, up := strings.ToLower(string(r)), strings.ToUpper(string(r))
			if lo == up {
				b.WriteString(regexp.QuoteMeta(string(r)))
			} else {
				b.WriteString("[" + lo + up + "]")
			}
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, "|")
}

// enumSchema offers words (for completion) and, since the value may come
// from the environment, any ${ENV} string; with caseless, any case of
// words.
func enumSchema(words []string, caseless bool) jsonSchema {
	enum := make([]any, len(words))
	for i, w := range words {
		enum[i] = w
	}
	alt := jsonSchema{"type": "string", "pattern": envRef}
	if caseless {
		alt["pattern"] = withEnv(alternation(words, true))
	}
	return jsonSchema{"anyOf": []any{jsonSchema{"enum": enum}, alt}}
}

func ref(name string) jsonSchema { return jsonSchema{"$ref": "#/definitions/" + name} }

// durationPattern is what time.ParseDuration accepts, without a sign: the
// loader refuses negative durations.
const durationPattern = `\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)`

// integerPattern is what strconv.ParseInt with base 0 accepts: the loader
// reads an integer from the scalar's text, quoted or not.
const integerPattern = `[+-]?([0-9][0-9_]*|0[xX][0-9a-fA-F_]+|0[oObB][0-7_]+)`

// leafDefinitions are the shared schemas of the loader's leaf types, by
// definition name.
func leafDefinitions() map[string]jsonSchema {
	units := make([]string, len(sizeUnits))
	for i, u := range sizeUnits {
		units[i] = u.suffix
	}
	tlsNames := slices.Sorted(maps.Keys(tlsVersionNames))
	var tlsNumbers []any
	for _, n := range tlsNames {
		f, _ := strconv.ParseFloat(n, 64)
		tlsNumbers = append(tlsNumbers, f)
	}
	status := jsonSchema{"anyOf": []any{
		jsonSchema{"type": "integer", "minimum": 100, "maximum": 599},
		jsonSchema{"type": "string", "pattern": withEnv(`\s*(\+?[0-9]+|[1-5][xX][xX]|\+?[0-9]+\s*-\s*\+?[0-9]+)\s*`)},
	}}
	return map[string]jsonSchema{
		"text": {
			"description": "Text; a number or boolean written here is read as its text.",
			"type":        []any{"string", "number", "boolean"},
		},
		"integer": {
			"description": "An integer (quoted or not), or an ${ENV} reference to one.",
			"anyOf": []any{
				jsonSchema{"type": "integer"},
				jsonSchema{"type": "string", "pattern": withEnv(integerPattern)},
			},
		},
		"number": {
			"description": "A number (quoted or not), or an ${ENV} reference to one.",
			"anyOf": []any{
				jsonSchema{"type": "number"},
				jsonSchema{"type": "string", "pattern": withEnv(`[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`)},
			},
		},
		"boolean": {
			"description": "true or false, or an ${ENV} reference to one.",
			"anyOf": []any{
				jsonSchema{"type": "boolean"},
				jsonSchema{"type": "string", "pattern": withEnv(alternation(slices.Concat(trueWords, falseWords), false))},
			},
		},
		"duration": {
			"description": "A duration: a number and a unit (ns, us, ms, s, m, h), such as 30s, 2m or 1h30m; 0 leaves the default.",
			"anyOf": []any{
				jsonSchema{"type": "string", "pattern": withEnv(durationPattern)},
				jsonSchema{"const": 0},
			},
		},
		"secret": {
			"description": "A credential, written as an ${ENV} reference such as ${PAGERDUTY_ROUTING_KEY}: a literal value would end up in version control.",
			"type":        "string",
			"pattern":     envRef,
		},
		"quorum": {
			"description": "How many of a check's live regions must agree: a count, majority, all, or a fraction such as 2/3.",
			"anyOf": []any{
				jsonSchema{"type": "integer", "minimum": 1},
				jsonSchema{"type": "string", "pattern": withEnv(`\s*(majority|all|\+?[0-9]+|\+?[0-9]+/\+?[0-9]+)\s*`)},
			},
		},
		"size": {
			"description": "A number of bytes, as an integer or with a unit: " + strings.Join(units, ", ") + ".",
			"anyOf": []any{
				jsonSchema{"type": "integer", "minimum": 0},
				jsonSchema{"type": "string", "pattern": withEnv(`\s*\+?[0-9]+\s*(` + alternation(units, false) + `)?\s*`)},
			},
		},
		"shards": {
			"description": "A set of shards: numbers and ranges, comma-separated, such as 0-31 or 0-15,32-47.",
			"anyOf": []any{
				jsonSchema{"type": "integer", "minimum": 0},
				jsonSchema{"type": "string", "pattern": withEnv(`\s*[0-9]+(\s*-\s*[0-9]+)?(\s*,\s*[0-9]+(\s*-\s*[0-9]+)?)*\s*`)},
			},
		},
		"ttl": {
			"description": "A time to live: seconds (300) or a duration (5m).",
			"anyOf": []any{
				jsonSchema{"type": "integer", "minimum": 0, "maximum": 1<<32 - 1},
				jsonSchema{"type": "string", "pattern": withEnv(`\s*(\+?[0-9]+|` + durationPattern + `)\s*`)},
			},
		},
		"tlsVersion": {
			"description": "A TLS version: 1.0, 1.1, 1.2 or 1.3.",
			"anyOf": []any{
				jsonSchema{"enum": tlsNumbers},
				jsonSchema{"type": "string", "pattern": withEnv(`\s*([tT][lL][sS])?(` + alternation(tlsNames, false) + `)\s*`)},
			},
		},
		"status": {
			"description": "Acceptable HTTP statuses: a code, a class (2xx), a range (200-299), or a list of them.",
			"anyOf": []any{
				status,
				jsonSchema{"type": "array", "minItems": 1, "items": status},
			},
		},
		"cel": {
			"description": "A CEL expression over the response (status, headers, body, json, timings) that must be true, such as json.lag_seconds < 30.",
			"type":        "string",
			"minLength":   1,
			"maxLength":   MaxCELBytes,
		},
		"regexp": {
			"description": "A regular expression in Go's RE2 syntax.",
			"type":        []any{"string", "number", "boolean"},
		},
		"time": {
			"description": "A time in RFC 3339, such as 2026-11-21T02:00:00+01:00.",
			"type":        "string",
			"pattern":     withEnv(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})`),
		},
		"prefix": {
			"description": "An IP address or CIDR prefix, such as 203.0.113.0/24.",
			"type":        "string",
		},
		"jsonPath": {
			"description": "A JSON path: $ followed by .name, ['name'] or [index] steps, such as $.items[0].status.",
			"type":        "string",
			"pattern":     withEnv(`\s*\$.*`),
		},
		"jsonExpect": {
			"description": "JSON assertions: a mapping from a JSON path (such as $.status) to the value expected there.",
			"type":        "object",
			"propertyNames": jsonSchema{
				"pattern": `^\s*\$`,
			},
			"additionalProperties": jsonSchema{"type": []any{"string", "number", "boolean", "null"}},
		},
	}
}

// leafTypes maps each type the decoder handles itself to its definition.
var leafTypes = map[reflect.Type]string{
	durationType:                  "duration",
	regexpPtrType:                 "regexp",
	prefixType:                    "prefix",
	timeType:                      "time",
	reflect.TypeFor[Secret]():     "secret",
	reflect.TypeFor[Quorum]():     "quorum",
	reflect.TypeFor[Size]():       "size",
	reflect.TypeFor[TTL]():        "ttl",
	reflect.TypeFor[ShardSet]():   "shards",
	reflect.TypeFor[TLSVersion](): "tlsVersion",
	reflect.TypeFor[StatusSet]():  "status",
	reflect.TypeFor[JSONPath]():   "jsonPath",
	reflect.TypeFor[JSONExpect](): "jsonExpect",
	reflect.TypeFor[CELExpr]():    "cel",
}

// switchableTypes are the blocks that "false" (or "off") turns off.
var switchableTypes = []reflect.Type{
	reflect.TypeFor[ShapeSpec](), reflect.TypeFor[TailShiftRule](), reflect.TypeFor[SlowRiseRule](),
	reflect.TypeFor[SpikeRule](), reflect.TypeFor[DropRule](), reflect.TypeFor[DipRule](), reflect.TypeFor[LevelShiftRule](), reflect.TypeFor[RecurringRule](),
}

// structRule is what the schema of one mapping says beyond its keys: the
// keys validation requires, groups of alternatives of which exactly one
// must be written (each alternative a list of keys written together),
// and the schema of keys that take one of a fixed set of values.
type structRule struct {
	required []string
	oneOf    [][]string
	values   map[string]jsonSchema
}

func single(names ...string) [][]string {
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = []string{n}
	}
	return out
}

func blockNames(blocks []typeBlock) []string {
	names := make([]string, len(blocks))
	for i, b := range blocks {
		names[i] = b.name
	}
	return names
}

// matching is the schema of a scalar that must match re, one of the
// validator's anchored expressions, once expanded.
func matching(re *regexp.Regexp) jsonSchema {
	return jsonSchema{"type": "string", "pattern": withEnv(strings.TrimSuffix(strings.TrimPrefix(re.String(), "^"), "$"))}
}

// list is the schema of a list of items.
func list(items jsonSchema) jsonSchema {
	return jsonSchema{"type": []any{"array", "null"}, "items": items}
}

// keysMatching is the schema of a mapping whose keys (never expanded)
// match re and whose values are text.
func keysMatching(re *regexp.Regexp) jsonSchema {
	return jsonSchema{
		"type":                 []any{"object", "null"},
		"propertyNames":        jsonSchema{"pattern": re.String()},
		"additionalProperties": ref("text"),
	}
}

// structRules are the rules of each mapping, from the validator's checks.
func structRules() map[reflect.Type]structRule {
	ipProtocol := map[string]jsonSchema{"ip_protocol": enumSchema(ipProtocols, false)}
	headers := keysMatching(headerKeyRE)
	method := matching(methodRE)
	labels := keysMatching(labelRE)
	labels["propertyNames"].(jsonSchema)["not"] = jsonSchema{"enum": toAny(reservedLabels)}
	groupBy := jsonSchema{"anyOf": []any{
		jsonSchema{"enum": toAny(groupFacts)},
		jsonSchema{"type": "string", "pattern": `^labels\..+|` + envRef},
	}}
	return map[reflect.Type]structRule{
		reflect.TypeFor[fileConfig](): {values: map[string]jsonSchema{
			"version": {"anyOf": []any{
				jsonSchema{"const": configVersion},
				jsonSchema{"type": "string", "pattern": withEnv(`\+?0*` + strconv.Itoa(configVersion))},
			}},
			"regions": list(matching(nameRE)),
		}},
		reflect.TypeFor[Check](): {
			required: []string{"id"},
			oneOf:    single(blockNames((&Check{}).typeBlocks())...),
			values: map[string]jsonSchema{
				"id":              matching(idRE),
				"on_disagreement": enumSchema(disagreements, false),
				"labels":          labels,
			},
		},
		reflect.TypeFor[Notifier](): {
			required: []string{"name"},
			oneOf:    single(blockNames((&Notifier{}).typeBlocks())...),
			values: map[string]jsonSchema{
				"name":   matching(nameRE),
				"routes": list(enumSchema(Routes, false)),
			},
		},
		reflect.TypeFor[Agent]():        {required: []string{"region", "key"}, values: map[string]jsonSchema{"name": matching(idRE)}},
		reflect.TypeFor[Peer]():         {required: []string{"name", "url"}, values: map[string]jsonSchema{"name": matching(nameRE)}},
		reflect.TypeFor[Maintenance]():  {required: []string{"name"}, oneOf: [][]string{{"start", "end"}, {"cron", "duration"}}},
		reflect.TypeFor[Escalation]():   {required: []string{"to"}},
		reflect.TypeFor[FailureRule]():  {oneOf: [][]string{{"consecutive"}, {"ratio", "window"}}},
		reflect.TypeFor[RecoveryRule](): {required: []string{"consecutive"}},
		reflect.TypeFor[FlapRule]():     {required: []string{"transitions", "window"}},
		reflect.TypeFor[Grouping]():     {values: map[string]jsonSchema{"by": list(groupBy)}},
		reflect.TypeFor[HTTPSpec](): {
			oneOf:  single("url", "steps"),
			values: map[string]jsonSchema{"ip_protocol": ipProtocol["ip_protocol"], "method": method, "headers": headers},
		},
		reflect.TypeFor[HTTPStep](): {
			required: []string{"url"},
			values:   map[string]jsonSchema{"method": method, "headers": headers},
		},
		reflect.TypeFor[HTTPExpect](): {values: map[string]jsonSchema{"headers": {
			"type":                 []any{"object", "null"},
			"propertyNames":        jsonSchema{"pattern": headerKeyRE.String()},
			"additionalProperties": ref("regexp"),
		}}},
		reflect.TypeFor[HTTPSeries]():        {required: []string{"url", "json"}, values: map[string]jsonSchema{"headers": headers}},
		reflect.TypeFor[Capture]():           {oneOf: single("json", "header", "regex")},
		reflect.TypeFor[Freshness]():         {required: []string{"max_age"}, oneOf: single("json", "header")},
		reflect.TypeFor[BasicAuth]():         {required: []string{"username"}},
		reflect.TypeFor[TCPSpec]():           {required: []string{"address"}, values: ipProtocol},
		reflect.TypeFor[TLSSpec]():           {required: []string{"address"}, values: ipProtocol},
		reflect.TypeFor[HeartbeatSpec]():     {required: []string{"token"}, oneOf: single("every", "cron")},
		reflect.TypeFor[SeriesSpec]():        {oneOf: single("prometheus", "http")},
		reflect.TypeFor[PrometheusSeries]():  {required: []string{"url", "query"}},
		reflect.TypeFor[PagerDutyNotifier](): {required: []string{"routing_key"}},
		reflect.TypeFor[SlackNotifier]():     {required: []string{"webhook_url"}},
		reflect.TypeFor[WebhookNotifier]():   {required: []string{"url"}},
		reflect.TypeFor[EmailNotifier](): {
			required: []string{"smarthost", "from", "to"},
			values:   map[string]jsonSchema{"tls": enumSchema(emailTLSModes, false), "auth": enumSchema(emailAuths, false)},
		},
		reflect.TypeFor[TeamsNotifier]():        {required: []string{"webhook_url"}},
		reflect.TypeFor[AlertmanagerNotifier](): {required: []string{"urls"}},
		reflect.TypeFor[DNSSpec](): {
			required: []string{"name"},
			values: map[string]jsonSchema{
				"type":      enumSchema(DNSTypes, true),
				"class":     enumSchema(dnsClasses, true),
				"transport": enumSchema(dnsTransports, false),
			},
		},
		reflect.TypeFor[DNSExpect](): {values: map[string]jsonSchema{"rcode": enumSchema(Rcodes, true)}},
		reflect.TypeFor[ShapeSpec](): {values: map[string]jsonSchema{"seasonality": enumSchema(seasonalities, false)}},
	}
}

func toAny(words []string) []any {
	out := make([]any, len(words))
	for i, w := range words {
		out[i] = w
	}
	return out
}

// schemaBuilder walks the configuration's types.
type schemaBuilder struct {
	// docs maps "Type" and "Type.Field" to their doc comments, read from
	// the source when the schema is generated.
	docs  map[string]string
	rules map[reflect.Type]structRule
	defs  map[string]jsonSchema
	// types records which type each struct definition was made from, to
	// refuse two types of one name.
	types map[string]reflect.Type
	errs  []error
}

var (
	nodeDecoderType   = reflect.TypeFor[nodeDecoder]()
	scalarDecoderType = reflect.TypeFor[scalarDecoder]()
)

// buildSchema returns the schema of a configuration file, indented, with
// descriptions from docs (see schemaBuilder.docs).
func buildSchema(docs map[string]string) ([]byte, error) {
	b := &schemaBuilder{docs: docs, rules: structRules(), defs: leafDefinitions(), types: map[string]reflect.Type{}}
	b.types["fileConfig"] = reflect.TypeFor[fileConfig]()
	root := b.object(reflect.TypeFor[fileConfig]())
	root["type"] = "object" // an empty or null file is an error
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = SchemaURL
	root["title"] = "Outpost configuration"
	root["description"] = "One Outpost configuration file; several files (or a conf.d directory) are merged. Generated from the Go types by go generate ./checks: do not edit."
	root["definitions"] = b.defs
	for t := range b.rules {
		if _, ok := b.types[t.Name()]; !ok {
			b.errs = append(b.errs, fmt.Errorf("schema: a rule names %s, which no configuration key reaches", t))
		}
	}
	if len(b.errs) > 0 {
		slices.SortFunc(b.errs, func(x, y error) int { return strings.Compare(x.Error(), y.Error()) })
		return nil, errors.Join(b.errs...)
	}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// typeSchema is the schema of a value of type t.
func (b *schemaBuilder) typeSchema(t reflect.Type) jsonSchema {
	if name, ok := leafTypes[t]; ok {
		return ref(name)
	}
	if slices.Contains(switchableTypes, t) {
		return jsonSchema{"anyOf": []any{
			b.structRef(t),
			jsonSchema{"const": false},
			jsonSchema{"type": "string", "pattern": withEnv(alternation(offWords, false))},
		}}
	}
	if p := reflect.PointerTo(t); p.Implements(nodeDecoderType) || p.Implements(scalarDecoderType) {
		b.errs = append(b.errs, fmt.Errorf("schema: %s has a decoder of its own but no schema: add it to leafTypes", t))
		return jsonSchema{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return b.typeSchema(t.Elem())
	case reflect.Struct:
		return b.structRef(t)
	case reflect.Slice:
		return jsonSchema{"type": []any{"array", "null"}, "items": b.typeSchema(t.Elem())}
	case reflect.Map:
		return jsonSchema{"type": []any{"object", "null"}, "additionalProperties": b.typeSchema(t.Elem())}
	case reflect.String:
		return ref("text")
	case reflect.Bool:
		return ref("boolean")
	case reflect.Int, reflect.Int64, reflect.Int32:
		return ref("integer")
	case reflect.Float64:
		return ref("number")
	case reflect.Interface:
		return jsonSchema{"type": []any{"string", "number", "boolean", "null"}}
	}
	b.errs = append(b.errs, fmt.Errorf("schema: no schema for %s", t))
	return jsonSchema{}
}

// structRef defines t once and refers to it.
func (b *schemaBuilder) structRef(t reflect.Type) jsonSchema {
	name := t.Name()
	if prev, ok := b.types[name]; ok {
		if prev != t {
			b.errs = append(b.errs, fmt.Errorf("schema: two types named %s: %s and %s", name, prev, t))
		}
		return ref(name)
	}
	if _, ok := b.defs[name]; ok {
		b.errs = append(b.errs, fmt.Errorf("schema: type %s has the name of a leaf definition", t))
	}
	b.types[name] = t
	b.defs[name] = jsonSchema{} // a placeholder against recursion
	obj := b.object(t)
	if d := b.docs[name]; d != "" {
		obj["description"] = yamlNames(d, t)
	}
	b.defs[name] = obj
	return ref(name)
}

// object is the schema of a mapping decoded into struct t: its keys as
// fieldsOf gives them, closed, with t's rule.
func (b *schemaBuilder) object(t reflect.Type) jsonSchema {
	info := fieldsOf(t)
	props := jsonSchema{}
	for _, f := range info.fields {
		sf := t.FieldByIndex(f.index)
		s := b.typeSchema(sf.Type)
		if r, ok := b.rules[t].values[f.name]; ok {
			s = r
		}
		if d := b.fieldDoc(t, f); d != "" {
			s = maps.Clone(s)
			s["description"] = d
		}
		props[f.name] = s
	}
	obj := jsonSchema{
		"type":                 []any{"object", "null"},
		"properties":           props,
		"additionalProperties": false,
	}
	r := b.rules[t]
	known := func(keys ...string) {
		for _, k := range keys {
			if _, ok := props[k]; !ok {
				b.errs = append(b.errs, fmt.Errorf("schema: the rule of %s names %q, which is not one of its keys", t.Name(), k))
			}
		}
	}
	for k := range r.values {
		known(k)
	}
	if len(r.required) > 0 {
		known(r.required...)
		obj["required"] = toAny(r.required)
	}
	if len(r.oneOf) > 0 {
		alts := make([]any, len(r.oneOf))
		for i, keys := range r.oneOf {
			known(keys...)
			alts[i] = jsonSchema{"required": toAny(keys)}
		}
		obj["oneOf"] = alts
	}
	return obj
}

// fieldDoc is the doc comment of the field behind key f of t (which may
// be promoted from an inline struct), with the Go name that starts it
// replaced by the YAML key. The file-level keys fall back to the doc of
// the same field of Config.
func (b *schemaBuilder) fieldDoc(t reflect.Type, f fieldInfo) string {
	owner := t
	for _, i := range f.index[:len(f.index)-1] {
		owner = owner.Field(i).Type
	}
	goName := owner.Field(f.index[len(f.index)-1]).Name
	d := b.docs[owner.Name()+"."+goName]
	if d == "" && owner == reflect.TypeFor[fileConfig]() {
		d = b.docs["Config."+goName]
	}
	if rest, ok := strings.CutPrefix(d, goName+" "); ok {
		d = f.name + " " + rest
	}
	ft := owner.Field(f.index[len(f.index)-1]).Type
	for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
		ft = ft.Elem()
	}
	return yamlNames(d, t, ft)
}

// spells reports whether goName is key written in Go: "Window" for
// window, "MaxTTL" for max_ttl. A one-word key must be capitalised and no
// more, so that "URL", "JSON" and "PagerDuty" stay the words they are in
// prose.
func spells(goName, key string) bool {
	if !strings.Contains(key, "_") {
		return goName == strings.ToUpper(key[:1])+key[1:]
	}
	return strings.EqualFold(goName, strings.ReplaceAll(key, "_", ""))
}

// yamlNames replaces the Go names of the fields of types (structs; others
// are skipped) in doc by their YAML keys: comments written for Go readers
// say "Window" where a YAML writer reads "window".
func yamlNames(doc string, types ...reflect.Type) string {
	for _, t := range types {
		if t.Kind() != reflect.Struct {
			continue
		}
		for _, f := range fieldsOf(t).fields {
			goName := t.FieldByIndex(f.index).Name
			if !spells(goName, f.name) {
				continue
			}
			doc = regexp.MustCompile(`\b`+goName+`\b`).ReplaceAllLiteralString(doc, "`"+f.name+"`")
		}
	}
	return doc
}
