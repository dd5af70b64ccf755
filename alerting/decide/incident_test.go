package decide

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/checks"
)

const incYAML = `version: 1
regions: [us-east, eu-west, ap-south]
checks:
  - id: web-home
    http: {url: "https://www.example.com/"}
  - id: web-for
    for: 2m
    http: {url: "https://www.example.com/for"}
  - id: web-flap
    flap: {transitions: 4, window: 30m}
    http: {url: "https://www.example.com/flap"}
  - id: www-a-paged
    on_disagreement: page
    dns: {name: www.example.com, resolvers: [system], expect: {answers: [203.0.113.10]}}
maintenance:
  - name: nightly-deploy
    checks: [web-home]
    cron: "0 2 * * *"
    duration: 30m
    tz: Europe/Berlin
  - name: eu-migration
    checks: [web-for]
    regions: [eu-west]
    start: 2030-01-02T10:00:00Z
    end: 2030-01-02T12:00:00Z
`

// dcDecision builds the decision of check c for a short code:
//
//	ok               every region passes
//	down             every region fails
//	down:R1,R2       R1 and R2 fail, the third passes
//	degraded         us-east fails
//	degraded:R       R fails
//	unknown          only us-east is live
//	split            ok, with a DNS disagreement (dns checks)
func dcDecision(t testing.TB, c *checks.Check, code string) Decision {
	t.Helper()
	kind, arg, _ := strings.Cut(code, ":")
	regions := []string{"us-east", "eu-west", "ap-south"}
	var pairs []string
	switch kind {
	case "ok":
		for _, r := range regions {
			pairs = append(pairs, r+"=pass")
		}
	case "down", "degraded":
		failing := map[string]bool{}
		switch {
		case arg != "":
			for _, r := range strings.Split(arg, ",") {
				failing[r] = true
			}
		case kind == "down":
			failing = map[string]bool{"us-east": true, "eu-west": true, "ap-south": true}
		default:
			failing["us-east"] = true
		}
		for _, r := range regions {
			if failing[r] {
				pairs = append(pairs, r+"=fail")
			} else {
				pairs = append(pairs, r+"=pass")
			}
		}
	case "unknown":
		pairs = []string{"us-east=pass", "eu-west=stale", "ap-south=stale"}
	case "split":
		in := map[string]RegionInput{}
		for _, r := range regions {
			ans := web
			if r == "ap-south" {
				ans = "198.51.100.7"
			}
			res := cmpDNS(c.ID, r, ans, "-", "-")
			in[r] = RegionInput{Live: true, Failing: false, Last: res}
		}
		return Decide(c, in)
	default:
		t.Fatalf("dcDecision: %q", code)
	}
	d := Decide(c, dcIn(c.ID, pairs...))
	if want := map[string]CheckState{"ok": StateOK, "down": StateDown, "degraded": StateDegraded, "unknown": StateUnknown}[kind]; d.State != want {
		t.Fatalf("dcDecision(%s) = %s: %s", code, d.State, d.Summary)
	}
	return d
}

// dcEventList renders events as "action kind route".
func dcEventList(events []Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s %s", e.Action, e.Kind, e.Route))
	}
	return out
}

type incStep struct {
	at   time.Time
	d    string
	want []string // "action kind route"
}

// incRun steps c through steps and checks the events of each.
func incRun(t *testing.T, cfg *checks.Config, c *checks.Check, steps []incStep) ([]Event, IncidentState) {
	t.Helper()
	var s IncidentState
	var all []Event
	for i, st := range steps {
		var events []Event
		s, events = Step(s, dcDecision(t, c, st.d), c, cfg.Maintenance, st.at)
		want := st.want
		if want == nil {
			want = []string{}
		}
		if got := dcEventList(events); !slices.Equal(got, want) {
			t.Fatalf("step %d (%s at %s): events %q, want %q", i, st.d, st.at.Format(time.RFC3339), got, want)
		}
		for _, e := range events {
			if e.Check != c.ID || e.DedupKey != DedupKey(c.ID, e.Kind) || !e.Time.Equal(st.at) || e.Summary == "" || len(e.Summary) > 1024 {
				t.Errorf("step %d: malformed event %+v", i, e)
			}
		}
		all = append(all, events...)
	}
	return all, s
}

