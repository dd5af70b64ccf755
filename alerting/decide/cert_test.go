package decide

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

const certYAML = `version: 1
regions: [us-east, eu-west, ap-south]
checks:
  - id: web-cert
    http: {url: "https://www.example.com/", cert_warn_days: 21, expect: {cert_min_days: 7}}
  - id: warn-off
    tls: {address: "www.example.com:443", cert_warn_days: 0}
`

const day = 24 * time.Hour

// certObs is a certificate with fingerprint fp, expiring at notAfter.
func certObs(fp string, notAfter time.Time) *wire.TLSObservation {
	return &wire.TLSObservation{Version: "1.3", ServerName: "www.example.com", NotAfter: notAfter,
		Subject: "www.example.com", Issuer: "Example CA R3", SANs: []string{"www.example.com", "example.com"},
		Serial: "1f" + fp, Fingerprint: fp}
}

// seenBy is the same observation from every region named.
func seenBy(t *wire.TLSObservation, regions ...string) map[string]*wire.TLSObservation {
	m := map[string]*wire.TLSObservation{}
	for _, r := range regions {
		m[r] = t
	}
	return m
}

// certEvents lists events as "trigger web-cert 10d [eu-west us-east]".
func certEvents(events []CertEvent) []string {
	var out []string
	for _, ev := range events {
		out = append(out, fmt.Sprintf("%s %s %dd %v", ev.Action, ev.Check, ev.DaysLeft, ev.Regions))
	}
	return out
}

