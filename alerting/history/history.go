// Package history keeps what a status page and an on-call review ask of
// the past: per check and UTC day, the time spent in each verdict state
// and, per region, the probes, failures and latency quantiles; and every
// incident with what was sent about it. It is pure: its owner holds the
// lock, feeds it the time, and stores what it returns.
//
// Memory and storage are bounded by the configuration: a check keeps at
// most Days days, each with one entry per region of the check, and at
// most MaxIncidents incidents.
package history

import (
	"math"
	"slices"
	"strings"
	"time"
)

const (
	// Days is how long a day's rollup and an incident are kept.
	Days = 90
	// MaxIncidents bounds the incidents kept per check, however often it
	// flaps: the oldest go first.
	MaxIncidents = 200
	// maxNotes bounds the notifications recorded per incident: the first
	// ones (the trigger) and the latest (the resolve) are what a review
	// needs.
	maxNotes = 20
)

// The verdict states time is counted in, in Day.Seconds order.
const (
	StateOK = iota
	StateDegraded
	StateDown
	StateUnknown
	numStates
)

// StateIndex maps a verdict ("OK", "DEGRADED", "DOWN", "UNKNOWN") to its
// index in Day.Seconds; anything else (no verdict yet) is -1.
func StateIndex(s string) int {
	switch s {
	case "OK":
		return StateOK
	case "DEGRADED":
		return StateDegraded
	case "DOWN":
		return StateDown
	case "UNKNOWN":
		return StateUnknown
	}
	return -1
}

// Day is one UTC day of one check. A day of 86,400 seconds fits an int32.
type Day struct {
	// Date is the UTC day, 2006-01-02.
	Date string `json:"date"`
	// Seconds counts the seconds of the day the check spent OK, DEGRADED,
	// DOWN and UNKNOWN (seconds before its first verdict count nowhere).
	Seconds [numStates]int32 `json:"seconds"`
	// Regions are the day's probes per region, in the order first seen.
	Regions []RegionDay `json:"regions,omitempty"`
}

// RegionDay is one region's probes of a check on one day.
type RegionDay struct {
	Region   string `json:"region"`
	Probes   int32  `json:"probes"`
	Failures int32  `json:"failures"`
	// P50 and P99 are the day's latency quantiles in seconds, from
	// Latency: set when the day closes (Quantiles gives them while it is
	// open); zero without a probe with a duration.
	P50 float32 `json:"p50"`
	P99 float32 `json:"p99"`
	// Latency counts the day's probe durations in log-spaced buckets
	// (see bucketOf): what P50 and P99 are computed from while the day
	// is open. A closed day drops it.
	Latency []uint32 `json:"latency,omitempty"`
}

// Worst is the worst state of the day with any time in it, as an index
// (StateDown over StateDegraded over StateUnknown over StateOK), or -1
// for a day without a verdict.
func (d *Day) Worst() int {
	for _, s := range []int{StateDown, StateDegraded, StateUnknown, StateOK} {
		if d.Seconds[s] > 0 {
			return s
		}
	}
	return -1
}

// Observed is the seconds of the day with a verdict.
func (d *Day) Observed() int64 {
	var n int64
	for _, s := range d.Seconds {
		n += int64(s)
	}
	return n
}

