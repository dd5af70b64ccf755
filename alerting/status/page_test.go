package status

import (
	"testing"

	"github.com/outposthq/outpost/alerting/decide"
)

func TestStatusPageBanner(t *testing.T) {
	live := RegionStatus{Name: "us-east", State: decide.RegionLive, ConfigDigestMatch: true}
	stale := RegionStatus{Name: "eu-west", State: decide.RegionStale, ConfigDigestMatch: true}
	unseen := RegionStatus{Name: "ap-south", State: decide.RegionUnknown, ConfigDigestMatch: true}
	ok := CheckStatus{ID: "a", State: decide.StateOK}
	tests := []struct {
		name     string
		s        Status
		class    string
		headline string
	}{
		{"all ok", Status{Regions: []RegionStatus{live}, Checks: []CheckStatus{ok, ok}}, "ok", "All 2 checks OK · 1 region LIVE"},
		{"ok but a region is silent", Status{StaleAfter: 30, Regions: []RegionStatus{live, stale}, Checks: []CheckStatus{ok}},
			"unknown", "region eu-west STALE · 1 OK"},
		{"never heard from", Status{Regions: []RegionStatus{live, unseen}, Checks: []CheckStatus{ok}},
			"unknown", "region ap-south not heard from yet · 1 OK"},
		{"no verdict yet", Status{Regions: []RegionStatus{live}, Checks: []CheckStatus{{ID: "a"}}},
			"unknown", "1 check without a verdict yet"},
		{"unknown", Status{Regions: []RegionStatus{live}, Checks: []CheckStatus{{State: decide.StateUnknown}, ok}},
			"unknown", "1 check UNKNOWN · 1 OK"},
		{"degraded", Status{Regions: []RegionStatus{live}, Checks: []CheckStatus{{State: decide.StateDegraded}, ok}},
			"degraded", "1 check DEGRADED · 1 OK"},
		{"down wins", Status{Regions: []RegionStatus{live}, Checks: []CheckStatus{{State: decide.StateDegraded}, {State: decide.StateDown}, {State: decide.StateDown}}},
			"down", "2 checks DOWN · 1 check DEGRADED"},
		{"mismatch", Status{Regions: []RegionStatus{{Name: "us-east", State: decide.RegionLive}}, Checks: []CheckStatus{ok}},
			"unknown", "configuration mismatch in us-east · 1 OK"},
		{"no checks", Status{Regions: []RegionStatus{live}}, "unknown", "No checks configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bannerOf(tc.s)
			if b.Class != tc.class || b.Headline != tc.headline {
				t.Errorf("bannerOf = %q %q, want %q %q", b.Class, b.Headline, tc.class, tc.headline)
			}
		})
	}
}
