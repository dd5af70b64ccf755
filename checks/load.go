package checks

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// configVersion is the one version of the configuration format there is.
const configVersion = 1

// MaxFileSize bounds one configuration file.
const MaxFileSize = 8 << 20

// Load reads, merges, defaults and validates the configuration in paths.
// A path may be a file or a directory, whose *.yaml and *.yml files are read
// in name order. ${VAR} references are resolved through lookup (pass
// os.LookupEnv in production).
//
// Every secret must resolve; a process that needs only some of them loads
// with LoadFor.
//
// On failure the error lists every problem found, one per line, each an
// *Error (see Errors) formatted as FILE:LINE:COL: message.
func Load(paths []string, lookup LookupEnv) (*Config, error) {
	return LoadFor(paths, lookup, AllSecrets())
}

// LoadFor is Load for a process that needs only some of the secrets: the
// others may be unset (they are then Missing). A needed secret that is
// unset fails the load with the same error as Load's, along with every
// other problem.
func LoadFor(paths []string, lookup LookupEnv, needs Needs) (*Config, error) {
	var errs errorList
	if len(paths) == 0 {
		errs.add(Pos{File: "<command line>"}, "", "no configuration file given")
		return nil, errs.err()
	}
	files := expandPaths(paths, &errs)
	secrets := map[string]struct{}{}
	var parsed []*fileConfig
	for _, f := range files {
		if fc := loadFile(f, lookup, secrets, &errs); fc != nil {
			parsed = append(parsed, fc)
		}
	}
	return finish(parsed, files, secrets, needs, &errs)
}

// finish merges parsed files, validates the result and returns it or every
// error found.
func finish(parsed []*fileConfig, files []string, secrets map[string]struct{}, needs Needs, errs *errorList) (*Config, error) {
	cfg := merge(parsed, errs)
	cfg.Files = files
	for v := range secrets {
		cfg.secrets = append(cfg.secrets, v)
	}
	slices.Sort(cfg.secrets)
	h := sha256.New()
	for _, fc := range parsed {
		fmt.Fprintf(h, "%d\n", len(fc.raw))
		h.Write(fc.raw)
	}
	cfg.Digest = hex.EncodeToString(h.Sum(nil))[:16]
	validate(cfg, errs)
	cfg.requireSecrets(needs, errs)
	errs.redact(cfg.secrets)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadBytes loads one configuration held in memory, named name in errors.
// Relative file references (body_file, ca_file) resolve against the
// directory of name, which for a bare name is the current directory. Every
// secret must resolve, as for Load.
func LoadBytes(name string, data []byte, lookup LookupEnv) (*Config, error) {
	return LoadBytesFor(name, data, lookup, AllSecrets())
}

// LoadBytesFor is LoadBytes for a process with needs (see LoadFor).
func LoadBytesFor(name string, data []byte, lookup LookupEnv, needs Needs) (*Config, error) {
	var errs errorList
	secrets := map[string]struct{}{}
	fc := parseFile(name, data, lookup, secrets, &errs)
	var parsed []*fileConfig
	if fc != nil {
		parsed = append(parsed, fc)
	}
	return finish(parsed, []string{name}, secrets, needs, &errs)
}

func expandPaths(paths []string, errs *errorList) []string {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			errs.add(Pos{File: p}, "", "%v", unwrapPathError(err))
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			errs.add(Pos{File: p}, "", "%v", unwrapPathError(err))
			continue
		}
		n := 0
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.Type().IsRegular() && (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(p, e.Name()))
				n++
			}
		}
		if n == 0 {
			errs.add(Pos{File: p}, "", "directory has no *.yaml or *.yml files")
		}
	}
	return files
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func loadFile(name string, lookup LookupEnv, secrets map[string]struct{}, errs *errorList) *fileConfig {
	f, err := os.Open(name)
	if err != nil {
		errs.add(Pos{File: name}, "", "%v", unwrapPathError(err))
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		errs.add(Pos{File: name}, "", "read: %v", unwrapPathError(err))
		return nil
	}
	if len(data) > MaxFileSize {
		errs.add(Pos{File: name}, "", "file is larger than %d MiB", MaxFileSize>>20)
		return nil
	}
	return parseFile(name, data, lookup, secrets, errs)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser stage. For these
// it reports the 0-based line of the enclosing block (or of the problem),
// where scanner errors carry a 1-based line. Either way the line is often
// where the enclosing block starts: yaml.v3 does not expose the problem's
// own position.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// addYAMLError reports a syntax error from yaml.v3 at the line it names.
func addYAMLError(name string, err error, errs *errorList) {
	pos, msg := Pos{File: name}, err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if slices.Contains(yamlParserProblems, m[2]) {
			line++
		}
		pos, msg = Pos{File: name, Line: line, Col: 1}, "invalid YAML: "+m[2]
	} else {
		msg = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	}
	errs.add(pos, "", "%s", msg)
}