func wantCertEvents(t *testing.T, step string, events []CertEvent, want ...string) {
	t.Helper()
	got := certEvents(events)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: events\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStepCertsLifecycle walks one certificate through its life with a
// fake clock: outside the window nothing; entering it one warning, however
// many regions and probes see it; a restart (the state through JSON, as
// the state store keeps it) sends nothing again; flapping without renewal
// sends nothing; a renewal still inside the window gets its own warning
// and resolves the old one; a renewal outside resolves.
func TestStepCertsLifecycle(t *testing.T) {
	_, byID := dcLoad(t, certYAML)
	c := byID["web-cert"]
	now := dcT0
	old := certObs("aaaa", dcT0.Add(30*day))
	var st CertState

	step := func(name string, seen map[string]*wire.TLSObservation, want ...string) {
		t.Helper()
		var events []CertEvent
		st, events = StepCerts(st, c, seen, now)
		wantCertEvents(t, name, events, want...)
	}

	step("30 days left, outside the 21-day window", seenBy(old, "us-east", "eu-west"))
	now = dcT0.Add(9*day + time.Hour) // 20 days 23 hours left
	step("one region enters the window", seenBy(old, "us-east"), "trigger web-cert 20d [us-east]")
	for i := range 50 {
		now = now.Add(30 * time.Second)
		step(fmt.Sprintf("probe %d from every region", i), seenBy(old, "us-east", "eu-west", "ap-south"))
	}

	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	st = nil
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	step("after a restart", seenBy(old, "us-east", "eu-west", "ap-south"))

	step("the host stops answering: no certificate seen", nil)
	step("it answers again with the same certificate", seenBy(old, "eu-west"))
	now = dcT0.Add(24 * day) // 6 days left: cert_min_days fails the check now
	step("inside cert_min_days the warning is not repeated", seenBy(old, "us-east", "eu-west", "ap-south"))

	short := certObs("bbbb", now.Add(15*day)) // a renewal that is itself inside the window
	step("renewed in one region, the old one still seen elsewhere", map[string]*wire.TLSObservation{"us-east": short, "eu-west": old},
		"trigger web-cert 15d [us-east]")
	step("renewed everywhere", seenBy(short, "us-east", "eu-west", "ap-south"),
		"resolve web-cert 6d [ap-south eu-west us-east]")
	step("the old one flaps back in one region", map[string]*wire.TLSObservation{"us-east": old, "eu-west": short})
	long := certObs("cccc", now.Add(90*day))
	step("renewed for 90 days", seenBy(long, "us-east", "eu-west", "ap-south"), "resolve web-cert 15d [ap-south eu-west us-east]")
	step("quiet afterwards", seenBy(long, "us-east", "eu-west", "ap-south"))
}

// TestStepCertsEvents checks what one trigger and its resolve carry: a
// key per certificate and check, the same on every evaluator, and text a
// human can act on.
func TestStepCertsEvents(t *testing.T) {
	_, byID := dcLoad(t, certYAML)
	c := byID["web-cert"]
	old := certObs("aaaa", dcT0.Add(10*day))
	st, events := StepCerts(nil, c, seenBy(old, "us-east", "eu-west"), dcT0)
	if len(events) != 1 {
		t.Fatalf("events %v, want one trigger", certEvents(events))
	}
	ev := events[0]
	const want = `certificate of www.example.com expires in 10 days (not after 2030-01-12T12:00:00Z): subject "www.example.com", SANs www.example.com example.com, issuer "Example CA R3"; seen from eu-west, us-east; check web-cert fails with under 7 days left`
	if ev.Summary != want {
		t.Errorf("summary\n%s\nwant\n%s", ev.Summary, want)
	}
	if ev.DedupKey != CertDedupKey("web-cert", CertID(old)) || ev.DedupKey == DedupKey("web-cert", IncidentDegraded) || !strings.HasPrefix(ev.DedupKey, "outpost-") {
		t.Errorf("dedup key %q: want CertDedupKey, apart from the check's incidents", ev.DedupKey)
	}
	renewed := certObs("bbbb", dcT0.Add(100*day))
	_, events = StepCerts(st, c, seenBy(renewed, "ap-south"), dcT0.Add(day))
	if len(events) != 1 || events[0].Action != EventResolve || events[0].DedupKey != ev.DedupKey {
		t.Fatalf("events %+v, want the resolve of %s", events, ev.DedupKey)
	}
	const wantResolve = `certificate of www.example.com expiring 2030-01-12T12:00:00Z replaced: ap-south now sees one not after 2030-04-12T12:00:00Z (issuer "Example CA R3"); check web-cert`
	if events[0].Summary != wantResolve {
		t.Errorf("resolve summary\n%s\nwant\n%s", events[0].Summary, wantResolve)
	}
	// Another check seeing the same certificate has its own key.
	if CertDedupKey("api-cert", CertID(old)) == ev.DedupKey {
		t.Error("two checks share a certificate warning's key")
	}
}

// TestStepCertsEdges: what must send nothing, and what must stay bounded.
func TestStepCertsEdges(t *testing.T) {
	_, byID := dcLoad(t, certYAML)
	soon := certObs("aaaa", dcT0.Add(3*day))
	t.Run("cert_warn_days 0", func(t *testing.T) {
		st, events := StepCerts(nil, byID["warn-off"], seenBy(soon, "us-east"), dcT0)
		if len(events) != 0 || len(st) != 0 {
			t.Fatalf("warnings off, got %v (state %v)", certEvents(events), st)
		}
	})
	t.Run("nothing changed keeps the state itself", func(t *testing.T) {
		st, _ := StepCerts(nil, byID["web-cert"], seenBy(soon, "us-east"), dcT0)
		next, events := StepCerts(st, byID["web-cert"], seenBy(soon, "us-east"), dcT0.Add(time.Minute))
		if len(events) != 0 || fmt.Sprintf("%p", next) != fmt.Sprintf("%p", st) {
			t.Fatalf("unchanged state was copied or sent %v", certEvents(events))
		}
	})
	t.Run("no certificate seen resolves nothing", func(t *testing.T) {
		st, _ := StepCerts(nil, byID["web-cert"], seenBy(soon, "us-east"), dcT0)
		_, events := StepCerts(st, byID["web-cert"], map[string]*wire.TLSObservation{"us-east": nil, "eu-west": {}}, dcT0.Add(time.Hour))
		if len(events) != 0 {
			t.Fatalf("got %v", certEvents(events))
		}
	})
	t.Run("records are bounded", func(t *testing.T) {
		var st CertState
		for i := range 3 * MaxCertRecords {
			st, _ = StepCerts(st, byID["web-cert"], seenBy(certObs(fmt.Sprintf("%04x", i), dcT0.Add(5*day)), "us-east"), dcT0.Add(time.Duration(i)*time.Minute))
		}
		if len(st) != MaxCertRecords {
			t.Fatalf("%d records, want %d", len(st), MaxCertRecords)
		}
		// The latest certificate is remembered.
		if _, ok := st[CertID(certObs(fmt.Sprintf("%04x", 3*MaxCertRecords-1), dcT0.Add(5*day)))]; !ok {
			t.Error("the latest certificate was forgotten")
		}
	})
	t.Run("long expired records are forgotten", func(t *testing.T) {
		st, _ := StepCerts(nil, byID["web-cert"], seenBy(soon, "us-east"), dcT0)
		next, _ := StepCerts(st, byID["web-cert"], nil, dcT0.Add(40*day))
		if len(next) != 0 {
			t.Fatalf("state %v, want the record of a certificate expired 37 days ago gone", next)
		}
	})
}

// BenchmarkStepCertsSteady is the cost added to every decision of an
// HTTPS check whose certificate was already warned about, seen from three
// regions: nothing to send.
func BenchmarkStepCertsSteady(b *testing.B) {
	_, byID := dcLoad(b, certYAML)
	c := byID["web-cert"]
	soon := certObs("aaaa", dcT0.Add(10*day))
	seen := seenBy(soon, "us-east", "eu-west", "ap-south")
	st, _ := StepCerts(nil, c, seen, dcT0)
	b.ReportAllocs()
	for b.Loop() {
		StepCerts(st, c, seen, dcT0.Add(time.Hour))
	}
}
