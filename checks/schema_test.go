package checks

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// regenerate is the command that rewrites schema.json.
const regenerate = "go generate ./checks (or: go test ./checks -run '^TestSchemaUpToDate$' -update)"

// readDocs returns the doc comments of the package's types and struct
// fields, as "Type" and "Type.Field", each on one line.
func readDocs(t *testing.T) map[string]string {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// text is the comment on one line, less what it says about the
	// loaded Config rather than the file ("After Load, ...").
	text := func(cg *ast.CommentGroup) string {
		if cg == nil {
			return ""
		}
		s := strings.Join(strings.Fields(cg.Text()), " ")
		sentences := strings.SplitAfter(s, ". ")
		kept := sentences[:0]
		for _, x := range sentences {
			if !strings.HasPrefix(x, "After Load") {
				kept = append(kept, x)
			}
		}
		return strings.TrimSpace(strings.Join(kept, ""))
	}
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				docs[ts.Name.Name] = text(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					d := field.Doc
					if d == nil {
						d = field.Comment
					}
					for _, n := range field.Names {
						docs[ts.Name.Name+"."+n.Name] = text(d)
					}
				}
			}
		}
	}
	return docs
}

// TestSchemaUpToDate regenerates the schema from the types and their doc
// comments and compares it with the checked-in (and embedded) schema.json.
// With -update it rewrites schema.json instead: go generate runs that.
func TestSchemaUpToDate(t *testing.T) {
	t.Parallel()
	got, err := buildSchema(readDocs(t))
	if err != nil {
		t.Fatalf("buildSchema:\n%v", err)
	}
	if *update {
		if err := os.WriteFile("schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, schemaJSON) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(schemaJSON), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return strings.TrimSpace(l[i])
			}
			return "(end of file)"
		}
		t.Fatalf("checks/schema.json is out of date with the configuration types; regenerate it with\n\t%s\nfirst difference at line %d:\n\tchecked in: %s\n\tgenerated:  %s",
			regenerate, i+1, line(wl), line(gl))
	}
	if !bytes.Equal(Schema(), schemaJSON) {
		t.Errorf("Schema() differs from the embedded schema.json")
	}
}

// compileSchema compiles the checked-in schema with a real validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaURL, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaURL)
	if err != nil {
		t.Fatalf("compile schema.json: %v", err)
	}
	return s
}

// yamlInstance is a YAML document as the JSON value a schema validator
// (or an editor) sees.
func yamlInstance(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func validateFile(t *testing.T, s *jsonschema.Schema, path string) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(yamlInstance(t, data))
}

// notOutpost are the directories of examples/ that hold no Outpost
// configuration (Prometheus, systemd, Kubernetes, Grafana files).
var notOutpost = []string{"prometheus", "systemd", "kubernetes", "grafana"}

