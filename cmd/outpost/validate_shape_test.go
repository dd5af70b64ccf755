package main

import (
	"strings"
	"testing"
)

// TestValidateWarnsWhenMinSamplesCannotSupportTheQuantile: a min_samples
// below what tail_shift's p90 needs (30) is valid (exit 0) but warned
// about at its own line, with the fix; 30 and the default are not.
func TestValidateWarnsWhenMinSamplesCannotSupportTheQuantile(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "shape.yaml", `checks:
  - id: few
    interval: 30s
    http: {url: "http://127.0.0.1:1/"}
    shape: {min_samples: 20}
  - id: enough
    interval: 30s
    http: {url: "http://127.0.0.1:1/"}
    shape: {min_samples: 30}
  - id: default
    http: {url: "http://127.0.0.1:1/"}
`)
	code, out, errOut := runCLI(t, nil, "validate", "-c", cfg)
	want := "warning: " + cfg + `:5:26: check "few": shape.min_samples: 20 cannot support tail_shift: p90 needs 30 probes in a window (3 beyond it), so a window of fewer gives no tail_shift verdict; use min_samples: 30 or more`
	if code != exitOK || !strings.Contains(out, "ok: 3 check(s)") || strings.TrimSpace(errOut) != want {
		t.Errorf("code %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}
}
