package checks

import (
	"testing"
	"time"
)

// TestSeriesShapeDefaults: a series check's detectors and their defaults,
// the surprise scaled to the interval, and the keys that existed before
// (spike.max_ratio, points; drop.min_ratio, points) kept with their
// meaning when written.
func TestSeriesShapeDefaults(t *testing.T) {
	load := func(interval, shape string) *ShapeSpec {
		t.Helper()
		conf := "version: 1\nchecks:\n  - id: rps\n    interval: " + interval + "\n    series: {prometheus: {url: 'http://127.0.0.1:9090', query: up}}\n"
		if shape != "" {
			conf += "    shape: " + shape + "\n"
		}
		cfg, err := LoadBytes("s.yaml", []byte(conf), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Checks[0].Shape
	}
	s := load("5m", "")
	if s.Spike == nil || s.Spike.MaxRatio != 0 || s.Spike.Points != 1 || s.Spike.Threshold() != DefaultSpikeRatio ||
		s.Drop == nil || s.Drop.MinRatio != 0.1 || s.Drop.Points != 1 || s.Dip == nil || s.Dip.Points != 1 ||
		s.LevelShift == nil || s.LevelShift.For != 30*time.Minute || s.Recurring == nil {
		t.Fatalf("defaults: %+v spike %+v drop %+v dip %+v level_shift %+v", s, s.Spike, s.Drop, s.Dip, s.LevelShift)
	}
	for _, tc := range []struct {
		interval string
		want     float64
	}{{"5m", 5.0 / (84 * 60)}, {"1m", 1.0 / (84 * 60)}, {"1h", 0.01}, {"1s", 1e-4}} {
		if got := load(tc.interval, "").Surprise; got < tc.want*0.999 || got > tc.want*1.001 {
			t.Errorf("interval %s: surprise %g, want %g", tc.interval, got, tc.want)
		}
	}
	s = load("1m", "{surprise: 0.0005, spike: {max_ratio: 4, points: 2}, drop: {min_ratio: 0.2, points: 3}, dip: false, level_shift: {for: 2h}}")
	if s.Surprise != 0.0005 || s.Spike.MaxRatio != 4 || s.Spike.Points != 2 || s.Spike.Threshold() != 4 ||
		s.Drop.MinRatio != 0.2 || s.Drop.Points != 3 || s.Dip != nil || s.LevelShift.For != 2*time.Hour {
		t.Fatalf("written: %+v spike %+v drop %+v dip %+v level_shift %+v", s, s.Spike, s.Drop, s.Dip, s.LevelShift)
	}
	if s := load("1m", "{level_shift: false, spike: false}"); s.LevelShift != nil || s.Spike != nil || s.Recurring != nil {
		t.Fatalf("switched off: %+v", s)
	}
}
