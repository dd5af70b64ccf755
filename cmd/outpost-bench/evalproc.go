package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outposthq/outpost/checks"
)

// benchConfig is the configuration an evaluator under test runs: n HTTP
// checks (whose targets nobody probes: this tool plays the agents), in
// every region, each region with its own agent key from the environment.
type benchConfig struct {
	checks   int
	regions  []string
	interval time.Duration
	pdURL    string // base URL of a fake PagerDuty; "" for no notifier
	// target is the host:port the checks' URLs point at; "" for a port
	// nobody listens on (when this tool plays the agents).
	target string
	// extra is YAML appended at the top level (a reporting block, say).
	extra string
	// services spreads the checks over that many labels.service values
	// (0: no labels); grouping groups the notifiers' pages by it.
	services int
	grouping bool
}

// regionKey is region's agent key, and keyEnv the variable it is read from.
func regionKey(region string) []byte { return []byte("outpost-bench-key-" + region) }
func keyEnv(region string) string {
	return "OUTPOST_BENCH_KEY_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(region))
}

// pdKeyEnv holds the PagerDuty routing key; each evaluator gets its own
// value, so that one fake PagerDuty tells them apart while the
// configuration text, and so its digest, stays the same.
const pdKeyEnv = "OUTPOST_BENCH_PD_KEY"

func checkID(i int) string { return fmt.Sprintf("c%05d", i) }

// write writes the configuration to path and returns its digest, as agents
// send it (checks.Config.Digest), after loading it as the evaluator will.
func (bc benchConfig) write(path string) (string, error) {
	var b strings.Builder
	group := ""
	if bc.grouping {
		group = ", grouping: {by: [labels.service]}"
	}
	fmt.Fprintf(&b, "version: 1\ndefaults: {interval: %s, timeout: %s%s}\n", bc.interval, bc.interval/2, group)
	fmt.Fprintf(&b, "regions: [%s]\nagents:\n", strings.Join(bc.regions, ", "))
	for _, r := range bc.regions {
		fmt.Fprintf(&b, "  - {region: %s, key: \"${%s}\"}\n", r, keyEnv(r))
	}
	notify := ""
	if bc.pdURL != "" {
		fmt.Fprintf(&b, "notifiers:\n  - {name: oncall, pagerduty: {routing_key: \"${%s}\", url: %q}}\n", pdKeyEnv, bc.pdURL)
		notify = "notify: [oncall], "
	}
	b.WriteString(bc.extra)
	b.WriteString("checks:\n")
	target := bc.target
	if target == "" {
		target = "127.0.0.1:9"
	}
	for i := range bc.checks {
		labels := ""
		if bc.services > 0 {
			labels = fmt.Sprintf("labels: {service: s%d}, ", i%bc.services)
		}
		fmt.Fprintf(&b, "  - {id: %s, %s%shttp: {url: \"http://%s/c%d\"}}\n", checkID(i), notify, labels, target, i)
	}
	data := []byte(b.String())
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", err
	}
	cfg, err := checks.LoadBytes(path, data, func(name string) (string, bool) {
		if name == pdKeyEnv {
			return "x", true
		}
		return "x", strings.HasPrefix(name, "OUTPOST_BENCH_KEY_")
	})
	if err != nil {
		return "", fmt.Errorf("the generated configuration does not load: %w", err)
	}
	return cfg.Digest, nil
}

// evalEnv is the environment an evaluator of bc needs.
func (bc benchConfig) evalEnv(pdKey string, gomaxprocs int) []string {
	env := []string{pdKeyEnv + "=" + pdKey}
	for _, r := range bc.regions {
		env = append(env, keyEnv(r)+"="+string(regionKey(r)))
	}
	if gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	return env
}

// evalProc is a running "outpost evaluator".
type evalProc struct {
	label string
	base  string // http://127.0.0.1:PORT
	pdKey string
	*child
}