// incAt is n minutes after dcT0.
func incAt(n int) time.Time { return dcT0.Add(time.Duration(n) * time.Minute) }

func TestStepLifecycle(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	const (
		down    = "trigger down critical"
		downOK  = "resolve down critical"
		deg     = "trigger degraded warning"
		degOK   = "resolve degraded warning"
		unk     = "trigger unknown meta"
		unkOK   = "resolve unknown meta"
		split   = "trigger disagreement critical"
		splitOK = "resolve disagreement critical"
	)
	tests := []struct {
		name  string
		check string
		steps []incStep
	}{
		{"DOWN pages at once without for, and resolves when OK", "web-home", []incStep{
			{incAt(0), "ok", nil},
			{incAt(1), "down", []string{down}},
			{incAt(2), "down", nil},
			{incAt(3), "ok", []string{downOK}},
			{incAt(4), "ok", nil},
		}},
		{"DEGRADED and UNKNOWN keep DOWN open", "web-home", []incStep{
			{incAt(0), "down", []string{down}},
			{incAt(1), "degraded", nil},
			{incAt(2), "unknown", []string{unk}},
			{incAt(3), "down", []string{unkOK}},
			{incAt(4), "ok", []string{downOK}},
		}},
		{"for: 2m delays the page", "web-for", []incStep{
			{incAt(0), "down", nil},
			{incAt(1), "down", nil},
			{incAt(2), "down", []string{down}},
			{incAt(3), "ok", []string{downOK}},
		}},
		{"for: a break in DOWN restarts the delay; DEGRADED for less than for: is no warning", "web-for", []incStep{
			{incAt(0), "down", nil},
			{incAt(1), "degraded", nil},
			{incAt(2), "down", nil},
			{incAt(3), "down", nil},
			{incAt(4), "down", []string{down}},
			{incAt(5), "degraded", nil},
			{incAt(6), "ok", []string{downOK}},
		}},
		{"for: DEGRADED warns once it has lasted for:", "web-for", []incStep{
			{incAt(0), "degraded", nil},
			{incAt(1), "degraded", nil},
			{incAt(2), "degraded:eu-west", []string{deg}},
			{incAt(3), "down", nil},
			{incAt(5), "down", []string{down, degOK}},
		}},
		{"DEGRADED that turns DOWN within an interval is no warning", "web-home", []incStep{
			{incAt(0), "degraded", nil},
			{incAt(0).Add(20 * time.Second), "down", []string{down}},
			{incAt(1), "ok", []string{downOK}},
		}},
		{"for: DOWN over before for never pages", "web-for", []incStep{
			{incAt(0), "down", nil},
			{incAt(1), "ok", nil},
			{incAt(2), "down", nil},
			{incAt(3), "ok", nil},
		}},
		{"DEGRADED warns once it has lasted an interval, and resolves when OK", "web-home", []incStep{
			{incAt(0), "degraded", nil},
			{incAt(1), "degraded:eu-west", []string{deg}},
			{incAt(2), "unknown", []string{unk}},
			{incAt(3), "ok", []string{degOK, unkOK}},
		}},
		{"UNKNOWN is never resolved by silence", "web-home", []incStep{
			{incAt(0), "unknown", []string{unk}},
			{incAt(10), "unknown", nil},
			{incAt(20), "degraded", []string{unkOK}},
			{incAt(21), "degraded", []string{deg}},
			{incAt(22), "ok", []string{degOK}},
		}},
		{"a disagreement pages when on_disagreement is page", "www-a-paged", []incStep{
			{incAt(0), "split", []string{split}},
			{incAt(1), "split", nil},
			{incAt(2), "unknown", []string{unk}},
			{incAt(3), "ok", []string{unkOK, splitOK}},
		}},
		{"flap damping: the fifth change in 30m holds the incident open", "web-flap", []incStep{
			{incAt(0), "down", []string{down}},
			{incAt(1), "ok", []string{downOK}},
			{incAt(2), "down", []string{down}},
			{incAt(3), "ok", []string{downOK}},
			{incAt(4), "down", []string{down}}, // the fifth transition: flapping
			{incAt(5), "ok", nil},
			{incAt(6), "down", nil},
			{incAt(7), "ok", nil},
			{incAt(20), "degraded", nil}, // not OK: the quiet period restarts
			{incAt(21), "ok", nil},
			{incAt(50), "ok", nil},
			{incAt(51), "ok", []string{downOK}}, // OK for a full 30m
			{incAt(52), "down", []string{down}},
			{incAt(53), "ok", []string{downOK}},
		}},
		{"flap damping: slow changes never flap", "web-flap", func() []incStep {
			var st []incStep
			for i := range 12 {
				if i%2 == 0 {
					st = append(st, incStep{incAt(10 * i), "down", []string{down}})
				} else {
					st = append(st, incStep{incAt(10 * i), "ok", []string{downOK}})
				}
			}
			return st
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			incRun(t, cfg, cs[tc.check], tc.steps)
		})
	}
}

