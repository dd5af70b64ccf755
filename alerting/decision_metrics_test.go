package alerting

import (
	"context"
	"testing"
)

// TestDecisionMetrics: a check's verdict, failing regions, open incidents
// and up-ness are series, so that Prometheus can graph Outpost's decisions
// and compute uptime.
func TestDecisionMetrics(t *testing.T) {
	f := newFixture(t)
	if _, ok := f.gathered("outpost_check_up", map[string]string{"check": "web"}); ok {
		t.Fatal("outpost_check_up before any verdict")
	}
	for seq := uint64(1); seq <= 3; seq++ {
		for _, r := range []string{"us-east", "eu-west"} {
			f.apply(r, seq, probedAt("web", r, false, f.clock.Now()))
		}
	}
	f.ev.evaluate(context.Background(), f.clock.Now(), "web")
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"outpost_check_state", map[string]string{"check": "web", "state": "DOWN"}, 1},
		{"outpost_check_state", map[string]string{"check": "web", "state": "OK"}, 0},
		{"outpost_check_regions_failing", map[string]string{"check": "web"}, 2},
		{"outpost_check_up", map[string]string{"check": "web"}, 0},
		{"outpost_incident_open", map[string]string{"check": "web", "kind": "down"}, 1},
	}
	for _, w := range want {
		if v, ok := f.gathered(w.name, w.labels); !ok || v != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.value)
		}
	}
	if _, ok := f.gathered("outpost_incident_open", map[string]string{"check": "web", "kind": "degraded"}); ok {
		t.Error("a closed incident has a series")
	}
}
