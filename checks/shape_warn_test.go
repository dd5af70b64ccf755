package checks

import (
	"slices"
	"testing"
)

func TestShapeWarnings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, shape string
		want        []string
	}{
		{"default", "", nil},
		{"enough for p90", "{min_samples: 30}", nil},
		{"too few for p90", "{min_samples: 29}", []string{`w.yaml:5:26: check "c": shape.min_samples: 29 cannot support tail_shift: p90 needs 30 probes in a window (3 beyond it), so a window of fewer gives no tail_shift verdict; use min_samples: 30 or more`}},
		{"tail_shift off", "{min_samples: 10, tail_shift: false}", nil},
		{"too few for slow_rise's p50", "{min_samples: 5, tail_shift: false}", []string{`w.yaml:5:26: check "c": shape.min_samples: 5 cannot support slow_rise: p50 needs 6 probes in a window (3 beyond it), so a window of fewer gives no slow_rise verdict; use min_samples: 6 or more`}},
		{"shape off", "false", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "version: 1\nchecks:\n  - id: c\n    http: {url: \"http://127.0.0.1:1/\"}\n"
			if tc.shape != "" {
				y += "    shape: " + tc.shape + "\n"
			}
			cfg, err := LoadBytes("w.yaml", []byte(y), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Warnings(); !slices.Equal(got, tc.want) {
				t.Errorf("Warnings =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestQuantileSamples(t *testing.T) {
	t.Parallel()
	for q, want := range map[float64]int{0.5: 6, 0.9: 30, 0.99: 300, 0.999: 3000} {
		if got := QuantileSamples(q); got != want {
			t.Errorf("QuantileSamples(%v) = %d, want %d", q, got, want)
		}
	}
}