func parseFile(name string, data []byte, lookup LookupEnv, secrets map[string]struct{}, errs *errorList) *fileConfig {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(Pos{File: name}, "", "empty configuration file")
			return nil
		}
		addYAMLError(name, err, errs)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		errs.add(Pos{File: name, Line: extra.Line, Col: extra.Column}, "", "a second YAML document; put each configuration in its own file")
		return nil
	case !errors.Is(err, io.EOF):
		// The rest of the stream is broken; it must not be ignored.
		addYAMLError(name, err, errs)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			errs.add(Pos{File: name}, "", "empty configuration file")
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		errs.add(Pos{File: name}, "", "empty configuration file")
		return nil
	}
	d := &decoder{file: name, lookup: lookup, errs: errs, secrets: secrets, budget: nodeBudget(countNodes(root)), raw: data}
	fc := &fileConfig{raw: data}
	if root.Kind != yaml.MappingNode {
		errs.add(d.pos(root), "", "expected a mapping with version, regions, checks, ..., got %s", describe(root))
		return nil
	}
	// Decoding goes on past errors, so that validation can report the
	// problems of the rest of the file in the same run.
	d.decodeStruct(root, reflectValue(fc), "")
	if d.budget <= 0 {
		return nil // validating a partial decode would only add noise
	}
	baseDir := filepath.Dir(name)
	for i := range fc.Checks {
		readCheckFiles(&fc.Checks[i], baseDir, errs)
	}
	for i := range fc.Notifiers {
		if e := fc.Notifiers[i].Email; e != nil {
			readEmailCA(e, fmt.Sprintf("notifier %q", fc.Notifiers[i].Name), baseDir, errs)
		}
	}
	return fc
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// readCheckFiles reads the files a check refers to (request bodies, CA
// bundles) relative to the config file's directory, so that a missing file
// is a load error rather than a probe failure.
func readCheckFiles(c *Check, baseDir string, errs *errorList) {
	read := func(name string, limit int64, src *Source, key string) []byte {
		if name == "" {
			return nil
		}
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		info, err := os.Stat(p)
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		// A device or FIFO (/dev/zero, /dev/stdin) would never end.
		if !info.Mode().IsRegular() {
			errs.add(src.At(key), c.ID, "%s %q is not a regular file", key, name)
			return nil
		}
		tooBig := func() []byte {
			errs.add(src.At(key), c.ID, "%s %q is larger than %d MiB", key, name, limit>>20)
			return nil
		}
		if info.Size() > limit {
			return tooBig()
		}
		f, err := os.Open(p)
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			errs.add(src.At(key), c.ID, "%s %q: %v", key, name, unwrapPathError(err))
			return nil
		}
		if int64(len(b)) > limit {
			return tooBig() // it grew since Stat
		}
		return b
	}
	if h := c.HTTP; h != nil {
		h.BodyBytes = read(h.BodyFile, maxRequestBody, &h.Src, "body_file")
		if h.TLS != nil {
			h.TLS.CAPEM = read(h.TLS.CAFile, 1<<20, &h.TLS.Src, "ca_file")
		}
		for i := range h.Steps {
			s := &h.Steps[i]
			s.BodyBytes = read(s.BodyFile, maxRequestBody, &s.Src, "body_file")
		}
	}
	if t := c.TLS; t != nil {
		t.CAPEM = read(t.CAFile, 1<<20, &t.Src, "ca_file")
		if t.CAPEM != nil && !x509.NewCertPool().AppendCertsFromPEM(t.CAPEM) {
			errs.add(t.Src.At("ca_file"), c.ID, "ca_file %q holds no PEM certificate", t.CAFile)
		}
	}
}