func TestStepFlappingMarksTheEvent(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	c := cs["web-flap"]
	events, s := incRun(t, cfg, c, []incStep{
		{incAt(0), "down", []string{"trigger down critical"}},
		{incAt(1), "ok", []string{"resolve down critical"}},
		{incAt(2), "down", []string{"trigger down critical"}},
		{incAt(3), "ok", []string{"resolve down critical"}},
		{incAt(4), "down", []string{"trigger down critical"}},
		{incAt(5), "ok", nil},
	})
	last := events[len(events)-1]
	if !last.Flapping || !strings.HasSuffix(last.Summary, " [flapping]") || !last.OpenedAt.Equal(incAt(4)) {
		t.Errorf("flapping trigger: %+v", last)
	}
	if !s.Down.Open || !s.Down.Flapping || !s.Down.ClearSince.Equal(incAt(5)) || len(s.Down.Transitions) > c.Flap.Transitions {
		t.Errorf("state: %+v", s.Down)
	}
	if events[1].Summary != "web-flap down resolved after 1m0s: web-flap OK in 3/3 regions" {
		t.Errorf("resolve summary %q", events[1].Summary)
	}
}

func TestStepMaintenance(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// 2030-01-02 is a Wednesday; Berlin is UTC+1 in January.
	at := func(hh, mm int) time.Time { return time.Date(2030, 1, 2, hh, mm, 0, 0, berlin) }
	utc := func(hh, mm int) time.Time { return time.Date(2030, 1, 2, hh, mm, 0, 0, time.UTC) }
	const down, downOK, deg = "trigger down critical", "resolve down critical", "trigger degraded warning"
	tests := []struct {
		name  string
		check string
		steps []incStep
	}{
		{"recurring window in Berlin: suppressed, then pages at its end if still DOWN", "web-home", []incStep{
			{at(2, 5), "down", nil},
			{at(2, 20), "down", nil},
			{at(2, 29), "down", nil},
			{at(2, 30), "down", []string{down}},
			{at(2, 40), "ok", []string{downOK}},
		}},
		{"02:05 UTC is 03:05 in Berlin: outside the window", "web-home", []incStep{
			{utc(2, 5), "down", []string{down}},
		}},
		{"over before the window ends: not a word", "web-home", []incStep{
			{at(2, 5), "down", nil},
			{at(2, 20), "ok", nil},
			{at(2, 35), "ok", nil},
		}},
		{"paged before the window: its resolve is not suppressed", "web-home", []incStep{
			{at(1, 55), "down", []string{down}},
			{at(2, 5), "down", nil},
			{at(2, 10), "ok", []string{downOK}},
		}},
		{"DOWN in the window, only DEGRADED at its end: warns instead", "web-home", []incStep{
			{at(2, 5), "down", nil},
			{at(2, 30), "degraded", nil},
			{at(2, 31), "degraded", []string{deg}},
		}},
		{"next night's window too", "web-home", []incStep{
			{at(2, 5).AddDate(0, 0, 1), "down", nil},
			{at(2, 30).AddDate(0, 0, 1), "down", []string{down}},
		}},
		{"a region's window hides only that region's failure", "web-for", []incStep{
			{utc(10, 30), "degraded:eu-west", nil},
			{utc(10, 31), "degraded:us-east", nil},
			{utc(10, 32), "degraded:us-east", []string{deg}},
		}},
		{"a region's window does not hide a quorum that includes others", "web-for", []incStep{
			{utc(10, 30), "down:eu-west,us-east", nil},
			{utc(10, 32), "down:eu-west,us-east", []string{down}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			events, s := incRun(t, cfg, cs[tc.check], tc.steps)
			if tc.name == "recurring window in Berlin: suppressed, then pages at its end if still DOWN" {
				if !events[0].OpenedAt.Equal(at(2, 5)) || !events[0].Time.Equal(at(2, 30)) {
					t.Errorf("deferred trigger opened %v sent %v", events[0].OpenedAt, events[0].Time)
				}
				if s.Down.Open || s.Down.Paged {
					t.Errorf("state after resolve: %+v", s.Down)
				}
			}
		})
	}
}

// TestStepSuppressedStateIsTracked looks inside the state while a trigger
// waits for the end of maintenance.
func TestStepSuppressedStateIsTracked(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	c := cs["web-home"]
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2030, 1, 2, 2, 5, 0, 0, berlin)
	s, events := Step(IncidentState{}, dcDecision(t, c, "down"), c, cfg.Maintenance, now)
	if len(events) != 0 || !s.Down.Open || s.Down.Paged || !s.Down.OpenedAt.Equal(now) || s.State != StateDown || !s.DownSince.Equal(now) {
		t.Errorf("events %v, state %+v", dcEventList(events), s)
	}
}

