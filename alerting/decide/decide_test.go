package decide

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// dcT0 is where the decision tests' time starts.
var dcT0 = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

// dcYAML holds the checks the decision tests use; Load applies the
// defaults (consecutive 2, recovery 2, majority, flap 6 in 1h).
const dcYAML = `version: 1
regions: [us-east, eu-west, ap-south]
checks:
  - id: web-home
    http: {url: "https://www.example.com/"}
  - id: flaky-upload
    failure: {ratio: 0.3, window: 10}
    http: {url: "https://upload.example.com/"}
  - id: slow-recover
    recovery: {consecutive: 3}
    http: {url: "https://www.example.com/slow"}
  - id: any-one
    quorum: 1
    http: {url: "https://www.example.com/one"}
  - id: everyone
    quorum: all
    http: {url: "https://www.example.com/all"}
  - id: two-of-three
    quorum: 2
    http: {url: "https://www.example.com/two"}
`

// dcLoad loads a config and returns its checks by id.
func dcLoad(t testing.TB, yaml string) (*checks.Config, map[string]*checks.Check) {
	t.Helper()
	cfg, err := checks.LoadBytes("decide.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	byID := map[string]*checks.Check{}
	for _, c := range cfg.Checks {
		byID[c.ID] = c
	}
	return cfg, byID
}

// dcSamples turns "FPPF" into samples, oldest first, one a minute; failed
// samples carry reason.
func dcSamples(pattern, reason string) []Sample {
	var s []Sample
	for i, ch := range pattern {
		at := dcT0.Add(time.Duration(i) * time.Minute)
		if ch == 'F' {
			s = append(s, Sample{Time: at, Received: at, OK: false, Reason: reason})
		} else {
			s = append(s, Sample{Time: at, Received: at, OK: true, Reason: "status 200"})
		}
	}
	return s
}

func TestRegionHealth(t *testing.T) {
	_, cs := dcLoad(t, dcYAML)
	consec, ratio, slow := cs["web-home"], cs["flaky-upload"], cs["slow-recover"]
	const r503, r500 = "status 503, want 200", "status 500, want 200"
	tests := []struct {
		name    string
		check   *checks.Check
		pattern string
		reason  string
		prev    bool
		failing bool
		why     string
	}{
		{"consecutive: no samples", consec, "", r503, false, false, ""},
		{"consecutive: one failure is not enough", consec, "PPPF", r503, false, false, ""},
		{"consecutive: two failures trip", consec, "PPFF", r503, false, true, "2 consecutive failures: " + r503},
		{"consecutive: the run is counted whole", consec, "PFFF", r503, false, true, "3 consecutive failures: " + r503},
		{"consecutive: row 3 intermittent failures never trip", consec, "FPPFPPFPPF", r500, false, false, ""},
		{"ratio: row 3 intermittent failures trip", ratio, "FPPFPPFPPF", r500, false, true, "4 of the last 10 probes failed (ratio 0.30): " + r500},
		{"ratio: exactly the ratio trips", ratio, "PPPPPPPFFF", r500, false, true, "3 of the last 10 probes failed (ratio 0.30): " + r500},
		{"ratio: below the ratio passes", ratio, "PPPPPPPPFF", r500, false, false, ""},
		{"ratio: only the last window counts", ratio, "FFFFFPPPPPPPPPF", r500, false, false, ""},
		{"ratio: a first failed probe does not trip", ratio, "F", r500, false, false, ""},
		{"ratio: two of two at start do not trip", ratio, "FF", r500, false, false, ""},
		{"ratio: a total outage at start trips after ratio x window", ratio, "FFF", r500, false, true, "3 of the first 3 probes failed (ratio 0.30 over 10): " + r500},
		{"ratio: reason of the latest failure, even after a pass", ratio, "FPPFPPFPPFP", r500, false, true, "3 of the last 10 probes failed (ratio 0.30): " + r500},
		{"hysteresis: one pass does not recover", consec, "PFFP", r503, true, true, "recovering: 1 of 2 passes in a row; last failure: " + r503},
		{"hysteresis: two passes recover", consec, "PFFPP", r503, true, false, ""},
		{"hysteresis: one pass is health for a region that was not failing", consec, "PPFP", r503, false, false, ""},
		{"hysteresis: recovery 3 needs three passes", slow, "FFPP", r503, true, true, "recovering: 2 of 3 passes in a row; last failure: " + r503},
		{"hysteresis: recovery 3 after three passes", slow, "FFPPP", r503, true, false, ""},
		{"hysteresis: no samples keep a failing region failing", consec, "", r503, true, true, "recovering: 0 of 2 passes in a row"},
		{"hysteresis: a crossed ratio holds despite recovery passes", ratio, "FPPFPPFPPFPP", r500, true, true, "3 of the last 10 probes failed (ratio 0.30): " + r500},
		{"hysteresis: ratio recovers once below it and passing", ratio, "FPPFPPFPPFPPPPPPPP", r500, true, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := Window{Check: tc.check.ID, Region: "us-east", Samples: dcSamples(tc.pattern, tc.reason)}
			failing, why := RegionHealth(w, tc.check.Failure, tc.check.Recovery, tc.prev)
			if failing != tc.failing || why != tc.why {
				t.Errorf("RegionHealth(%s, prev %v) = %v, %q; want %v, %q", tc.pattern, tc.prev, failing, why, tc.failing, tc.why)
			}
		})
	}
}

