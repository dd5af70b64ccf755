package alerting

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// certFeed feeds results of check web-cert that carry a certificate to an
// evaluator, from the regions it is told, and ticks it.
type certFeed struct {
	cfg *checks.Config
	clk *clocktest.Fake
	seq uint64
}

func newCertFeed(t *testing.T) *certFeed {
	cfg := regionConfig(t, "us-east", `checks:
  - id: web-cert
    interval: 30s
    failure: {consecutive: 2}
    http: {url: "https://www.example.test/", cert_warn_days: 21, expect: {cert_min_days: 7}}
`)
	return &certFeed{cfg: cfg, clk: clocktest.New(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))}
}

// cert is a certificate of www.example.test with fingerprint fp.
func (f *certFeed) cert(fp string, notAfter time.Time) *wire.TLSObservation {
	return &wire.TLSObservation{Version: "1.3", ServerName: "www.example.test", NotAfter: notAfter, Subject: "www.example.test",
		Issuer: "Example CA R3", SANs: []string{"www.example.test"}, Serial: "0a" + fp, Fingerprint: fp}
}

// feed sends one result per region, as an agent would at the probe's
// time, then ticks the evaluator a second later (every tick 30s apart is
// a full sweep). A result fails with the probe's cert_min_days reason when
// the certificate has less than 7 days left.
func (f *certFeed) feed(t *testing.T, ev *Evaluator, cert *wire.TLSObservation, regions ...string) {
	t.Helper()
	f.clk.Advance(29 * time.Second)
	f.seq++
	for _, region := range regions {
		r := wire.Result{V: 1, Check: "web-cert", Type: "http", Region: region, Time: f.clk.Now(), OK: true,
			Observed: wire.Observed{StatusCode: 200, TLS: cert}}
		if left := cert.NotAfter.Sub(f.clk.Now()); left < 7*24*time.Hour {
			r.OK, r.Reason = false, fmt.Sprintf("certificate expires in %d days (%s), want at least 7", int(left.Hours()/24), cert.NotAfter.Format("2006-01-02"))
		}
		if err := ev.Apply(wire.Batch{V: 1, Agent: "a-" + region, Region: region, Seq: f.seq, Created: f.clk.Now(), Results: []wire.Result{r}}); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.Advance(time.Second)
	ev.tick(context.Background(), f.clk.Now())
}

// certNotes are the certificate notifications among notes.
func certNotes(notes *notifytest.Recorder) []notify.Notification {
	var out []notify.Notification
	for _, n := range notes.Delivered() {
		if n.Kind == kindCertExpiring {
			out = append(out, n)
		}
	}
	return out
}

// TestCertWarningLifecycle drives a real evaluator with a data dir and a
// fake clock through a certificate's life: one warning-route warning when
// it enters cert_warn_days, whatever the probes and regions that follow;
// none again after a restart on the same data dir; cert_min_days still
// opens the check's critical incident, and the warning neither pages
// critical nor is sent again; a renewal still inside the window gets its
// own warning and resolves the old one.
func TestCertWarningLifecycle(t *testing.T) {
	f := newCertFeed(t)
	dir := t.TempDir()
	notes := &notifytest.Recorder{}
	start := func() *Evaluator {
		t.Helper()
		ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ev.Close() })
		return ev
	}
	ev := start()
	all := f.cfg.Regions
	expiry := f.clk.Now().Add(22*24*time.Hour + 70*time.Second)
	old := f.cert("aaaa", expiry)

	f.feed(t, ev, old, all...)
	if got := notes.Delivered(); len(got) != 0 {
		t.Fatalf("22 days left, outside the window: %s", notifytest.Summaries(got))
	}
	f.clk.Advance(24 * time.Hour) // 21 days and 10 seconds left at the tick: not yet
	f.feed(t, ev, old, all...)
	if got := certNotes(notes); len(got) != 0 {
		t.Fatalf("just outside the window: %s", notifytest.Summaries(got))
	}
	f.feed(t, ev, old, "eu-west") // 20 days 23:59:40 left, seen from one region: enough
	got := certNotes(notes)
	if len(got) != 1 {
		t.Fatalf("entering the window: %d certificate notifications, want 1: %s", len(got), notifytest.Summaries(got))
	}
	warn := got[0]
	if warn.Route != notify.RouteWarning || notify.SeverityOf(warn) != notify.SeverityWarning || warn.Action != notify.ActionTrigger || warn.Check != "web-cert" {
		t.Errorf("warning %+v: want a warning-route trigger of web-cert", warn)
	}
	for _, want := range []string{"www.example.test", "expires in 20 days", "Example CA R3", "seen from eu-west", expiry.UTC().Format(time.RFC3339)} {
		if !strings.Contains(warn.Summary, want) {
			t.Errorf("summary %q lacks %q", warn.Summary, want)
		}
	}
	if warn.Details["fingerprint_sha256"] != "aaaa" || warn.Details["days_left"] != "20" || warn.Details["regions"] != "eu-west" {
		t.Errorf("details %v", warn.Details)
	}
	for range 20 {
		f.feed(t, ev, old, all...)
	}
	if got := certNotes(notes); len(got) != 1 {
		t.Fatalf("after more probes from every region: %s", notifytest.Summaries(got))
	}

	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	ev = start()
	for range 5 {
		f.feed(t, ev, old, all...)
	}
	if got := certNotes(notes); len(got) != 1 {
		t.Fatalf("after a restart on the same data dir: %s", notifytest.Summaries(got))
	}

	// cert_min_days: the probes fail, the check goes DOWN and pages
	// critical as it always did; the certificate sends nothing more.
	f.clk.Advance(14 * 24 * time.Hour)
	for range 3 {
		f.feed(t, ev, old, all...)
	}
	var critical []notify.Notification
	for _, n := range notes.Delivered() {
		if n.Route == notify.RouteCritical {
			critical = append(critical, n)
		}
	}
	if len(critical) != 1 || critical[0].Kind != notify.CheckKind("down") || !strings.Contains(critical[0].Summary, "certificate expires in") {
		t.Fatalf("inside cert_min_days: critical %s, want the check's DOWN page", notifytest.Summaries(critical))
	}
	if got := certNotes(notes); len(got) != 1 {
		t.Fatalf("inside cert_min_days: %s", notifytest.Summaries(got))
	}

	// Renewed with a short-lived certificate, itself inside the window.
	renewed := f.cert("bbbb", f.clk.Now().Add(15*24*time.Hour))
	for range 3 {
		f.feed(t, ev, renewed, all...)
	}
	got = certNotes(notes)
	if len(got) != 3 {
		t.Fatalf("after the renewal: %s, want the old warning resolved and one for the new certificate", notifytest.Summaries(got))
	}
	var resolved, triggered bool
	for _, n := range got[1:] {
		switch {
		case n.Action == notify.ActionResolve && n.Key == warn.Key:
			resolved = true
		case n.Action == notify.ActionTrigger && n.Key != warn.Key && strings.Contains(n.Summary, "expires in 14 days"):
			triggered = true
		}
		if n.Route != notify.RouteWarning {
			t.Errorf("%+v: not on the warning route", n)
		}
	}
	if !resolved || !triggered {
		t.Errorf("after the renewal: %s", notifytest.Summaries(got))
	}
}

