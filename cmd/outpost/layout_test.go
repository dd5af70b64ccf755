package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The walls between Outpost's packages (docs/code-map.md): every package
// sits on a layer and imports only packages of lower layers, plus the rules
// below that the layers alone do not say. TestImportRules reads the real
// import graph from `go list` and fails on any breach, and on any package
// that has no layer yet, so that a new package is placed on purpose.

const module = "github.com/outposthq/outpost"

// layers places every package of the module, by path below the module.
var layers = map[string]int{
	// L0: the wire format, time, log rate limits, atomic file writes,
	// the configuration and the keyed-record state store.
	"probes/wire": 0, "probes/clock": 0, "probes/ratelog": 0, "probes/atomicfile": 0, "checks": 0,
	"probes/exposition": 0,
	// The exposition test kit: nothing of ours (tests only, below).
	"probes/exposition/expositiontest": 0,
	// The in-process NATS server for tests: nothing of ours.
	"probes/bus/bustest": 0,
	"alerting/state":     0,
	// The NAB scorer: pure arithmetic and file formats, nothing of ours.
	"cmd/outpost-bench/nab": 0,
	// L1: pure shape detection; pure history; notification types and
	// HTTP helpers; the fake clock for tests.
	"alerting/shape": 1, "alerting/history": 1, "alerting/silence": 1, "alerting/notify": 1, "probes/clock/clocktest": 1,
	// The bus's subjects, headers, connection and stream (NATS JetStream).
	"probes/bus": 1,
	// L2: probers; pure decisions; one package per receiver; the
	// receivers' test kit.
	"probes": 2, "alerting/decide": 2,
	"alerting/notify/pagerduty": 2, "alerting/notify/slack": 2, "alerting/notify/webhook": 2,
	"alerting/notify/console": 2, "alerting/notify/notifytest": 2,
	"alerting/notify/email": 2, "alerting/notify/teams": 2,
	"alerting/notify/alertmanager": 2,
	// L3: what the evaluator is built from.
	"alerting/status": 3, "alerting/outbox": 3, "alerting/notify/receivers": 3,
	// L4: the agent's runtime and the evaluator.
	"probes/agent": 4, "alerting": 4,
	// L5: the commands, which wire everything.
	"cmd/outpost": 5, "cmd/outpost-bench": 5,
}

// receiverPkgs are the packages that deliver to one destination each.
var receiverPkgs = []string{"alerting/notify/pagerduty", "alerting/notify/slack", "alerting/notify/webhook", "alerting/notify/console",
	"alerting/notify/email", "alerting/notify/teams", "alerting/notify/alertmanager"}

// pkg is what the rules read of one package.
type pkg struct {
	Path    string // below the module
	Imports []string
}

// rule is one wall: pass reports what is wrong with p, if anything.
type rule struct {
	name string
	pass func(p pkg) []string
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func ours(imp string) (string, bool) {
	if imp == module {
		return "", true
	}
	rest, ok := strings.CutPrefix(imp, module+"/")
	return rest, ok
}

var rules = []rule{
	{"every package has a layer and imports only lower layers", func(p pkg) []string {
		l, ok := layers[p.Path]
		if !ok {
			return []string{"has no layer in cmd/outpost/layout_test.go: place it there (and in docs/code-map.md)"}
		}
		var bad []string
		for _, imp := range p.Imports {
			if q, ok := ours(imp); ok {
				if lq, ok := layers[q]; ok && lq >= l {
					bad = append(bad, fmt.Sprintf("imports %s (L%d) from L%d: imports point down only", q, lq, l))
				}
			}
		}
		return bad
	}},
	{"probes never imports alerting; checks imports nothing of ours", func(p pkg) []string {
		var bad []string
		for _, imp := range p.Imports {
			q, ok := ours(imp)
			switch {
			case !ok:
			case under(p.Path, "probes") && under(q, "alerting"):
				bad = append(bad, "imports "+q)
			case p.Path == "checks":
				bad = append(bad, "imports "+q)
			}
		}
		return bad
	}},
	{"alerting takes from probes only wire, clock, ratelog, atomicfile, exposition and bus", func(p pkg) []string {
		if !under(p.Path, "alerting") {
			return nil
		}
		var bad []string
		for _, imp := range p.Imports {
			q, ok := ours(imp)
			if ok && under(q, "probes") && !slices.Contains([]string{"probes/wire", "probes/clock", "probes/ratelog", "probes/atomicfile", "probes/exposition", "probes/bus"}, q) {
				bad = append(bad, "imports "+q)
			}
		}
		return bad
	}},
	{"decide, shape, history and silence import no net, os or sync", func(p pkg) []string {
		if !slices.Contains([]string{"alerting/decide", "alerting/shape", "alerting/history", "alerting/silence"}, p.Path) {
			return nil
		}
		var bad []string
		for _, imp := range p.Imports {
			if slices.Contains([]string{"net", "net/http", "os", "sync", "sync/atomic"}, imp) {
				bad = append(bad, "imports "+imp)
			}
		}
		return bad
	}},
	{"receivers never import each other; outbox knows only notify", func(p pkg) []string {
		var bad []string
		for _, imp := range p.Imports {
			q, ok := ours(imp)
			if !ok || !slices.Contains(receiverPkgs, q) && q != "alerting/notify/receivers" {
				continue
			}
			if slices.Contains(receiverPkgs, p.Path) || p.Path == "alerting/outbox" {
				bad = append(bad, "imports "+q)
			}
		}
		return bad
	}},
	{"status never imports the alerting root", func(p pkg) []string {
		if p.Path == "alerting/status" && slices.Contains(p.Imports, module+"/alerting") {
			return []string{"imports alerting"}
		}
		return nil
	}},
	// The one exception is alerting/shape: `outpost-bench nab` replays
	// series through the real detectors in-process, with the file's
	// timestamps as the clock. shape is pure (no net, os, sync, no
	// goroutine), so nothing of the evaluator runs beside the tool.
	{"outpost-bench drives real processes: it imports only L0 packages (and the pure alerting/shape, for nab, and probes/bus, the bus's wire contract)", func(p pkg) []string {
		if p.Path != "cmd/outpost-bench" {
			return nil
		}
		var bad []string
		for _, imp := range p.Imports {
			if q, ok := ours(imp); ok && layers[q] != 0 && q != "alerting/shape" && q != "probes/bus" {
				bad = append(bad, "imports "+q)
			}
		}
		return bad
	}},
	{"test kits are imported by tests only", func(p pkg) []string {
		var bad []string
		for _, imp := range p.Imports {
			if q, ok := ours(imp); ok && slices.Contains([]string{"probes/clock/clocktest", "alerting/notify/notifytest", "probes/exposition/expositiontest", "probes/bus/bustest"}, q) {
				bad = append(bad, "imports "+q)
			}
		}
		return bad
	}},
}

// breaches checks every package against every rule.
func breaches(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			for _, b := range r.pass(p) {
				out = append(out, fmt.Sprintf("%s %s (rule: %s)", p.Path, b, r.name))
			}
		}
	}
	return out
}