// TestRegionHealthSequence feeds SCENARIOS row 3 (uploads fail about 30%
// of the time and pass on retry) one probe at a time, with the verdict
// fed back as prev, as an evaluator does.
func TestRegionHealthSequence(t *testing.T) {
	_, cs := dcLoad(t, dcYAML)
	const row3 = "FPPFPPFPPFPPFPPFPPFPPPPPPPPPPP"
	tests := []struct {
		name  string
		check *checks.Check
		// want is the verdict after each sample: '-' passing, 'X' failing.
		want string
	}{
		{"consecutive 2 misses it", cs["web-home"], "------------------------------"},
		// Trips at the 7th probe (3 of 10 counting unseen probes as
		// passes), holds while 30% fail, recovers once fewer than 3 of
		// the last 10 failed (the 23rd probe) and 2 passed in a row.
		{"ratio 0.3 over 10 catches it", cs["flaky-upload"], "------XXXXXXXXXXXXXXXX--------"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all := dcSamples(row3, "status 500, want 200")
			var got strings.Builder
			prev := false
			for i := range all {
				w := Window{Check: tc.check.ID, Region: "eu-west", Samples: all[max(0, i+1-10) : i+1]}
				prev, _ = RegionHealth(w, tc.check.Failure, tc.check.Recovery, prev)
				if prev {
					got.WriteByte('X')
				} else {
					got.WriteByte('-')
				}
			}
			if got.String() != tc.want {
				t.Errorf("verdicts\n got %s\nwant %s\n  of %s", got.String(), tc.want, row3)
			}
		})
	}
}

// dcResult is a realistic HTTP result.
func dcResult(check, region string, ok bool, reason string) *wire.Result {
	r := &wire.Result{V: wire.WireVersion, Check: check, Type: "http", Region: region, Agent: region + "-1", Seq: 7, Time: dcT0, OK: ok, Reason: reason, Duration: 0.12}
	r.Observed.StatusCode = 200
	r.Observed.ConnectedAddr = "203.0.113.10:443"
	if !ok {
		r.Observed.StatusCode = 503
	}
	return r
}

// dcIn builds region inputs from "region=state" pairs: pass, fail (status
// 503), timeout (failing, no response), stale (not live), nodata (live, no
// result). Regions not named are absent.
func dcIn(check string, pairs ...string) map[string]RegionInput {
	in := map[string]RegionInput{}
	for _, p := range pairs {
		region, state, _ := strings.Cut(p, "=")
		switch state {
		case "pass":
			in[region] = RegionInput{Live: true, Last: dcResult(check, region, true, "status 200")}
		case "fail":
			in[region] = RegionInput{Live: true, Failing: true, Why: "2 consecutive failures: status 503, want 200", Last: dcResult(check, region, false, "status 503, want 200")}
		case "timeout":
			r := dcResult(check, region, false, "timed out after 10s")
			r.Observed = wire.Observed{}
			in[region] = RegionInput{Live: true, Failing: true, Why: "2 consecutive failures: timed out after 10s", Last: r}
		case "ratio":
			in[region] = RegionInput{Live: true, Failing: true, Why: "4 of the last 10 probes failed (ratio 0.30): status 500, want 201", Last: dcResult(check, region, false, "status 500, want 201")}
		case "ratio-passing":
			in[region] = RegionInput{Live: true, Failing: true, Why: "3 of the last 10 probes failed (ratio 0.30): status 500, want 201", Last: dcResult(check, region, true, "status 201")}
		case "stale":
			in[region] = RegionInput{Live: false, Last: dcResult(check, region, true, "status 200")}
		case "nodata":
			in[region] = RegionInput{Live: true}
		default:
			panic("dcIn: " + p)
		}
	}
	return in
}