func TestDedupKey(t *testing.T) {
	// These values are a contract: PagerDuty folds events by them, across
	// replicas and across upgrades. Changing them splits open incidents.
	tests := []struct {
		kind IncidentKind
		want string
	}{
		{IncidentDown, "outpost-61b12e825d5ccabd"},
		{IncidentDegraded, "outpost-65ebd790c02d75fb"},
		{IncidentUnknown, "outpost-4120916a5dded5e7"},
		{IncidentDisagreement, "outpost-5516a4355c81cd25"},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			if got := DedupKey("web-home", tc.kind); got != tc.want {
				t.Errorf("DedupKey(web-home, %s) = %s, want %s", tc.kind, got, tc.want)
			}
		})
	}
	if DedupKey("web-home", IncidentDown) == DedupKey("web-home2", IncidentDown) {
		t.Error("dedup keys of two checks collide")
	}
}

// TestStepReplicasAgree feeds two evaluator replicas the same sequence of
// decisions; one of them persists and reloads its state as JSON between
// every step, as across restarts. Their events must be byte-identical.
func TestStepReplicasAgree(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	codes := []string{"ok", "ok", "ok", "down", "degraded", "degraded:eu-west", "down:eu-west,us-east", "unknown"}
	for _, id := range []string{"web-home", "web-for", "web-flap"} {
		t.Run(id, func(t *testing.T) {
			c := cs[id]
			rng := rand.New(rand.NewPCG(1, 2)) // fixed: the test is deterministic
			berlin, _ := time.LoadLocation("Europe/Berlin")
			now := time.Date(2030, 1, 1, 23, 0, 0, 0, berlin) // spans a nightly window
			var a, b IncidentState
			var evA, evB []Event
			for range 600 {
				now = now.Add(time.Duration(1+rng.IntN(90)) * 30 * time.Second / 10)
				d := dcDecision(t, c, codes[rng.IntN(len(codes))])
				var ea, eb []Event
				a, ea = Step(a, d, c, cfg.Maintenance, now)
				b, eb = Step(b, d, c, cfg.Maintenance, now)
				evA, evB = append(evA, ea...), append(evB, eb...)
				raw, err := json.Marshal(b)
				if err != nil {
					t.Fatal(err)
				}
				b = IncidentState{}
				if err := json.Unmarshal(raw, &b); err != nil {
					t.Fatal(err)
				}
			}
			ja, _ := json.Marshal(evA)
			jb, _ := json.Marshal(evB)
			if len(evA) < 10 {
				t.Fatalf("only %d events: the sequence tests too little", len(evA))
			}
			if !bytes.Equal(ja, jb) {
				t.Errorf("replicas disagree:\n%s\n%s", ja, jb)
			}
			sa, _ := json.Marshal(a)
			sb, _ := json.Marshal(b)
			if !bytes.Equal(sa, sb) {
				t.Errorf("states differ:\n%s\n%s", sa, sb)
			}
		})
	}
}

