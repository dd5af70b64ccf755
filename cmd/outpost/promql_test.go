package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The PromQL that Outpost ships (the Grafana dashboard and the rules
// file), read from the files and checked against a real Prometheus by
// TestDashboardAndRulesOnRealPrometheus.

// promExpr is one PromQL expression and where it was found.
type promExpr struct {
	where, expr string
	// nonEmpty is false for an alert's full condition: it is checked to
	// parse, and its left-hand side (lhs) to return data.
	nonEmpty bool
	lhs      string
}

// dashboardExprs returns every PromQL expression of a Grafana dashboard:
// each panel's targets (rows' nested panels too) and each query variable,
// whose label_values(metric, label) becomes count by (label) (metric).
func dashboardExprs(t *testing.T, path string) []promExpr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Type, Name string
				Query      json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []promExpr
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q target %s has no expr", path, p.Title, tg.RefID)
					continue
				}
				out = append(out, promExpr{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr, nonEmpty: true})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // the older form: a plain string
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q.Query))
		if m == nil {
			t.Errorf("%s: variable %q: query %q is not label_values(metric, label)", path, v.Name, q.Query)
			continue
		}
		out = append(out, promExpr{where: fmt.Sprintf("variable %q", v.Name), expr: fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), nonEmpty: true})
	}
	return out
}

type grafanaPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// ruleExprs returns every expression of a Prometheus rules file. A
// recording rule must return data; an alert's condition is usually empty
// on a healthy system, so its left-hand side must.
func ruleExprs(t *testing.T, path string) []promExpr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []promExpr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			e := promExpr{where: fmt.Sprintf("group %q record %s", g.Name, r.Record), expr: strings.TrimSpace(r.Expr), nonEmpty: true}
			if r.Alert != "" {
				e.where = fmt.Sprintf("group %q alert %s", g.Name, r.Alert)
				e.nonEmpty, e.lhs = false, conditionLHS(e.expr)
				if e.lhs == "" {
					t.Errorf("%s: %s: no top-level comparison in %q", path, e.where, e.expr)
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// grafanaVars substitutes Grafana's variables as Grafana would for a
// dashboard showing every check and region over the last hour.
func grafanaVars(checks, regions []string) *strings.Replacer {
	return strings.NewReplacer(
		"$__rate_interval", "5s", "$__range", "1h", "$__interval", "2s",
		"$check", "("+strings.Join(checks, "|")+")", "$region", "("+strings.Join(regions, "|")+")",
		"$quantile", "0.99", "$window", "1h",
	)
}

// conditionLHS is the left-hand side of expr's last top-level comparison
// ("x > 0" gives "x"), or "" if it has none.
func conditionLHS(expr string) string {
	depth, cut := 0, -1
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; c {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case '"', '\'', '`':
			i = skipString(expr, i)
		case '>', '<', '=', '!':
			if depth != 0 {
				continue
			}
			if c == '=' && (i+1 >= len(expr) || expr[i+1] != '=') {
				continue // =~ and = occur inside braces only
			}
			if c == '!' && (i+1 >= len(expr) || expr[i+1] != '=') {
				continue
			}
			cut = i
			if i+1 < len(expr) && expr[i+1] == '=' {
				i++
			}
		}
	}
	if cut < 0 {
		return ""
	}
	return strings.TrimSpace(expr[:cut])
}

// skipString returns the index of the quote that closes the string
// opening at i.
func skipString(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j
		}
	}
	return len(s)
}

// promKeywords are identifiers of PromQL that are not metric names when
// not followed by "(".
var promKeywords = map[string]bool{"bool": true, "and": true, "or": true, "unless": true, "offset": true,
	"inf": true, "nan": true, "atan2": true,
	// aggregations may put "by (...)" before their "(".
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}

// grouping keywords take a parenthesised label list.
var promGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// metricNames returns the metric names expr selects, so that a query
// cannot pass on the data of one series while naming another that does
// not exist ("x or vector(0)").
func metricNames(expr string) []string {
	var names []string
	seen := map[string]bool{}
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipBlock := func(i int, open, close byte) int {
		depth := 0
		for ; i < len(expr); i++ {
			switch expr[i] {
			case '"', '\'', '`':
				i = skipString(expr, i)
			case open:
				depth++
			case close:
				if depth--; depth == 0 {
					return i
				}
			}
		}
		return i
	}
	next := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\n' || expr[i] == '\t') {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			i = skipBlock(i, '{', '}')
		case c == '[':
			i = skipBlock(i, '[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i+1 < len(expr) && (isPart(expr[i+1]) || expr[i+1] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := next(j)
			switch lower := strings.ToLower(word); {
			case promGrouping[lower]:
				if k < len(expr) && expr[k] == '(' {
					j = skipBlock(k, '(', ')') + 1
				}
			case promKeywords[lower], k < len(expr) && expr[k] == '(':
			default:
				if !seen[word] {
					seen[word] = true
					names = append(names, word)
				}
			}
			i = j - 1
		}
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (check, region) (rate(outpost_probes_total{check=~"(a|b)", result="success"}[5s])) / sum by (check) (x)`, []string{"outpost_probes_total", "x"}},
		{`count(probe_success{job=~"j"} == 1) OR vector(0)`, []string{"probe_success"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) > 0.5`, []string{"a_bucket"}},
		{`min by (instance) (probe_ssl_earliest_cert_expiry{a="}"} - time()) < 21 * 24 * 3600`, []string{"probe_ssl_earliest_cert_expiry"}},
		{`outpost:check_uptime:ratio_1d offset 1h + on (check) group_left (x) b`, []string{"outpost:check_uptime:ratio_1d", "b"}},
		{`avg_over_time(probe_success[30d]) * 100 < 99.9`, []string{"probe_success"}},
	} {
		if got := metricNames(tc.expr); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestConditionLHS(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (instance) (rate(x{reason="saturated"}[5m])) > 0`: `sum by (instance) (rate(x{reason="saturated"}[5m]))`,
		`outpost_region_live == 0`:                                `outpost_region_live`,
		`probe_ssl_earliest_cert_expiry{a!="b"} - time() < 86400`: `probe_ssl_earliest_cert_expiry{a!="b"} - time()`,
		`x != 1`: `x`,
		`sum(x)`: ``,
	} {
		if got := conditionLHS(expr); got != want {
			t.Errorf("conditionLHS(%q) = %q, want %q", expr, got, want)
		}
	}
}

// promResult runs expr as an instant query. It returns how many samples
// the result holds, or an error when Prometheus refuses the query (a parse
// error, say), which no waiting mends.
func promResult(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, fmt.Errorf("transient: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	var r struct {
		Status, Error, ErrorType string
		Data                     struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("answer %d %q: %w", resp.StatusCode, body, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "scalar", "string":
		return 1, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &list); err != nil {
		return 0, err
	}
	return len(list), nil
}

// waitForData polls expr until it returns data, and reports why not when
// it never does before deadline.
func waitForData(base, expr string, deadline time.Time) error {
	for {
		n, err := promResult(base, expr)
		if err != nil && !strings.HasPrefix(err.Error(), "transient") {
			return err
		}
		if n > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("no data")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