// listPackages reads the module's packages and their non-test imports
// from `go list -deps -json ./...`, keeping the module's own.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if path, ok := ours(p.ImportPath); ok {
			pkgs = append(pkgs, pkg{Path: path, Imports: p.Imports})
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list gave %d of the module's packages; the test reads the wrong tree", len(pkgs))
	}
	return pkgs
}

// TestImportRules fails on any breach of the walls in the real tree.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to read the import graph")
	}
	for _, b := range breaches(listPackages(t)) {
		t.Error(b)
	}
}

// TestImportRulesCatchBreaches shows each rule failing on a forbidden
// import, so that a rule that can never fail is noticed.
func TestImportRulesCatchBreaches(t *testing.T) {
	m := func(q string) string { return module + "/" + q }
	cases := []struct {
		name string
		p    pkg
		want string
	}{
		{"a prober reaching up to the evaluator", pkg{"probes", []string{m("alerting")}}, "imports alerting (L4) from L2"},
		{"the wire format importing the agent", pkg{"probes/wire", []string{m("probes/agent")}}, "imports probes/agent"},
		{"checks importing ours", pkg{"checks", []string{m("probes/clock")}}, "checks imports probes/clock (rule: probes never imports alerting; checks"},
		{"the evaluator importing a prober", pkg{"alerting", []string{m("probes")}}, "alerting imports probes (rule: alerting takes from probes only"},
		{"decide taking a lock", pkg{"alerting/decide", []string{"sync"}}, "imports sync"},
		{"shape reading files", pkg{"alerting/shape", []string{"os"}}, "imports os"},
		{"one receiver borrowing from another", pkg{"alerting/notify/slack", []string{m("alerting/notify/pagerduty")}}, "alerting/notify/slack imports alerting/notify/pagerduty (rule: receivers never"},
		{"the outbox knowing a receiver", pkg{"alerting/outbox", []string{m("alerting/notify/webhook")}}, "alerting/outbox imports alerting/notify/webhook (rule: receivers never"},
		{"status importing the evaluator", pkg{"alerting/status", []string{m("alerting")}}, "alerting/status imports alerting (rule: status never"},
		{"production code importing a test kit", pkg{"alerting", []string{m("alerting/notify/notifytest")}}, "rule: test kits"},
		{"the load tool measuring the evaluator in-process", pkg{"cmd/outpost-bench", []string{m("alerting")}}, "cmd/outpost-bench imports alerting (rule: outpost-bench drives"},
		{"a package nobody placed", pkg{"alerting/newthing", nil}, "has no layer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(breaches([]pkg{tc.p}), "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("breaches = %q, want one containing %q", got, tc.want)
			}
		})
	}
	if got := breaches([]pkg{{"alerting", []string{m("alerting/decide"), m("probes/wire"), "sync"}}}); len(got) != 0 {
		t.Errorf("allowed imports reported: %v", got)
	}
}
