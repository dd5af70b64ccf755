package alerting

import (
	"encoding/json"
	"slices"

	"github.com/outposthq/outpost/alerting/decide"
)

// savedDecider is what a check's decision needs to survive a restart: its
// incidents, and which regions were failing. Without the second, the first
// result after a restart would be judged without the failure history
// behind it, and an open incident could resolve and page again.
//
// Certs are the certificates the check warned about (decide.StepCerts),
// so that a restart does not warn about them again.
type savedDecider struct {
	State   decide.IncidentState `json:"state"`
	Failing map[string]bool      `json:"failing,omitempty"`
	Certs   decide.CertState     `json:"certs,omitempty"`
	// Adopted are the dedup keys of open incidents another evaluator
	// raised before the bus's shard map gave the check to this one
	// (busstate.go): their resolve goes out from here although this
	// evaluator's pipeline never sent their trigger, across a restart too.
	Adopted []string `json:"adopted,omitempty"`
}

// atRest reports whether saved is what a check starts with: nothing open,
// nothing pending, no region failing, no certificate warned about. Such a
// check needs no record.
func (saved savedDecider) atRest() bool {
	if len(saved.Certs) > 0 {
		return false
	}
	for _, f := range saved.Failing {
		if f {
			return false
		}
	}
	st := saved.State
	return !st.AnyOpen() && st.DownSince.IsZero() && st.DegradedSince.IsZero() && st.ShapeSince.IsZero()
}

// saveIncident queues check id's decision state for the state store: its
// record, or the record's removal when the check is at rest. It costs one
// record's encoding and does no I/O; the store's writer commits it with
// whatever else changed meanwhile.
func (e *Evaluator) saveIncident(id string, saved savedDecider) {
	saved.Adopted = e.shared.adoptedOf(id)
	e.shared.saveIncident(id, saved)
	if e.state == nil {
		return
	}
	var err error
	if saved.atRest() {
		err = e.state.Delete(bucketIncidents, id)
	} else {
		var data []byte
		if data, err = json.Marshal(saved); err == nil {
			err = e.state.Put(bucketIncidents, id, data)
		}
	}
	if err != nil {
		e.logStateError("incident state not saved; a restart may re-page or miss a resolve", id, err)
	}
}

// restoreDecider gives check id the state saved for it, and reports
// whether id is a configured check. Regions no longer the check's are
// dropped.
func (e *Evaluator) restoreDecider(id string, saved savedDecider) bool {
	cd := e.plan.Load().deciders[id]
	if cd == nil {
		return false
	}
	cd.state = saved.State
	cd.certs = saved.Certs
	e.adoptedAtLoad = append(e.adoptedAtLoad, saved.Adopted...)
	for region, failing := range saved.Failing {
		if slices.Contains(cd.c.Regions, region) {
			cd.failing[region] = failing
		}
	}
	return true
}

// loadIncidents restores the decision state in the store: open incidents
// stay open, so they are neither paged again as new nor forgotten, and
// failing regions stay failing until they recover. Records of checks no
// longer configured, or that cannot be decoded, are removed. It returns
// how many records it found.
func (e *Evaluator) loadIncidents() (int, error) {
	n := 0
	var drop []string
	err := e.state.ForEach(bucketIncidents, func(id string, v []byte) error {
		n++
		var saved savedDecider
		if err := json.Unmarshal(v, &saved); err != nil {
			e.log.Error("incident state of a check cannot be read; it starts at rest", "check", id, "err", err)
			drop = append(drop, id)
			return nil
		}
		if !e.restoreDecider(id, saved) {
			drop = append(drop, id)
		}
		return nil
	})
	for _, id := range drop {
		e.state.Delete(bucketIncidents, id)
	}
	return n, err
}
