package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
)

// Damaged state never stops an evaluator: every state file that cannot be
// read at start is moved aside with a timestamped name (state.MoveAside)
// and the evaluator starts with what it could recover. The ERROR log says
// so at once; on-call hears it too, from the first liveness tick, as one
// meta notice per file saying what was lost.

// lostFile is a damaged state file set aside at start.
type lostFile struct {
	file, movedTo, lost string
}

// setAsides are the files set aside since start, until announced.
type setAsides struct {
	mu        sync.Mutex
	files     []lostFile
	announced int
}

// NoteSetAside records that file, a state file this evaluator depends on
// (its outbox, say, opened by the caller), was damaged and moved to
// movedTo, losing lost; the first liveness tick tells on-call. The
// evaluator's own files are noted by New.
func (e *Evaluator) NoteSetAside(file, movedTo, lost string) {
	e.setAside.mu.Lock()
	defer e.setAside.mu.Unlock()
	e.setAside.files = append(e.setAside.files, lostFile{file, movedTo, lost})
}

// announceSetAsides sends a meta notice for every file set aside and not
// yet announced.
func (e *Evaluator) announceSetAsides(ctx context.Context, now time.Time) {
	s := &e.setAside
	s.mu.Lock()
	files := s.files[s.announced:]
	s.announced = len(s.files)
	s.mu.Unlock()
	name := e.name
	for _, f := range files {
		e.send(ctx, notify.Notification{Kind: notify.KindStateSetAside, Key: "outpost:state-set-aside:" + name + ":" + filepath.Base(f.file),
			Route: checks.RouteMeta, Severity: notify.SeverityWarning, Time: now,
			Summary: fmt.Sprintf("evaluator %s started without its damaged %s (moved to %s): lost %s", name, f.file, f.movedTo, f.lost),
			Details: map[string]string{"route": checks.RouteMeta, "evaluator": name, "file": f.file, "moved_to": f.movedTo, "lost": f.lost}})
	}
}