func TestDecide(t *testing.T) {
	_, cs := dcLoad(t, dcYAML)
	tests := []struct {
		name    string
		check   string
		in      map[string]RegionInput
		state   CheckState
		need    int
		minLive int
		live    string
		failing string
		stale   string
		summary string
	}{
		{"3/3 failing is DOWN", "web-home", dcIn("web-home", "us-east=fail", "eu-west=timeout", "ap-south=fail"),
			StateDown, 2, 2, "ap-south,eu-west,us-east", "ap-south,eu-west,us-east", "",
			"web-home DOWN from 3/3 regions: ap-south status 503, want 200; eu-west timed out after 10s; us-east status 503, want 200"},
		{"2/3 failing is DOWN", "web-home", dcIn("web-home", "us-east=fail", "eu-west=fail", "ap-south=pass"),
			StateDown, 2, 2, "ap-south,eu-west,us-east", "eu-west,us-east", "",
			"web-home DOWN from 2/3 regions: eu-west status 503, want 200; us-east status 503, want 200"},
		{"1/3 failing is DEGRADED", "web-home", dcIn("web-home", "us-east=pass", "eu-west=pass", "ap-south=fail"),
			StateDegraded, 2, 2, "ap-south,eu-west,us-east", "ap-south", "",
			"web-home DEGRADED in 1/3 regions: ap-south status 503, want 200"},
		{"0/3 failing is OK", "web-home", dcIn("web-home", "us-east=pass", "eu-west=pass", "ap-south=pass"),
			StateOK, 2, 2, "ap-south,eu-west,us-east", "", "",
			"web-home OK in 3/3 regions"},
		{"a stale region leaves the denominator: 1 of 2 live failing", "web-home", dcIn("web-home", "us-east=fail", "eu-west=pass", "ap-south=stale"),
			StateDegraded, 2, 2, "eu-west,us-east", "us-east", "ap-south",
			"web-home DEGRADED in 1/2 regions: us-east status 503, want 200 (stale: ap-south)"},
		{"a stale region leaves the denominator: 2 of 2 live failing", "web-home", dcIn("web-home", "us-east=fail", "eu-west=fail", "ap-south=stale"),
			StateDown, 2, 2, "eu-west,us-east", "eu-west,us-east", "ap-south",
			"web-home DOWN from 2/2 regions: eu-west status 503, want 200; us-east status 503, want 200 (stale: ap-south)"},
		{"a stale region's failure does not count", "web-home", dcIn("web-home", "us-east=pass", "eu-west=pass", "ap-south=stale"),
			StateOK, 2, 2, "eu-west,us-east", "", "ap-south",
			"web-home OK in 2/2 regions (stale: ap-south)"},
		{"one live region of three is UNKNOWN, even failing", "web-home", dcIn("web-home", "us-east=fail", "eu-west=stale", "ap-south=stale"),
			StateUnknown, 1, 2, "us-east", "us-east", "ap-south,eu-west",
			"web-home UNKNOWN: 1 of 3 regions live, need 2; failing: us-east status 503, want 200 (stale: ap-south, eu-west)"},
		{"no live region is UNKNOWN, never OK", "web-home", dcIn("web-home"),
			StateUnknown, 1, 2, "", "", "ap-south,eu-west,us-east",
			"web-home UNKNOWN: 0 of 3 regions live, need 2 (stale: ap-south, eu-west, us-east)"},
		{"a live region without a result does not count", "web-home", dcIn("web-home", "us-east=pass", "eu-west=nodata", "ap-south=nodata"),
			StateUnknown, 1, 2, "us-east", "", "",
			"web-home UNKNOWN: 1 of 3 regions live, need 2 (no fresh result: ap-south, eu-west)"},
		{"quorum 1: one live region is enough, and its failure is DOWN", "any-one", dcIn("any-one", "us-east=fail", "eu-west=stale", "ap-south=stale"),
			StateDown, 1, 1, "us-east", "us-east", "ap-south,eu-west",
			"any-one DOWN from 1/1 regions: us-east status 503, want 200 (stale: ap-south, eu-west)"},
		{"quorum 2: two live regions suffice", "two-of-three", dcIn("two-of-three", "us-east=fail", "eu-west=pass", "ap-south=stale"),
			StateDegraded, 2, 2, "eu-west,us-east", "us-east", "ap-south",
			"two-of-three DEGRADED in 1/2 regions: us-east status 503, want 200 (stale: ap-south)"},
		{"quorum 2: one live region is UNKNOWN", "two-of-three", dcIn("two-of-three", "us-east=pass", "eu-west=stale", "ap-south=stale"),
			StateUnknown, 2, 2, "us-east", "", "ap-south,eu-west",
			"two-of-three UNKNOWN: 1 of 3 regions live, need 2 (stale: ap-south, eu-west)"},
		{"quorum all: every region must be live", "everyone", dcIn("everyone", "us-east=fail", "eu-west=fail", "ap-south=stale"),
			StateUnknown, 2, 3, "eu-west,us-east", "eu-west,us-east", "ap-south",
			"everyone UNKNOWN: 2 of 3 regions live, need 3; failing: eu-west status 503, want 200; us-east status 503, want 200 (stale: ap-south)"},
		{"a ratio rule always says the rule, whether the latest probe failed or passed", "flaky-upload", dcIn("flaky-upload", "us-east=ratio", "eu-west=ratio-passing", "ap-south=pass"),
			StateDown, 2, 2, "ap-south,eu-west,us-east", "eu-west,us-east", "",
			"flaky-upload DOWN from 2/3 regions: eu-west 3 of the last 10 probes failed (ratio 0.30): status 500, want 201; us-east 4 of the last 10 probes failed (ratio 0.30): status 500, want 201"},
		{"quorum all: two of three failing is DEGRADED", "everyone", dcIn("everyone", "us-east=fail", "eu-west=fail", "ap-south=pass"),
			StateDegraded, 3, 3, "ap-south,eu-west,us-east", "eu-west,us-east", "",
			"everyone DEGRADED in 2/3 regions: eu-west status 503, want 200; us-east status 503, want 200"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(cs[tc.check], tc.in)
			if d.State != tc.state || d.Need != tc.need || d.MinLive != tc.minLive {
				t.Errorf("state %s need %d min_live %d; want %s need %d min_live %d", d.State, d.Need, d.MinLive, tc.state, tc.need, tc.minLive)
			}
			for _, l := range []struct {
				name      string
				got, want []string
			}{{"live", d.Live, dcList(tc.live)}, {"failing", d.Failing, dcList(tc.failing)}, {"stale", d.Stale, dcList(tc.stale)}} {
				if !slices.Equal(l.got, l.want) {
					t.Errorf("%s = %v, want %v", l.name, l.got, l.want)
				}
			}
			if d.Summary != tc.summary {
				t.Errorf("summary\n got %q\nwant %q", d.Summary, tc.summary)
			}
			if d.Check != tc.check || d.Regions != 3 {
				t.Errorf("check %q regions %d", d.Check, d.Regions)
			}
			for _, r := range d.Failing {
				if d.Why[r] == "" {
					t.Errorf("no why for failing region %s", r)
				}
			}
			if d.Disagreement != nil {
				t.Errorf("unexpected disagreement %+v", d.Disagreement)
			}
		})
	}
}