// TestCertWarningAcrossReload: a reload that keeps the check (its
// cert_warn_days changed) does not warn again; one that removes it
// resolves the warning, so that no pager keeps it open for ever.
func TestCertWarningAcrossReload(t *testing.T) {
	f := newCertFeed(t)
	notes := &notifytest.Recorder{}
	ev, err := New(f.cfg, Options{Clock: f.clk, Notifier: notes, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	old := f.cert("aaaa", f.clk.Now().Add(10*24*time.Hour))
	f.feed(t, ev, old, f.cfg.Regions...)
	if got := certNotes(notes); len(got) != 1 {
		t.Fatalf("10 days left: %s", notifytest.Summaries(got))
	}

	kept := regionConfig(t, "us-east", `checks:
  - id: web-cert
    interval: 30s
    failure: {consecutive: 2}
    http: {url: "https://www.example.test/", cert_warn_days: 30, expect: {cert_min_days: 7}}
`)
	if rep, err := ev.Reload(context.Background(), kept); err != nil || len(rep.Changed) != 1 {
		t.Fatalf("reload keeping web-cert: %+v, %v", rep, err)
	}
	for range 3 {
		f.feed(t, ev, old, f.cfg.Regions...)
	}
	if got := certNotes(notes); len(got) != 1 {
		t.Fatalf("after a reload that keeps the check: %s", notifytest.Summaries(got))
	}

	removed := regionConfig(t, "us-east", `checks:
  - id: other
    http: {url: "https://other.example.test/"}
`)
	rep, err := ev.Reload(context.Background(), removed)
	if err != nil {
		t.Fatal(err)
	}
	got := certNotes(notes)
	if rep.Resolved != 1 || len(got) != 2 || got[1].Action != notify.ActionResolve || got[1].Key != got[0].Key ||
		!strings.Contains(got[1].Summary, "removed from the configuration") {
		t.Fatalf("after removing the check (report %+v): %s, want the warning resolved", rep, notifytest.Summaries(got))
	}
}
