package notify

import (
	"strings"

	"github.com/outposthq/outpost/probes/wire"
)

// PhaseTotal is the key of RegionEvidence.Phases holding the whole probe's
// duration; the other keys are wire.PhaseNames.
const PhaseTotal = "total"

// EvidenceFromResult turns one region's latest result into the evidence a
// page shows, with state as the region's verdict ("FAILING", "OK", ...).
// DNS answers are keyed by resolver and server ("system 127.0.0.53:53");
// a server without answers shows its rcode or error instead.
func EvidenceFromResult(state string, r wire.Result) RegionEvidence {
	ev := RegionEvidence{
		Region:        r.Region,
		State:         state,
		Reason:        r.Reason,
		ResolvedIPs:   r.Observed.ResolvedIPs,
		ConnectedAddr: r.Observed.ConnectedAddr,
		StatusCode:    r.Observed.StatusCode,
		Phases:        map[string]float64{PhaseTotal: r.Duration},
	}
	for i, v := range r.Phases.Values() {
		if v > 0 {
			ev.Phases[wire.PhaseNames[i]] = v
		}
	}
	for _, d := range r.Observed.DNS {
		if ev.DNSAnswers == nil {
			ev.DNSAnswers = map[string][]string{}
		}
		key := strings.TrimSpace(d.Resolver + " " + d.Server)
		answers := d.Answers
		if len(answers) == 0 {
			why := strings.TrimSpace(strings.Join([]string{d.Rcode, d.Error}, " "))
			if why == "" {
				why = "no answer"
			}
			answers = []string{"(" + why + ")"}
		}
		ev.DNSAnswers[key] = append(ev.DNSAnswers[key], answers...)
	}
	return bounded(Notification{Evidence: []RegionEvidence{ev}}).Evidence[0]
}