// TestStepPagesPairUp checks, over a long random sequence, that triggers
// and resolves of each kind alternate, that a resolve names the route of
// its trigger, and that the flap history stays bounded.
func TestStepPagesPairUp(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	for _, id := range []string{"web-home", "web-flap", "www-a-paged"} {
		t.Run(id, func(t *testing.T) {
			c := cs[id]
			codes := []string{"ok", "down", "degraded", "unknown", "down:eu-west,us-east"}
			if c.DNS != nil {
				codes = []string{"ok", "split", "unknown"}
			}
			rng := rand.New(rand.NewPCG(3, 4))
			now := dcT0
			var s IncidentState
			open := map[IncidentKind]string{}
			for i := range 2000 {
				now = now.Add(time.Duration(rng.IntN(120)) * time.Second)
				var events []Event
				s, events = Step(s, dcDecision(t, c, codes[rng.IntN(len(codes))]), c, cfg.Maintenance, now)
				for _, e := range events {
					route, isOpen := open[e.Kind]
					switch {
					case e.Action == EventTrigger && isOpen:
						t.Fatalf("step %d: second trigger of %s", i, e.Kind)
					case e.Action == EventResolve && (!isOpen || route != e.Route):
						t.Fatalf("step %d: resolve of %s on %s, open %v on %q", i, e.Kind, e.Route, isOpen, route)
					case e.Action == EventTrigger:
						open[e.Kind] = e.Route
					default:
						delete(open, e.Kind)
					}
				}
				for _, k := range incidentKinds {
					in, _ := s.Incident(k)
					if _, paged := open[k]; paged != in.Paged || len(in.Transitions) > max(c.Flap.Transitions, 0) {
						t.Fatalf("step %d: %s incident %+v, paged per events %v", i, k, in, paged)
					}
				}
			}
		})
	}
}

// TestStepDoesNotModifyItsArgument: Step is pure, so the caller's state
// stays as it was, down to the flap history's backing array.
func TestStepDoesNotModifyItsArgument(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	c := cs["web-flap"]
	var s IncidentState
	for i, code := range []string{"down", "ok", "down", "ok"} {
		s, _ = Step(s, dcDecision(t, c, code), c, cfg.Maintenance, incAt(i))
	}
	s.Down.Transitions = slices.Grow(s.Down.Transitions, 8) // room to append in place
	before, _ := json.Marshal(s)
	snapshot := slices.Clone(s.Down.Transitions[:cap(s.Down.Transitions)])
	_, _ = Step(s, dcDecision(t, c, "down"), c, cfg.Maintenance, incAt(40))
	after, _ := json.Marshal(s)
	if !bytes.Equal(before, after) || !slices.Equal(snapshot, s.Down.Transitions[:cap(s.Down.Transitions)]) {
		t.Errorf("Step modified its argument:\n%s\n%s", before, after)
	}
}

func TestIncidentStateJSON(t *testing.T) {
	cfg, cs := dcLoad(t, incYAML)
	c := cs["web-flap"]
	var s IncidentState
	for i, code := range []string{"down", "ok", "down"} {
		s, _ = Step(s, dcDecision(t, c, code), c, cfg.Maintenance, incAt(i))
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"check":"web-flap","state":"DOWN","since":"2030-01-02T12:02:00Z","down_since":"2030-01-02T12:02:00Z",` +
		`"down":{"open":true,"opened_at":"2030-01-02T12:02:00Z","paged":true,"paged_at":"2030-01-02T12:02:00Z","route":"critical",` +
		`"transitions":["2030-01-02T12:00:00Z","2030-01-02T12:01:00Z","2030-01-02T12:02:00Z"]},` +
		`"degraded":{"open":false,"paged":false},"unknown":{"open":false,"paged":false},"disagreement":{"open":false,"paged":false}}`
	if string(raw) != want {
		t.Errorf("JSON\n got %s\nwant %s", raw, want)
	}
}
