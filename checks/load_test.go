package checks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	fileA = `version: 1
regions: [us-east, eu-west]
notifiers:
  - {name: log, console: {}}
checks:
  - id: a1
    notify: [log]
    http: {url: "https://a.example.com/"}
`
	fileB = `checks:
  - id: b1
    tcp: {address: "b.example.com:22"}
`
	dirC = `checks:
  - id: c1
    notify: [log]
    tls: {address: "c.example.com:443"}
`
	dirD = `regions: [ap-south]
checks:
  - id: d1
    regions: [ap-south]
    http:
      url: https://d.example.com/
      method: POST
      body_file: body.json
`
)

func checkIDs(cfg *Config) []string {
	var ids []string
	for _, c := range cfg.Checks {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestLoadMerge(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.yaml":              fileA,
		"b.yml":               fileB,
		"conf.d/20-d.yaml":    dirD,
		"conf.d/10-c.yml":     dirC,
		"conf.d/body.json":    `{"x": 1}`,
		"conf.d/README.md":    "not config",
		"conf.d/.hidden.yaml": "not: valid: yaml: [",
		"conf.d/sub/x.yaml":   "ignored: subdirectories are not read",
	})
	a, b, d := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml"), filepath.Join(dir, "conf.d")
	cfg, err := Load([]string{a, b, d}, mapEnv(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantFiles := []string{a, b, filepath.Join(d, "10-c.yml"), filepath.Join(d, "20-d.yaml")}
	if !slices.Equal(cfg.Files, wantFiles) {
		t.Errorf("Files = %v, want %v", cfg.Files, wantFiles)
	}
	if got, want := checkIDs(cfg), []string{"a1", "b1", "c1", "d1"}; !slices.Equal(got, want) {
		t.Errorf("checks = %v, want %v", got, want)
	}
	if want := []string{"us-east", "eu-west", "ap-south"}; !slices.Equal(cfg.Regions, want) {
		t.Errorf("Regions = %v, want %v", cfg.Regions, want)
	}
	if got := cfg.Checks[1].Regions; len(got) != 3 {
		t.Errorf("b1 regions = %v, want all three merged regions", got)
	}
	if got := string(cfg.Checks[3].HTTP.BodyBytes); got != `{"x": 1}` {
		t.Errorf("body_file read relative to its config file: %q", got)
	}
}

func TestLoadMultiFileErrors(t *testing.T) {
	t.Parallel()
	defaults := "defaults: {interval: 1m}\n"
	dir := writeFiles(t, map[string]string{
		"one.yaml":        defaults + fileA,
		"two.yaml":        defaults + fileB,
		"regions.yaml":    "regions: [eu-west]\nchecks:\n  - id: r\n    tcp: {address: \"r.example.com:1\"}\n",
		"empty/notes.txt": "no config here",
		"dup/1.yaml":      fileA,
		"dup/2.yaml":      fileA,
		"noexpect/x.yaml": fileB,
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"defaults twice", []string{p("one.yaml"), p("two.yaml")}, []string{
			p("two.yaml") + `:1:11: defaults: already set at ` + p("one.yaml") + `:1:11; set defaults in one file only`,
		}},
		{"directory without yaml", []string{p("empty")}, []string{
			p("empty") + `: directory has no *.yaml or *.yml files`,
		}},
		{"missing path", []string{p("one.yaml"), p("missing.yaml")}, []string{
			p("missing.yaml") + `: no such file or directory`,
		}},
		{"no paths", nil, []string{`<command line>: no configuration file given`}},
		{"region declared twice", []string{p("one.yaml"), p("regions.yaml")}, []string{
			p("regions.yaml") + `:1:11: region "eu-west" is declared twice (first at ` + p("one.yaml") + `:3:20)`,
		}},
		{"same file twice", []string{p("dup")}, []string{
			p("dup/2.yaml") + `:2:11: region "us-east" is declared twice (first at ` + p("dup/1.yaml") + `:2:11)`,
			p("dup/2.yaml") + `:2:20: region "eu-west" is declared twice (first at ` + p("dup/1.yaml") + `:2:20)`,
			p("dup/2.yaml") + `:4:12: notifier "log" is defined twice (first at ` + p("dup/1.yaml") + `:4:12)`,
			p("dup/2.yaml") + `:6:9: check "a1": duplicate check id (first defined at ` + p("dup/1.yaml") + `:6:9)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(tt.paths, mapEnv(nil))
			if err == nil {
				t.Fatalf("Load succeeded with checks %v", checkIDs(cfg))
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("error:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestLoadFileLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	data := []byte("# " + strings.Repeat("x", MaxFileSize) + "\n")
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load([]string{big}, mapEnv(nil))
	if want := big + ": file is larger than 8 MiB"; err == nil || err.Error() != want {
		t.Errorf("Load(big) = %v, want %s", err, want)
	}
}

// TestLoadCheckFiles covers the files a check refers to: they are read at
// load, relative to the config file, and must be small regular files.
func TestLoadCheckFiles(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"body.json": `{"ping": true}`,
		"ca.pem":    "not a certificate",
		"subdir/x":  "",
	})
	cfgFile := func(body, ca string) string {
		return "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      body_file: " + body + "\n      tls: {ca_file: " + ca + "}\n"
	}
	write := func(t *testing.T, content string) string {
		p := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".yaml")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		p := write(t, "checks:\n  - id: a\n    http:\n      url: https://example.com/\n      body_file: body.json\n")
		cfg, err := Load([]string{p}, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(cfg.Checks[0].HTTP.BodyBytes); got != `{"ping": true}` {
			t.Errorf("BodyBytes = %q", got)
		}
	})
	t.Run("bad", func(t *testing.T) {
		t.Parallel()
		p := write(t, cfgFile("subdir", "ca.pem"))
		_, err := Load([]string{p}, mapEnv(nil))
		want := p + `:5:18: check "a": body_file "subdir" is not a regular file` + "\n" +
			p + `:6:22: check "a": tls.ca_file "ca.pem" holds no PEM certificate`
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
	t.Run("device", func(t *testing.T) {
		t.Parallel()
		if _, err := os.Stat("/dev/zero"); err != nil {
			t.Skip("no /dev/zero")
		}
		p := write(t, cfgFile("/dev/zero", "/dev/zero"))
		_, err := Load([]string{p}, mapEnv(nil))
		want := p + `:5:18: check "a": body_file "/dev/zero" is not a regular file` + "\n" +
			p + `:6:22: check "a": ca_file "/dev/zero" is not a regular file`
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
}
