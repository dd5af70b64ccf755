package history

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"
)

var monday = time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)

// A week observed every 30 s: DOWN from 10:00 to 11:00 on Tuesday,
// DEGRADED from 23:30 Wednesday to 00:30 Thursday, UNKNOWN for ten
// minutes on Friday, OK otherwise. The day totals, colours and uptime
// figures are exact.
func TestAWeekOfVerdicts(t *testing.T) {
	var c Check
	stateAt := func(t time.Time) string {
		switch {
		case t.Weekday() == time.Tuesday && t.Hour() == 10:
			return "DOWN"
		case t.Weekday() == time.Wednesday && t.Hour() == 23 && t.Minute() >= 30,
			t.Weekday() == time.Thursday && t.Hour() == 0 && t.Minute() < 30:
			return "DEGRADED"
		case t.Weekday() == time.Friday && t.Hour() == 12 && t.Minute() < 10:
			return "UNKNOWN"
		}
		return "OK"
	}
	end := monday.AddDate(0, 0, 7)
	for now := monday; !now.After(end); now = now.Add(30 * time.Second) {
		c.Observe(stateAt(now), now)
	}
	if len(c.Days) != 8 { // Monday to Sunday, and the next Monday begun
		t.Fatalf("%d days", len(c.Days))
	}
	want := []struct {
		date  string
		secs  [numStates]int32
		worst int
	}{
		{"2030-01-07", [numStates]int32{86400, 0, 0, 0}, StateOK},
		{"2030-01-08", [numStates]int32{86400 - 3600, 0, 3600, 0}, StateDown},
		{"2030-01-09", [numStates]int32{86400 - 1800, 1800, 0, 0}, StateDegraded},
		{"2030-01-10", [numStates]int32{86400 - 1800, 1800, 0, 0}, StateDegraded},
		{"2030-01-11", [numStates]int32{86400 - 600, 0, 0, 600}, StateUnknown},
		{"2030-01-12", [numStates]int32{86400, 0, 0, 0}, StateOK},
		{"2030-01-13", [numStates]int32{86400, 0, 0, 0}, StateOK},
	}
	for i, w := range want {
		d := c.Days[i]
		if d.Date != w.date || d.Seconds != w.secs || d.Worst() != w.worst {
			t.Errorf("day %d: %s %v worst %d, want %s %v worst %d", i, d.Date, d.Seconds, d.Worst(), w.date, w.secs, w.worst)
		}
	}
	// Seven whole days and the first instant of the eighth.
	up, ok := c.Uptime(end, 30)
	if wantUp := 1 - 3600.0/(7*86400); !ok || math.Abs(up-wantUp) > 1e-12 {
		t.Errorf("30-day uptime %v (%v), want %v", up, ok, wantUp)
	}
	// The last 24 hours as days: today (nothing yet) only.
	if _, ok := c.Uptime(end, 1); ok {
		t.Error("today has no observed time yet, but Uptime says it has")
	}
	if up, _ := c.Uptime(monday.AddDate(0, 0, 1).Add(12*time.Hour), 1); math.Abs(up-(1-3600.0/86400)) > 1e-9 {
		t.Errorf("Tuesday's uptime %v", up)
	}
}

// Time nobody watched counts as nothing; a clock that goes back credits
// nothing and keeps the later state's start.
func TestGapsAndClockSteps(t *testing.T) {
	var c Check
	c.Observe("OK", monday)
	c.Observe("DOWN", monday.Add(time.Minute)) // 60 s OK
	c.Observe("DOWN", monday.Add(2*time.Hour)) // a gap: nothing
	c.Observe("DOWN", monday.Add(2*time.Hour+time.Minute))
	c.Observe("OK", monday.Add(time.Hour)) // the clock went back
	c.Observe("OK", monday.Add(2*time.Hour+2*time.Minute))
	if got := c.Days[0].Seconds; got != [numStates]int32{60, 0, 120, 0} {
		t.Errorf("seconds %v, want 60 OK and 120 DOWN", got)
	}
}

// Days and incidents older than Days go; so does every day past Days in
// one check.
func TestPrune(t *testing.T) {
	var c Check
	for d := range 100 {
		now := monday.AddDate(0, 0, d)
		c.Observe("OK", now)
		c.Observe("OK", now.Add(time.Minute))
		c.Notify("down", now, Note{Time: now, Action: "trigger"}, []string{"eu"})
		c.Notify("down", now, Note{Time: now.Add(time.Minute), Action: "resolve"}, nil)
	}
	last := monday.AddDate(0, 0, 99)
	if len(c.Days) != Days || c.Days[0].Date != DateOf(last.AddDate(0, 0, -Days+1)) {
		t.Errorf("%d days from %s", len(c.Days), c.Days[0].Date)
	}
	c.Prune(last)
	if len(c.Incidents) != Days {
		t.Errorf("%d incidents after Prune, want %d", len(c.Incidents), Days)
	}
}

