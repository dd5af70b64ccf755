package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
	"github.com/outposthq/outpost/alerting/state"
	"github.com/outposthq/outpost/probes/atomicfile"
)

// benchSaved is the saved state of a check with a DOWN incident open for
// a while, failing in 4 of 5 regions.
func benchSaved(id string, now time.Time) savedDecider {
	since := now.Add(-20 * time.Minute)
	in := decide.Incident{Open: true, OpenedAt: since, Paged: true, PagedAt: since, Route: "oncall", Transitions: []time.Time{since}}
	return savedDecider{
		State:   decide.IncidentState{Check: id, State: decide.StateDown, Since: since, DownSince: since, Down: in},
		Failing: map[string]bool{"r1": true, "r2": true, "r3": true, "r4": true, "r5": false},
	}
}

// BenchmarkStateSave compares, per change of one check's state, with
// 3,000 checks of which open are not at rest, the whole-file save the
// evaluator did before the state store (re-encode every such check,
// write incidents.json atomically: two fsyncs and a rename) with the
// store: one record, committed with one fsync (synced), or queued and
// committed with whatever else changed meanwhile (grouped, as deliver
// does; the loop ends with a Sync, so every change is on disk).
func BenchmarkStateSave(b *testing.B) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, open := range []int{300, 3000} {
		saved := make(map[string]savedDecider, open)
		for i := range open {
			id := fmt.Sprintf("check-%04d", i)
			saved[id] = benchSaved(id, now)
		}
		change := func(i int) (string, savedDecider) {
			id := fmt.Sprintf("check-%04d", i%open)
			s := saved[id]
			s.State.Since = now.Add(time.Duration(i) * time.Second)
			return id, s
		}
		b.Run(fmt.Sprintf("open=%d/whole-file", open), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), incidentsFile)
			persisted := maps.Clone(saved)
			var written int64
			for i := 0; b.Loop(); i++ {
				id, s := change(i)
				persisted[id] = s
				data, err := json.Marshal(incidentFile{Version: 1, Checks: persisted})
				if err != nil {
					b.Fatal(err)
				}
				if err := atomicfile.WriteFile(path, data); err != nil {
					b.Fatal(err)
				}
				written += int64(len(data))
			}
			b.ReportMetric(float64(written)/float64(b.N), "bytes/change")
		})
		for _, mode := range []string{"synced", "grouped"} {
			b.Run(fmt.Sprintf("open=%d/store-%s", open, mode), func(b *testing.B) {
				var written, commits atomic.Int64
				st, err := state.Open(filepath.Join(b.TempDir(), stateFile), state.Options{
					Buckets:  []string{bucketIncidents},
					OnCommit: func(c state.Commit) { written.Add(int64(c.Bytes)); commits.Add(1) },
				})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				for id, s := range saved {
					st.Put(bucketIncidents, id, mustJSON(b, s))
				}
				if err := st.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				written.Store(0)
				commits.Store(0)
				for i := 0; b.Loop(); i++ {
					id, s := change(i)
					data, err := json.Marshal(s)
					if err != nil {
						b.Fatal(err)
					}
					if err := st.Put(bucketIncidents, id, data); err != nil {
						b.Fatal(err)
					}
					if mode == "synced" {
						if err := st.Sync(context.Background()); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := st.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(written.Load())/float64(b.N), "bytes/change")
				b.ReportMetric(float64(commits.Load())/float64(b.N), "fsyncs/change")
			})
		}
	}
}
