package decide

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// Shape scopes: where a latency shape change lies.
const (
	// ScopeService: at least the quorum of live regions see it, so it is
	// the service, not one network path.
	ScopeService = "service"
	// ScopeRegion: fewer regions see it, so it is most likely their
	// network path to the service.
	ScopeRegion = "region"
)

// ShapeReport is what the live regions' shape findings of a check say
// together. It holds copies only.
type ShapeReport struct {
	// Detectors are the detectors that found something, sorted.
	Detectors []string `json:"detectors"`
	// Scope is ScopeService or ScopeRegion for latency findings seen from
	// two or more live regions; empty for series checks and checks with a
	// single live region, where there is nothing to compare.
	Scope string `json:"scope,omitempty"`
	// Regions are the live regions with a finding, sorted.
	Regions []string `json:"regions"`
	// Findings are each region's findings.
	Findings map[string][]shape.Finding `json:"findings"`
	// Summary is one line of at most 1024 bytes for a page.
	Summary string `json:"summary"`
}

// reportShapes gathers the shape findings (or, with forecast, the spikes
// due) of the live regions of d into a report; nil when there are none.
// It is a pure function of its arguments.
func reportShapes(c *checks.Check, d *Decision, in map[string]RegionInput, forecast bool) *ShapeReport {
	rep := &ShapeReport{Findings: map[string][]shape.Finding{}}
	for _, region := range d.Live {
		ri := in[region]
		fs := ri.Shape
		if forecast {
			fs = nil
			if ri.Forecast != nil {
				fs = []shape.Finding{*ri.Forecast}
			}
		}
		if len(fs) == 0 {
			continue
		}
		rep.Regions = append(rep.Regions, region)
		rep.Findings[region] = slices.Clone(fs)
		for _, f := range fs {
			if !slices.Contains(rep.Detectors, f.Detector) {
				rep.Detectors = append(rep.Detectors, f.Detector)
			}
		}
	}
	if len(rep.Regions) == 0 {
		return nil
	}
	slices.Sort(rep.Detectors)
	var b strings.Builder
	switch {
	case forecast:
		fmt.Fprintf(&b, "%s: ", c.ID)
	case c.Series != nil:
		fmt.Fprintf(&b, "%s series seen from %s: ", c.ID, strings.Join(rep.Regions, ", "))
	case len(d.Live) < 2:
		fmt.Fprintf(&b, "%s latency shape changed: ", c.ID)
	case len(rep.Regions) >= c.Quorum.Need(len(d.Live)):
		rep.Scope = ScopeService
		fmt.Fprintf(&b, "%s latency shape changed in %d of %d live regions, so the service itself: ", c.ID, len(rep.Regions), len(d.Live))
	default:
		rep.Scope = ScopeRegion
		fmt.Fprintf(&b, "%s latency shape changed in %s only (%d of %d live regions), so likely that network path: ",
			c.ID, strings.Join(rep.Regions, ", "), len(rep.Regions), len(d.Live))
	}
	// Each detector once, as the first region that has it explains it.
	for i, det := range rep.Detectors {
		if i > 0 {
			b.WriteString("; ")
		}
		for _, region := range rep.Regions {
			if j := slices.IndexFunc(rep.Findings[region], func(f shape.Finding) bool { return f.Detector == det }); j >= 0 {
				b.WriteString(rep.Findings[region][j].Explanation)
				if len(rep.Regions) > 1 {
					fmt.Fprintf(&b, " (%s)", region)
				}
				break
			}
		}
	}
	rep.Summary = wire.Clip(b.String(), maxSummaryBytes)
	return rep
}

// ShapeDetails adds a report's lines for a page's details.
func ShapeDetails(rep *ShapeReport, details map[string]string) {
	details["shape.detectors"] = strings.Join(rep.Detectors, ",")
	if rep.Scope != "" {
		details["shape.scope"] = rep.Scope
	}
	for _, region := range slices.Sorted(maps.Keys(rep.Findings)) {
		var lines []string
		for _, f := range rep.Findings[region] {
			lines = append(lines, f.Explanation)
		}
		details["shape."+region] = wire.Clip(strings.Join(lines, "; "), maxSummaryBytes)
	}
}