// An incident keeps its trigger, its resolve and a bounded number of the
// notes between them.
func TestIncidentNotes(t *testing.T) {
	var c Check
	opened := monday
	c.Notify("down", opened, Note{Time: opened, Action: "trigger", Route: "critical", Summary: "web DOWN"}, []string{"eu", "us"})
	for i := range 50 {
		c.Notify("down", opened, Note{Time: opened.Add(time.Duration(i) * time.Minute), Action: "trigger", Summary: fmt.Sprint("update ", i)}, nil)
	}
	c.Notify("down", opened, Note{Time: opened.Add(time.Hour), Action: "resolve"}, nil)
	c.Notify("down", monday.Add(-time.Hour), Note{Action: "resolve"}, nil) // from before history: ignored
	if len(c.Incidents) != 1 {
		t.Fatalf("%d incidents", len(c.Incidents))
	}
	in := c.Incidents[0]
	if in.Summary != "web DOWN" || len(in.Regions) != 2 || !in.ResolvedAt.Equal(opened.Add(time.Hour)) {
		t.Errorf("incident %+v", in)
	}
	if len(in.Notes) != maxNotes || in.Notes[0].Summary != "web DOWN" || in.Notes[maxNotes-1].Action != "resolve" || in.Dropped != 52-maxNotes {
		t.Errorf("%d notes (dropped %d), first %+v, last %+v", len(in.Notes), in.Dropped, in.Notes[0], in.Notes[len(in.Notes)-1])
	}
}

// The day's quantiles are within the buckets' 10% of the truth.
func TestLatencyQuantiles(t *testing.T) {
	var c Check
	for i := range 1000 {
		d := time.Duration(20+i%10) * time.Millisecond // 20..29 ms
		if i%100 == 0 {
			d = 800 * time.Millisecond // 1% slow
		}
		c.Probe("eu", monday.Add(time.Duration(i)*time.Second), i%50 != 0, d)
	}
	r := c.Days[0].Regions[0]
	if r.Probes != 1000 || r.Failures != 20 {
		t.Errorf("probes %d failures %d", r.Probes, r.Failures)
	}
	p50, p99 := r.Quantiles()
	if math.Abs(float64(p50)-0.0245) > 0.0245*0.1 {
		t.Errorf("p50 %v, want about 24.5 ms", p50)
	}
	if p99 < 0.025*0.9 || p99 > 0.030*1.1 {
		t.Errorf("p99 %v, want about 29 ms (the 1%% at 800 ms is the 99th percentile's edge)", p99)
	}
	// Closing the day keeps the figures and drops the buckets.
	c.Observe("OK", monday.AddDate(0, 0, 1))
	if r := c.Days[0].Regions[0]; r.Latency != nil || r.P50 != p50 || r.P99 != p99 {
		t.Errorf("closed day keeps buckets %v or changed its quantiles %v %v", r.Latency != nil, r.P50, r.P99)
	}
}

// TestDaySize measures what a closed day costs in the store, for three
// regions: the figure docs/config.md quotes.
func TestDaySize(t *testing.T) {
	var c Check
	for i := range 2880 {
		now := monday.Add(time.Duration(i) * 30 * time.Second)
		c.Observe("OK", now)
		for _, r := range []string{"us-east", "eu-west", "ap-south"} {
			c.Probe(r, now, true, 35*time.Millisecond)
		}
	}
	open, _ := json.Marshal(c.Days[0])
	c.Observe("OK", monday.AddDate(0, 0, 1))
	closed, _ := json.Marshal(c.Days[0])
	t.Logf("a closed day with 3 regions: %d bytes of JSON; an open one: %d", len(closed), len(open))
	if len(closed) > 400 || len(open) > 1024 {
		t.Errorf("a closed day costs %d bytes, an open one %d; want at most 400 and 1024", len(closed), len(open))
	}
}

func FuzzObserve(f *testing.F) {
	f.Add("OK", int64(30), "DOWN", int64(-5), "x", int64(400))
	f.Fuzz(func(t *testing.T, s1 string, d1 int64, s2 string, d2 int64, s3 string, d3 int64) {
		var c Check
		now := monday
		for _, st := range []struct {
			s string
			d int64
		}{{s1, d1}, {s2, d2}, {s3, d3}} {
			now = now.Add(time.Duration(st.d) * time.Second)
			c.Observe(st.s, now)
		}
		for _, d := range c.Days {
			if d.Observed() > 86400 {
				t.Fatalf("a day with %d seconds", d.Observed())
			}
		}
		if len(c.Days) > Days {
			t.Fatalf("%d days", len(c.Days))
		}
	})
}

// A probe of the next day that arrives before the verdict that closes the
// previous one leaves the previous day's time where it belongs; a late
// probe of a closed day counts without touching its quantiles.
func TestProbeOfTheNextDayFirst(t *testing.T) {
	var c Check
	c.Observe("OK", monday.Add(-30*time.Second))
	c.Probe("eu", monday, true, 10*time.Millisecond)
	c.Observe("OK", monday)
	if len(c.Days) != 2 || c.Days[0].Seconds[StateOK] != 30 || c.Days[1].Observed() != 0 {
		t.Fatalf("days %+v", c.Days)
	}
	c.Probe("eu", monday.Add(-time.Second), false, 5*time.Second)
	if r := c.Days[0].Regions[0]; r.Probes != 1 || r.Failures != 1 || r.Latency != nil || r.P99 != 0 {
		t.Errorf("late probe of a closed day: %+v", r)
	}
}
