package alerting

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/probes/atomicfile"
)

// incidentFile is the persisted form of the checks' decision state.
type incidentFile struct {
	Version int                     `json:"version"`
	Checks  map[string]savedDecider `json:"checks"`
}

// savedDecider is what a check's decision needs to survive a restart: its
// incidents, and which regions were failing. Without the second, the first
// result after a restart would be judged without the failure history
// behind it, and an open incident could resolve and page again.
type savedDecider struct {
	State   decide.IncidentState `json:"state"`
	Failing map[string]bool      `json:"failing,omitempty"`
}

// saveIncident records id's decision state and has every check's state
// that is not at rest written to the data dir. Writes are combined: the
// caller that finds no write under way writes, again while states changed
// meanwhile, and the others return at once; the file is written with no
// lock held.
func (e *Evaluator) saveIncident(id string, saved savedDecider) {
	e.saveMu.Lock()
	anyFailing := false
	for _, f := range saved.Failing {
		anyFailing = anyFailing || f
	}
	st := saved.State
	if st.AnyOpen() || !st.DownSince.IsZero() || !st.ShapeSince.IsZero() || anyFailing {
		e.persisted[id] = saved
	} else {
		delete(e.persisted, id)
	}
	if e.dataDir == "" || e.saving {
		e.saveDirty = e.dataDir != ""
		e.saveMu.Unlock()
		return
	}
	e.saving, e.saveDirty = true, true
	for e.saveDirty {
		e.saveDirty = false
		snapshot := maps.Clone(e.persisted)
		e.saveMu.Unlock()
		data, err := json.Marshal(incidentFile{Version: 1, Checks: snapshot})
		if err == nil {
			err = atomicfile.WriteFile(filepath.Join(e.dataDir, incidentsFile), data)
		}
		if err != nil {
			e.log.Error("incident state not saved; a restart may re-page or miss a resolve", "err", err)
		}
		e.saveMu.Lock()
	}
	e.saving = false
	e.saveMu.Unlock()
}

// loadIncidents restores persisted decision state: open incidents stay
// open, so they are neither paged again as new nor forgotten, and failing
// regions stay failing until they recover.
func (e *Evaluator) loadIncidents() error {
	data, err := os.ReadFile(filepath.Join(e.dataDir, incidentsFile))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var f incidentFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s: %w", incidentsFile, err)
	}
	for id, saved := range f.Checks {
		if cd := e.deciders[id]; cd != nil {
			cd.state = saved.State
			for region, failing := range saved.Failing {
				if slices.Contains(cd.c.Regions, region) {
					cd.failing[region] = failing
				}
			}
			e.persisted[id] = saved
		}
	}
	return nil
}