// DateOf is the UTC day of t.
func DateOf(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Check is the history of one check: its days, oldest first, and its
// incidents, oldest first. Its zero value is a check with no history.
type Check struct {
	Days      []Day      `json:"days,omitempty"`
	Incidents []Incident `json:"incidents,omitempty"`
	// State and Since are the latest verdict and when it was observed:
	// the time from Since to the next observation is credited to State.
	State string    `json:"state,omitempty"`
	Since time.Time `json:"since,omitzero"`

	// latestStart is the start (UTC midnight) of the latest day, so that
	// a time in it finds it without formatting a date: ingest counts every
	// result here.
	latestStart time.Time
}

// dayAt returns the day of t (see day).
func (c *Check) dayAt(t time.Time) *Day {
	n := len(c.Days)
	if n > 0 && !t.Before(c.latestStart) && t.Sub(c.latestStart) < 24*time.Hour {
		return &c.Days[n-1]
	}
	d := c.day(DateOf(t))
	if last := &c.Days[len(c.Days)-1]; d == last {
		c.latestStart, _ = time.Parse(time.DateOnly, last.Date)
	}
	return d
}

// day returns the day of date, adding it when the check has none: after
// the latest (closing that one, and dropping days older than Days), or in
// its place among the earlier ones (time credited to a day whose record
// was not begun, as when a probe of the next day arrived first).
func (c *Check) day(date string) *Day {
	n := len(c.Days)
	if n == 0 || c.Days[n-1].Date < date {
		if n > 0 {
			closeDay(&c.Days[n-1])
		}
		c.Days = append(c.Days, Day{Date: date})
		if len(c.Days) > Days {
			c.Days = slices.Delete(c.Days, 0, len(c.Days)-Days)
		}
		return &c.Days[len(c.Days)-1]
	}
	i, found := slices.BinarySearchFunc(c.Days, date, func(d Day, date string) int { return strings.Compare(d.Date, date) })
	if !found {
		c.Days = slices.Insert(c.Days, i, Day{Date: date})
		if len(c.Days) > Days {
			c.Days = slices.Delete(c.Days, 0, 1)
			i--
		}
		if i < 0 {
			return &Day{} // older than every day kept: counted nowhere
		}
	}
	return &c.Days[i]
}

// Quantiles returns r's latency p50 and p99 in seconds: from its buckets
// while its day is open, as fixed at its close after.
func (r *RegionDay) Quantiles() (p50, p99 float32) {
	if r.Latency != nil {
		return quantile(r.Latency, 0.5), quantile(r.Latency, 0.99)
	}
	return r.P50, r.P99
}

// closeDay fixes a finished day's quantiles and drops its buckets.
func closeDay(d *Day) {
	for i := range d.Regions {
		r := &d.Regions[i]
		r.P50, r.P99 = quantile(r.Latency, 0.5), quantile(r.Latency, 0.99)
		r.Latency = nil
	}
}

// MaxGap is the longest time between two observations that is credited
// to the earlier one's state: the owner observes every check far more
// often than this while it runs, so a longer gap is time nobody watched
// (the evaluator was down), and it counts as nothing.
const MaxGap = 5 * time.Minute

// Observe notes the check's verdict state at now: the time since the
// previous observation goes to the previous state, split at UTC
// midnights. A clock that went back credits nothing; a gap over MaxGap
// credits nothing either.
func (c *Check) Observe(state string, now time.Time) {
	if !c.Since.IsZero() && now.After(c.Since) && now.Sub(c.Since) <= MaxGap {
		from := c.Since
		if s := StateIndex(c.State); s >= 0 {
			for from.Before(now) {
				midnight := time.Date(from.Year(), from.Month(), from.Day()+1, 0, 0, 0, 0, time.UTC)
				end := midnight
				if now.Before(end) {
					end = now
				}
				d := c.dayAt(from)
				d.Seconds[s] = int32(min(int64(d.Seconds[s])+int64(end.Sub(from)/time.Second), 86400))
				from = end
			}
		}
	}
	if c.Since.IsZero() || !now.Before(c.Since) {
		c.State, c.Since = state, now
	}
	c.dayAt(now)
}

// Probe counts one probe of region at t, failed or not, that took d
// (zero: no duration).
func (c *Check) Probe(region string, t time.Time, ok bool, d time.Duration) {
	day := c.dayAt(t)
	i := slices.IndexFunc(day.Regions, func(r RegionDay) bool { return r.Region == region })
	if i < 0 {
		day.Regions = append(day.Regions, RegionDay{Region: region})
		i = len(day.Regions) - 1
	}
	r := &day.Regions[i]
	r.Probes++
	if !ok {
		r.Failures++
	}
	// A closed day's quantiles are final: a late probe counts, but its
	// duration does not.
	if d > 0 && day == &c.Days[len(c.Days)-1] {
		if r.Latency == nil {
			r.Latency = make([]uint32, numBuckets)
		}
		r.Latency[bucketOf(d)]++
	}
}

// Prune drops the days older than Days before now, and the incidents
// resolved before the oldest day kept.
func (c *Check) Prune(now time.Time) {
	oldest := DateOf(now.AddDate(0, 0, -Days+1))
	c.Days = slices.DeleteFunc(c.Days, func(d Day) bool { return d.Date < oldest })
	c.Incidents = slices.DeleteFunc(c.Incidents, func(in Incident) bool {
		return !in.ResolvedAt.IsZero() && DateOf(in.ResolvedAt) < oldest
	})
}

// Uptime is the share of the time with a verdict in the last days days
// up to now (today counting as one) that the check was not DOWN, and
// whether there was any such time.
func (c *Check) Uptime(now time.Time, days int) (float64, bool) {
	oldest, today := DateOf(now.AddDate(0, 0, -days+1)), DateOf(now)
	var down, seen int64
	for i := range c.Days {
		d := &c.Days[i]
		if d.Date < oldest || d.Date > today {
			continue
		}
		down += int64(d.Seconds[StateDown])
		seen += d.Observed()
	}
	if seen == 0 {
		return 0, false
	}
	return 1 - float64(down)/float64(seen), true
}

// Latency buckets: numBuckets log-spaced from 1 ms (bucket 0 holds
// everything below) to 60 s (the last holds everything above), about 19%
// apart, so a quantile read from them is within about 10% of the truth.
const (
	numBuckets = 64
	minLatency = time.Millisecond
	maxLatency = 60 * time.Second
)

var bucketGrowth = math.Pow(float64(maxLatency)/float64(minLatency), 1/float64(numBuckets-2))

// bucketOf is the bucket of d.
func bucketOf(d time.Duration) int {
	if d <= minLatency {
		return 0
	}
	if d >= maxLatency {
		return numBuckets - 1
	}
	return 1 + min(int(math.Log(float64(d)/float64(minLatency))/math.Log(bucketGrowth)), numBuckets-3)
}

// bucketMid is a representative duration of bucket i, in seconds: the
// geometric middle of its bounds.
func bucketMid(i int) float64 {
	switch i {
	case 0:
		return minLatency.Seconds()
	case numBuckets - 1:
		return maxLatency.Seconds()
	}
	lo := minLatency.Seconds() * math.Pow(bucketGrowth, float64(i-1))
	return lo * math.Sqrt(bucketGrowth)
}

// quantile is the q-quantile of the counts, in seconds; 0 without any.
func quantile(counts []uint32, q float64) float32 {
	var total uint64
	for _, n := range counts {
		total += uint64(n)
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, n := range counts {
		seen += uint64(n)
		if seen >= rank {
			return float32(bucketMid(i))
		}
	}
	return float32(bucketMid(len(counts) - 1))
}

// Incident is one incident of a check, from its opening to its resolve.
type Incident struct {
	Kind     string    `json:"kind"`
	OpenedAt time.Time `json:"opened_at"`
	// ResolvedAt is when it resolved; zero while open.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Regions are the regions failing when it opened.
	Regions []string `json:"regions,omitempty"`
	// Summary is the summary it opened with.
	Summary string `json:"summary"`
	// Notes are what was sent about it, in order: at most maxNotes (the
	// first half and the latest), Dropped counting the others.
	Notes   []Note `json:"notes,omitempty"`
	Dropped int    `json:"dropped,omitempty"`
}

// Note is one notification sent about an incident.
type Note struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // trigger or resolve
	Route  string    `json:"route,omitempty"`
	// Summary is the notification's summary.
	Summary string `json:"summary,omitempty"`
}

// Notify records a notification about the incident of kind opened at
// opened: a trigger of an incident not yet recorded opens it, with
// regions; a resolve closes it. Incidents beyond MaxIncidents drop the
// oldest.
func (c *Check) Notify(kind string, opened time.Time, n Note, regions []string) {
	i := slices.IndexFunc(c.Incidents, func(in Incident) bool { return in.Kind == kind && in.OpenedAt.Equal(opened) })
	if i < 0 {
		if n.Action != "trigger" {
			return // the resolve of an incident from before history was kept
		}
		c.Incidents = append(c.Incidents, Incident{Kind: kind, OpenedAt: opened, Regions: regions, Summary: n.Summary})
		if len(c.Incidents) > MaxIncidents {
			c.Incidents = slices.Delete(c.Incidents, 0, len(c.Incidents)-MaxIncidents)
		}
		i = len(c.Incidents) - 1
	}
	in := &c.Incidents[i]
	if n.Action == "resolve" {
		in.ResolvedAt = n.Time
	}
	if len(in.Notes) == maxNotes {
		// Keep the first half (how it began) and slide the rest.
		in.Notes = slices.Delete(in.Notes, maxNotes/2, maxNotes/2+1)
		in.Dropped++
	}
	in.Notes = append(in.Notes, n)
}