// outpostExamples lists every Outpost configuration file under examples/:
// examples/*.yaml and the *.yaml of each directory not in notOutpost.
func outpostExamples(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("../examples", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(notOutpost, d.Name()) {
			return filepath.SkipDir
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSchemaAcceptsExamples validates every example, and every valid
// fixture, against the schema: what the loader accepts, the schema must.
func TestSchemaAcceptsExamples(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	examples := outpostExamples(t)
	if len(examples) < 10 {
		t.Fatalf("found %d Outpost examples under examples/, want at least 10: %v", len(examples), examples)
	}
	valid, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(valid) == 0 {
		t.Fatalf("no valid fixtures: %v", err)
	}
	for _, path := range slices.Concat(examples, valid) {
		if err := validateFile(t, s, path); err != nil {
			t.Errorf("%s does not pass the schema (a directory of non-Outpost files belongs in notOutpost):\n%v", path, err)
		}
	}
}

// schemaRejects are the invalid fixtures whose fault the schema can
// express, with what it is.
var schemaRejects = map[string]string{
	"agent_names":              "an agent name outside the validator's pattern",
	"bad_duration":             "a duration without a unit",
	"bad_labels":               "a label name outside the pattern, or a reserved one",
	"bad_status":               "a status code or class that is none",
	"cert_warn_days_misplaced": "cert_warn_days under expect:, where it is an unknown key",
	"dns_name_type":            "a dns check without a name",
	"failure_both":             "consecutive and ratio in one failure rule",
	"grouping":                 "a grouping fact that is none",
	"heartbeat_no_token":       "a missing required key (heartbeat.token)",
	"http_options":             "a lower-case method",
	"json_expect":              "a JSON expectation whose key is no JSON path",
	"literal_secret":           "a secret written literally rather than as ${ENV}",
	"many_errors":              "an unknown key, among others",
	"no_type":                  "a check with no type block",
	"not_a_mapping":            "a file that is a list",
	"notifiers":                "a notifier with two types, or none",
	"notifiers_email":          "an email notifier without smarthost, an unknown tls or auth, a teams one without webhook_url",
	"quorum_bad":               "a quorum that is no count, word or fraction",
	"regions":                  "a region name outside the pattern",
	"required":                 "an agent without region or key",
	"series_nonsense":          "a series with both sources, or none",
	"shape_nonsense":           "a seasonality that is none",
	"shape_series_detectors":   "an unknown key in dip; a level_shift that is no mapping and not false",
	"steps":                    "url beside steps; a capture with two sources",
	"two_types":                "a check with two type blocks",
	"unknown_key":              "an unknown key in a check",
	"unknown_key_expect":       "an unknown key in expect",
	"unknown_key_http":         "an unknown key in http",
	"unknown_key_top":          "an unknown top-level key",
	"version2":                 "a version other than 1",
	"wrong_type_bool":          "a boolean that is none",
	"wrong_type_int":           "an integer that is none",
	"wrong_type_list":          "a string where a list belongs, a list where a string does",
	"alertmanager":             "an alertmanager notifier without urls; a literal bearer_token",
	"cel":                      "a CEL expression written as a list, or empty",
}

// semanticOnly are the invalid fixtures only the loader and validator
// can catch, and why the schema cannot.
var semanticOnly = map[string]string{
	"api_short_token":        "the length of a value from the environment",
	"bad_links":              "URL syntax (runbook, external_url)",
	"bad_regex":              "regular expression syntax (RE2)",
	"bad_url_host":           "URL syntax",
	"bad_url_scheme":         "URL scheme",
	"body_and_body_file":     "two keys that exclude each other only when non-empty",
	"capture_order":          "references to captures of earlier steps",
	"cert_min_days_http":     "a key that depends on the URL's scheme",
	"cert_warn_days":         "cert_warn_days against cert_min_days, the URL's scheme and its sign",
	"comments_only":          "an empty file (YAML null; the schema sees no document)",
	"defaults_timeout":       "timeout below interval",
	"dns_expect":             "record data that must parse as the record type",
	"dns_resolvers":          "resolver addresses",
	"duplicate_id":           "ids unique across checks",
	"duplicate_key":          "a key written twice (YAML parsers keep one)",
	"empty":                  "an empty file",
	"failure_ratio":          "numeric ranges",
	"interval_min":           "numeric ranges of durations",
	"max_latency":            "max_latency below timeout",
	"max_result_age":         "max_result_age against interval and timeout",
	"merge_self":             "a mapping merging itself (the YAML library refuses it before validation)",
	"meta_for":               "numeric ranges of durations",
	"notifiers_repeat":       "numeric ranges of durations",
	"missing_body_file":      "a file that must exist",
	"missing_env":            "environment variables that must be set",
	"net_checks":             "host:port syntax and port ranges",
	"no_checks":              "at least one check across every file",
	"quorum_from_defaults":   "quorum at most the number of regions",
	"quorum_too_large":       "quorum at most the number of regions",
	"second_document":        "a second YAML document",
	"second_document_broken": "YAML syntax",
	"syntax":                 "YAML syntax",
	"syntax_flow":            "YAML syntax",
	"syntax_tab":             "YAML syntax",
	"timeout_from_defaults":  "timeout below interval",
	"timeout_interval":       "timeout below interval",
	"too_many_steps":         "a bound on the number of steps",
	"unknown_notifier":       "references to notifiers",
	"unknown_region":         "references to regions",
	"dupdir":                 "ids unique across files",
	"external_url_twice":     "a key set in two files",
}

// TestSchemaRejectsInvalidFixtures asserts that the schema rejects every
// invalid fixture whose fault it can express, and that every fixture is
// classified, so that a new one is considered here too.
func TestSchemaRejectsInvalidFixtures(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name, isYAML := strings.CutSuffix(e.Name(), ".yaml")
		if !e.IsDir() && !isYAML {
			continue
		}
		seen[name] = true
		why, rejects := schemaRejects[name]
		if _, ok := semanticOnly[name]; !ok && !rejects {
			t.Errorf("fixture %s is in neither schemaRejects nor semanticOnly: say whether the schema can express its fault", name)
			continue
		}
		if !rejects {
			continue
		}
		if err := validateFile(t, s, filepath.Join("testdata/invalid", e.Name())); err == nil {
			t.Errorf("schema accepts testdata/invalid/%s, which has %s", e.Name(), why)
		}
	}
	for name := range schemaRejects {
		if !seen[name] {
			t.Errorf("schemaRejects names %s, which is not a fixture", name)
		}
	}
	for name := range semanticOnly {
		if !seen[name] {
			t.Errorf("semanticOnly names %s, which is not a fixture", name)
		}
	}
}

// TestSchemaCases checks the schema on one small configuration changed in
// one place at a time, beside what the loader says of the same text: the
// schema accepts what the loader accepts, and rejects each kind of fault
// it can express (unknown key, wrong type, missing required key, unknown
// enumeration value, a check with two types or none).
func TestSchemaCases(t *testing.T) {
	t.Parallel()
	s := compileSchema(t)
	const base = `version: 1
regions: [us-east, eu-west]
agents:
  - {region: us-east, name: a1, key: "${KEY}"}
notifiers:
  - name: oncall
    routes: [critical, warning]
    console:
checks:
  - id: web
    interval: 30s
    quorum: majority
    http:
      url: https://example.com/
      method: GET
      expect: {status: 2xx}
`
	env := mapEnv(map[string]string{"KEY": "k", "N": "3", "YES": "true", "TOKEN": "0123456789abcdef"})
	for _, tc := range []struct {
		name         string
		old, new     string
		schemaOK     bool
		loaderAlsoOK bool // checked only when schemaOK
	}{
		{"base", "", "", true, true},
		{"env in an integer", "method: GET", "max_redirects: ${N}", true, true},
		{"quoted integer", "method: GET", `max_redirects: "3"`, true, true},
		{"env in a boolean", "method: GET", "follow_redirects: ${YES}", true, true},
		{"boolean in capitals", "method: GET", "follow_redirects: FALSE", true, true},
		{"env in a duration", "interval: 30s", "interval: ${IV:-45s}", true, true},
		{"number as text", "id: web", "id: web\n    labels: {tier: 1}", true, true},
		{"shape off", "id: web", "id: web\n    shape: false", true, true},
		{"detector off", "id: web", "id: web\n    shape: {slow_rise: off, tail_shift: false}", true, true},
		{"status list", "status: 2xx", `status: [200, "3xx", 400-404]`, true, true},
		{"quorum fraction", "quorum: majority", "quorum: 1/2", true, true},
		{"quorum count", "quorum: majority", "quorum: 2", true, true},
		{"tls version as number", "method: GET", "tls: {min_version: 1.2}", true, true},
		{"size with unit", "method: GET", "max_body_bytes: 2MiB", true, true},
		{"lower-case dns type", "http:\n      url: https://example.com/\n      method: GET\n      expect: {status: 2xx}", "dns: {name: example.com, type: aaaa, expect: {rcode: noerror}}", true, true},
		{"maintenance window", "checks:", "maintenance:\n  - {name: m, cron: \"0 3 * * *\", duration: 1h}\nchecks:", true, true},
		{"merge key", "  - id: web\n    interval: 30s", "  - id: web0\n    tcp: {address: \"example.com:443\"}\n    <<: &common {interval: 30s}\n  - <<: *common\n    id: web", true, true},
		{"env in an enumeration", "method: GET", "ip_protocol: ${IPP:-ipv4}", true, true},
		{"env in a status", "status: 2xx", `status: "${STATUS:-200}"`, true, true},
		{"grouping by label", "console:", "console:\n    grouping: {by: [check, labels.team]}", true, true},

		{"unknown key", "interval: 30s", "intervall: 30s", false, false},
		{"unknown key in a block", "method: GET", "methd: GET", false, false},
		{"unknown top-level key", "version: 1", "version: 1\nchekcs: []", false, false},
		{"wrong type: integer", "method: GET", "max_redirects: five", false, false},
		{"wrong type: boolean", "method: GET", "follow_redirects: maybe", false, false},
		{"wrong type: duration", "interval: 30s", "interval: 30", false, false},
		{"wrong type: list", "regions: [us-east, eu-west]", "regions: us-east", false, false},
		{"wrong type: mapping for text", "method: GET", "method: {verb: GET}", false, false},
		{"missing id", "  - id: web\n    interval: 30s", "  - interval: 30s", false, false},
		{"missing agent key", `name: a1, key: "${KEY}"`, "name: a1", false, false},
		{"no check type", "    http:\n      url: https://example.com/\n      method: GET\n      expect: {status: 2xx}\n", "", false, false},
		{"two check types", "    http:", "    tcp: {address: \"example.com:443\"}\n    http:", false, false},
		{"two notifier types", "    console:", "    console:\n    webhook: {url: https://example.com/hook}", false, false},
		{"bad route", "routes: [critical, warning]", "routes: [critcal]", false, false},
		{"bad method", "method: GET", "method: get", false, false},
		{"bad ip_protocol", "method: GET", "ip_protocol: ipv5", false, false},
		{"bad on_disagreement", "quorum: majority", "on_disagreement: shout", false, false},
		{"bad seasonality", "id: web", "id: web\n    shape: {seasonality: hourly}", false, false},
		{"bad shape switch", "id: web", "id: web\n    shape: maybe", false, false},
		{"bad quorum", "quorum: majority", "quorum: most", false, false},
		{"bad status", "status: 2xx", "status: 600", false, false},
		{"bad dns type", "http:\n      url: https://example.com/\n      method: GET\n      expect: {status: 2xx}", "dns: {name: example.com, type: AXFR}", false, false},
		{"literal secret", `key: "${KEY}"`, "key: hunter2", false, false},
		{"bad id", "id: web", "id: -web", false, false},
		{"reserved label", "id: web", "id: web\n    labels: {region: x}", false, false},
		{"version 2", "version: 1", "version: 2", false, false},
		{"url beside steps", "method: GET", "steps: [{url: https://example.com/}]", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := base
			if tc.old != "" || tc.new != "" {
				if !strings.Contains(base, tc.old) {
					t.Fatalf("base has no %q", tc.old)
				}
				text = strings.Replace(base, tc.old, tc.new, 1)
			}
			serr := s.Validate(yamlInstance(t, []byte(text)))
			_, lerr := LoadBytes("case.yaml", []byte(text), env)
			switch {
			case tc.schemaOK && serr != nil:
				t.Errorf("schema rejects:\n%s\n%v", text, serr)
			case !tc.schemaOK && serr == nil:
				t.Errorf("schema accepts:\n%s", text)
			}
			if (lerr == nil) != tc.loaderAlsoOK {
				t.Errorf("loader: %v, want ok=%v (the case itself is wrong)", lerr, tc.loaderAlsoOK)
			}
		})
	}
}