func dcList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func TestDecideSummaryBounded(t *testing.T) {
	_, cs := dcLoad(t, dcYAML)
	in := dcIn("web-home", "us-east=fail", "eu-west=fail", "ap-south=fail")
	for r, ri := range in {
		ri.Last.Reason = strings.Repeat("ü", 600) // 1200 bytes each
		in[r] = ri
	}
	d := Decide(cs["web-home"], in)
	if len(d.Summary) > 1024 || !strings.HasSuffix(d.Summary, "…") || !strings.HasPrefix(d.Summary, "web-home DOWN from 3/3 regions: ap-south ü") {
		t.Errorf("summary of %d bytes: %.80q...", len(d.Summary), d.Summary)
	}
	if !utf8ValidString(d.Summary) {
		t.Error("summary cut inside a rune")
	}
}

func utf8ValidString(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestDecideFromWindows wires RegionHealth into Decide as the evaluator
// does: a region flapping between pass and fail is not DOWN.
func TestDecideFromWindows(t *testing.T) {
	_, cs := dcLoad(t, dcYAML)
	c := cs["web-home"]
	windows := map[string]string{"us-east": "PPPPFF", "eu-west": "PPPPPF", "ap-south": "FPFPFP"}
	in := map[string]RegionInput{}
	for r, pat := range windows {
		w := Window{Check: c.ID, Region: r, Samples: dcSamples(pat, "status 503, want 200")}
		failing, why := RegionHealth(w, c.Failure, c.Recovery, false)
		last := dcResult(c.ID, r, pat[len(pat)-1] == 'P', "status 503, want 200")
		in[r] = RegionInput{Live: true, Failing: failing, Why: why, Last: last}
	}
	d := Decide(c, in)
	want := "web-home DEGRADED in 1/3 regions: us-east status 503, want 200"
	if d.State != StateDegraded || d.Summary != want || d.Why["us-east"] != "2 consecutive failures: status 503, want 200" {
		t.Errorf("got %s %q why %v; want DEGRADED %q", d.State, d.Summary, d.Why, want)
	}
}