// startEvaluator starts bin as an evaluator of cfgPath with its own data
// directory under dir, and waits for /healthz.
func startEvaluator(ctx context.Context, label, bin, cfgPath, dir string, env []string, pdKey string) (*evalProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data-"+label)
	args := []string{"evaluator", "-c", cfgPath, "--listen", addr, "--data-dir", data, "--name", "bench-" + label}
	c, err := startChild("evaluator "+label, bin, args, env, filepath.Join(dir, "evaluator-"+label+".log"))
	if err != nil {
		return nil, err
	}
	e := &evalProc{label: label, base: "http://" + addr, pdKey: pdKey, child: c}
	if err := waitHTTP(ctx, e.base+"/healthz", c, 60*time.Second); err != nil {
		return nil, err
	}
	return e, nil
}

// statusView is what /status.json says of checks and regions.
type statusView struct {
	checks  map[string]string // id → state
	regions map[string]string // name → state
}

// count returns how many checks are in state.
func (v statusView) count(state string) int {
	n := 0
	for _, s := range v.checks {
		if s == state {
			n++
		}
	}
	return n
}

// allLive reports whether every region is LIVE.
func (v statusView) allLive(regions []string) bool {
	for _, r := range regions {
		if v.regions[r] != "LIVE" {
			return false
		}
	}
	return true
}

// statusPage is the part of /status.json this tool reads. The next-page
// fields are guesses at a paging scheme /status.json may gain: when one is
// set, the pages are followed until none is.
type statusPage struct {
	Regions []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"regions"`
	Checks []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"checks"`
	Next       string `json:"next"`
	NextPage   string `json:"next_page"`
	NextCursor string `json:"next_cursor"`
	Cursor     string `json:"cursor"`
	// Summary and Page are set by an evaluator that pages a large
	// configuration's checks (alerting/status.Summary, PageInfo).
	Summary *struct {
		Checks int `json:"checks"`
	} `json:"summary"`
}

// statusPerPage is the page size this tool asks for once /status.json
// says it pages: the largest it serves.
const statusPerPage = 500

// maxStatusPages bounds the pages followed in one read.
const maxStatusPages = 10000

// fetchStatus reads /status.json, following pages if there are any, and
// returns the latency of the first request.
func fetchStatus(ctx context.Context, client *http.Client, base string) (statusView, time.Duration, error) {
	v := statusView{checks: map[string]string{}, regions: map[string]string{}}
	target := base + "/status.json"
	var first time.Duration
	for page := 0; target != "" && page < maxStatusPages; page++ {
		start := time.Now()
		var p statusPage
		if err := getJSON(ctx, client, target, &p); err != nil {
			return v, 0, err
		}
		if page == 0 {
			first = time.Since(start)
		}
		for _, r := range p.Regions {
			v.regions[r.Name] = r.State
		}
		for _, c := range p.Checks {
			v.checks[c.ID] = c.State
		}
		if page == 0 && p.Summary != nil {
			// The default answer (measured above) is one page and a
			// summary; read every check in the largest pages instead.
			for i := 1; (i-1)*statusPerPage < p.Summary.Checks; i++ {
				var pp statusPage
				if err := getJSON(ctx, client, fmt.Sprintf("%s/status.json?per_page=%d&page=%d", base, statusPerPage, i), &pp); err != nil {
					return v, 0, err
				}
				for _, c := range pp.Checks {
					v.checks[c.ID] = c.State
				}
			}
			break
		}
		target = nextPage(base, p)
	}
	return v, first, nil
}

func nextPage(base string, p statusPage) string {
	for _, n := range []string{p.Next, p.NextPage} {
		switch {
		case strings.HasPrefix(n, "/"):
			return base + n
		case strings.HasPrefix(n, base):
			return n
		case strings.HasPrefix(n, "?"):
			return base + "/status.json" + n
		}
	}
	for _, c := range []string{p.NextCursor, p.Cursor} {
		if c != "" {
			return base + "/status.json?cursor=" + url.QueryEscape(c)
		}
	}
	return ""
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
