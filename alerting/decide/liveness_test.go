package decide_test

import (
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
)

// TestStepLivenessHolds: a region whose silence the evaluator cannot vouch
// for is not declared STALE, and every hold is bounded.
func TestStepLivenessHolds(t *testing.T) {
	const stale, maxHold = 30 * time.Second, 5 * time.Minute
	start := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	live := decide.Liveness{State: decide.RegionLive, Since: at(5 * time.Second)}
	unknown := decide.Liveness{State: decide.RegionUnknown, Since: start}
	base := decide.LivenessInput{LastSeen: at(40 * time.Second), Started: start, StaleAfter: stale, MaxHold: maxHold}
	with := func(f func(*decide.LivenessInput)) decide.LivenessInput { in := base; f(&in); return in }
	lagging := func(from, since time.Time) decide.LivenessInput {
		return with(func(in *decide.LivenessInput) { in.LagFrom, in.LaggingSince = from, since })
	}
	caughtUp := func(from, until time.Time) decide.LivenessInput {
		return with(func(in *decide.LivenessInput) { in.LagFrom, in.KeptUpSince = from, until })
	}
	stale70 := decide.Liveness{State: decide.RegionStale, Since: at(70 * time.Second), SilentSince: at(40 * time.Second)}

	tests := []struct {
		name string
		cur  decide.Liveness
		in   decide.LivenessInput
		now  time.Time
		want decide.Liveness
		hold decide.Hold // HoldNone: the step is not held
	}{
		{"silent, evaluator keeping up", live, base, at(70 * time.Second), stale70, decide.HoldNone},
		{"batch in ingest", live, with(func(in *decide.LivenessInput) { in.Pending = true }), at(70 * time.Second), live, decide.HoldPending},
		{"batch in ingest past the bound", live, with(func(in *decide.LivenessInput) { in.Pending = true }), at(40*time.Second + stale + maxHold),
			decide.Liveness{State: decide.RegionStale, Since: at(40*time.Second + stale + maxHold), SilentSince: at(40 * time.Second)}, decide.HoldNone},
		{"evaluator lagging", live, lagging(at(50*time.Second), at(60*time.Second)), at(70 * time.Second), live, decide.HoldLagging},
		{"evaluator lagging longer than the bound", live, lagging(at(50*time.Second), at(60*time.Second)), at(60*time.Second + maxHold),
			decide.Liveness{State: decide.RegionStale, Since: at(60*time.Second + maxHold), SilentSince: at(40 * time.Second)}, decide.HoldNone},
		{"clock jumped an hour", live, lagging(at(50*time.Second), at(time.Hour)), at(time.Hour), live, decide.HoldLagging},
		{"caught up, watched less than stale_after", live, caughtUp(at(50*time.Second), at(65*time.Second)), at(90 * time.Second), live, decide.HoldCatchingUp},
		{"caught up, watched stale_after of silence", live, caughtUp(at(50*time.Second), at(65*time.Second)), at(95 * time.Second),
			decide.Liveness{State: decide.RegionStale, Since: at(95 * time.Second), SilentSince: at(40 * time.Second)}, decide.HoldNone},
		{"silent before the lag began", live, lagging(at(70*time.Second), at(75*time.Second)), at(76 * time.Second),
			decide.Liveness{State: decide.RegionStale, Since: at(76 * time.Second), SilentSince: at(40 * time.Second)}, decide.HoldNone},
		{"never seen, evaluator lagging", unknown, with(func(in *decide.LivenessInput) {
			in.LastSeen = time.Time{}
			in.LagFrom, in.LaggingSince = at(20*time.Second), at(25*time.Second)
		}), at(31 * time.Second),
			decide.Liveness{State: decide.RegionStale, Since: at(31 * time.Second), SilentSince: start, NeverSeen: true}, decide.HoldNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ev := decide.StepLiveness(tc.cur, tc.in, tc.now)
			if got != tc.want {
				t.Fatalf("state = %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.hold == decide.HoldNone && ev.Kind == decide.LivenessHeld:
				t.Fatalf("held (%s), want a transition", ev.Held)
			case tc.hold != decide.HoldNone && (ev.Kind != decide.LivenessHeld || ev.Held != tc.hold):
				t.Fatalf("event = %+v, want held by %s", ev, tc.hold)
			}
		})
	}
}

// TestStepLivenessStartGrace: after a start, a region never heard from is
// UNKNOWN for the start grace, not only for stale_after: its agent may be
// in a retry backoff that began while the evaluator was down.
func TestStepLivenessStartGrace(t *testing.T) {
	start := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	in := decide.LivenessInput{Started: start, StaleAfter: 30 * time.Second, StartGrace: 41 * time.Second, MaxHold: 5 * time.Minute}
	cur := decide.Liveness{State: decide.RegionUnknown, Since: start}
	if next, ev := decide.StepLiveness(cur, in, start.Add(40*time.Second)); next.State != decide.RegionUnknown || ev.Kind != decide.LivenessSame {
		t.Fatalf("40s after start, within the grace: %+v %+v", next, ev)
	}
	if next, ev := decide.StepLiveness(cur, in, start.Add(41*time.Second)); next.State != decide.RegionStale || ev.Kind != decide.LivenessStale || !ev.NeverSeen {
		t.Fatalf("at the end of the grace: %+v %+v", next, ev)
	}
	// A grace shorter than stale_after does not shorten it.
	in.StartGrace = time.Second
	if next, _ := decide.StepLiveness(cur, in, start.Add(29*time.Second)); next.State != decide.RegionUnknown {
		t.Fatalf("a short grace cut stale_after: %+v", next)
	}
}
