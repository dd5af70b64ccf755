package shape

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// The packed baseline learns what the float baseline learns, to within a
// fraction of a percent, including a drift too slow for one learning
// step to move a 16-bit mean: dithered rounding makes those moves on
// average, where plain rounding would leave the baseline behind.
func TestPackedBaselineFollowsTheFloatOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const stats = 3
	// A value a minute with a half life of 2h weighs about 170 values, as
	// a daily slot learning every 5 minutes with the default 168h does.
	f := newBaseline(2, stats, 2*time.Hour, 12)
	p := newPackedBaseline(2, stats, 2*time.Hour, 12)
	now := benchStart
	v := 0.040
	for i := range 20_000 {
		// Slot 0: noisy, drifting up 30% over the run, 0.0013% a step,
		// a fortieth of a 16-bit step.
		// Slot 1: perfectly steady at 1 s, the log mean 0.
		vals := []float64{v * math.Exp(0.1*rng.NormFloat64()), v, math.NaN()}
		f.learn(0, now, vals)
		p.learn(0, now, vals)
		f.learn(1, now, []float64{1, 1, 1})
		p.learn(1, now, []float64{1, 1, 1})
		if i%10 == 0 {
			v *= math.Pow(1.3, 10.0/20_000)
		}
		now = now.Add(time.Minute)
	}
	for slot := range 2 {
		fu, fw := f.usual(slot)
		pu, pw := p.usual(slot)
		if fw != pw {
			t.Fatalf("slot %d: warm %v vs %v", slot, fw, pw)
		}
		for i := range stats {
			if (fu[i].Value == 0) != (pu[i].Value == 0) {
				t.Errorf("slot %d stat %d: float %+v, packed %+v: one is unset", slot, i, fu[i], pu[i])
				continue
			}
			if fu[i].Value == 0 {
				continue
			}
			if r := pu[i].Value / fu[i].Value; math.Abs(r-1) > 0.005 {
				t.Errorf("slot %d stat %d: packed usual %v, float %v (%.2f%% off)", slot, i, pu[i].Value, fu[i].Value, 100*(r-1))
			}
			if d := math.Abs(pu[i].Spread - fu[i].Spread); d > 0.003 {
				t.Errorf("slot %d stat %d: packed spread %v, float %v", slot, i, pu[i].Spread, fu[i].Spread)
			}
		}
	}
	if fu, _ := f.usual(0); math.Abs(fu[1].Value/v-1) > 0.05 {
		t.Fatalf("the float baseline itself lags the drift: %v vs %v; the test proves nothing", fu[1].Value, v)
	}
}

// A latency state saved before moments were packed (float32 moments off
// the 16-bit grid) restores, each moment within half a step; and a packed
// state saves and restores exactly.
func TestPackedBaselineRestoresFloatState(t *testing.T) {
	c := benchCheck(&testing.B{})
	tr := NewTracker(c)
	old := newBaseline(24, numLatencyStats, c.Shape.HalfLife, 12)
	rng := rand.New(rand.NewPCG(7, 8))
	now := benchStart
	for range 24 * 20 {
		vals := make([]float64, numLatencyStats)
		for i := range vals {
			vals[i] = 0.01 * float64(1+i) * math.Exp(0.2*rng.NormFloat64())
		}
		old.learn(now.Hour(), now, vals)
		now = now.Add(3 * time.Minute)
	}
	meta, moments := old.save()
	if !tr.Restore(Saved{Stats: numLatencyStats, Meta: meta, Moments: moments}) {
		t.Fatal("a float state of the same dimensions was refused")
	}
	for slot := range 24 {
		want, ww := old.usual(slot)
		got, gw := tr.base.usual(slot)
		if ww != gw {
			t.Fatalf("slot %d: warm %v, want %v", slot, gw, ww)
		}
		for i := range want {
			if math.Abs(math.Log(got[i].Value/want[i].Value)) > 0.5/meanScale+1e-6 || math.Abs(got[i].Spread-want[i].Spread) > 0.5/devScale+1e-6 {
				t.Errorf("slot %d stat %d: %+v, saved %+v", slot, i, got[i], want[i])
			}
		}
	}
	saved := tr.Save()
	again := NewTracker(c)
	if !again.Restore(saved) {
		t.Fatal("a packed state was refused")
	}
	for slot := range 24 {
		a, _ := tr.base.usual(slot)
		b, _ := again.base.usual(slot)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("slot %d stat %d: %+v after a round trip, was %+v", slot, i, b[i], a[i])
			}
		}
	}
	if tr.Restore(Saved{Stats: numLatencyStats, Meta: meta[:23], Moments: moments}) {
		t.Error("a state of other dimensions was restored")
	}
}