func merge(files []*fileConfig, errs *errorList) *Config {
	cfg := &Config{Version: 1}
	// Top-level blocks that one file may set: where each was set, and the
	// tail of the message when a second file sets it too.
	set := map[string]Pos{}
	once := func(fc *fileConfig, key, tail string) bool {
		if first, dup := set[key]; dup {
			errs.add(fc.Src.At(key), "", "%s: already set at %s; %s", key, first, tail)
			return false
		}
		set[key] = fc.Src.At(key)
		return true
	}
	const oneFile = "set it in one file only"
	for _, fc := range files {
		if fc.API != nil && once(fc, "api", oneFile) {
			cfg.API = *fc.API
		}
		if fc.Bus != nil && once(fc, "bus", oneFile) {
			cfg.Bus = *fc.Bus
		}
		if fc.Meta != nil && once(fc, "meta", oneFile) {
			cfg.Meta = *fc.Meta
		}
		if fc.Src.Has("version") && fc.Version != configVersion {
			errs.add(fc.Src.At("version"), "", "unsupported version %d; this Outpost reads version %d", fc.Version, configVersion)
		}
		if fc.Reporting != nil && once(fc, "reporting", oneFile) {
			cfg.Reporting = *fc.Reporting
		}
		if fc.Defaults != nil && once(fc, "defaults", "set defaults in one file only") {
			cfg.Defaults = *fc.Defaults
		}
		if fc.Src.Has("external_url") && once(fc, "external_url", oneFile) {
			p := set["external_url"]
			cfg.ExternalURL = fc.ExternalURL
			if msg := checkURL(fc.ExternalURL, fc.Src.fromEnv("external_url")); msg != "" {
				errs.add(p, "", "external_url %s", msg)
			} else if u, _ := url.Parse(fc.ExternalURL); u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				errs.add(p, "", "external_url: give the status page's base URL, with no user, query or fragment (pages add /status?check=ID)")
			}
		}
		cfg.Regions = append(cfg.Regions, fc.Regions...)
		cfg.Agents = append(cfg.Agents, fc.Agents...)
		cfg.Notifiers = append(cfg.Notifiers, fc.Notifiers...)
		cfg.Peers = append(cfg.Peers, fc.Peers...)
		for i := range fc.Maintenance {
			cfg.Maintenance = append(cfg.Maintenance, &fc.Maintenance[i])
		}
		for i := range fc.Checks {
			cfg.Checks = append(cfg.Checks, &fc.Checks[i])
		}
	}
	if len(files) > 0 {
		regionPos := map[string]Pos{}
		for _, fc := range files {
			for i, r := range fc.Regions {
				p := fc.Src.At(fmt.Sprintf("regions[%d]", i))
				if first, dup := regionPos[r]; dup {
					errs.add(p, "", "region %q is declared twice (first at %s)", r, first)
					continue
				}
				regionPos[r] = p
				if !validName(r) {
					errs.add(p, "", "region %q: use letters, digits, '-', '_' and '.', at most 63 characters", r)
				}
			}
		}
	}
	return cfg
}
