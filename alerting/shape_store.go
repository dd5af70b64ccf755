package alerting

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/outposthq/outpost/alerting/shape"
	"github.com/outposthq/outpost/alerting/state"
	"github.com/outposthq/outpost/probes/atomicfile"
)

// Learned baselines survive restarts in the data dir: a week of learning
// is not thrown away by a deploy. They are written every shapeSaveEvery
// and when Run returns; a crash loses at most that much learning, never
// the file (it is replaced atomically).

const (
	shapesFile     = "shapes.gob"
	shapesVersion  = 1
	shapeSaveEvery = 5 * time.Minute
)

// shapeHeader starts the file.
type shapeHeader struct {
	Version int
}

// savedShape is one tracker's learned state. Trackers whose dimensions
// no longer match the configuration (another seasonality, another check
// type) are not restored.
type savedShape struct {
	Check, Region string
	Series        bool
	Stats         int
	Meta          []shape.SlotMeta
	Moments       []shape.Moment
	Bumps         []shape.Bump
	// Model is a series tracker's model; files written before it existed
	// have none, and their series trackers warm up again (see
	// shape.Saved.Model).
	Model *shape.SeriesState
}

// saveShapes writes every tracker's baseline to the data dir. Each region
// is copied under its lock and encoded outside it.
func (e *Evaluator) saveShapes() error {
	if e.dataDir == "" {
		return nil
	}
	e.shapeSaveMu.Lock()
	defer e.shapeSaveMu.Unlock()
	return atomicfile.Write(filepath.Join(e.dataDir, shapesFile), func(w io.Writer) error {
		enc := gob.NewEncoder(w)
		if err := enc.Encode(shapeHeader{Version: shapesVersion}); err != nil {
			return err
		}
		for _, r := range e.regionList {
			var chunk []savedShape
			r.mu.Lock()
			for id, t := range r.tables().shapes {
				s := t.Save()
				chunk = append(chunk, savedShape{Check: id, Region: r.name,
					Series: s.Series, Stats: s.Stats, Meta: s.Meta, Moments: s.Moments, Bumps: s.Bumps, Model: s.Model})
			}
			r.mu.Unlock()
			if err := enc.Encode(chunk); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadShapes restores baselines from the data dir. A file that cannot be
// read is set aside (state.MoveAside) and learning starts afresh: a
// lost baseline costs a warm-up, not the evaluator.
func (e *Evaluator) loadShapes() {
	path := filepath.Join(e.dataDir, shapesFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		var restored, skipped int
		restored, skipped, err = e.decodeShapes(bufio.NewReader(f))
		f.Close()
		if err == nil {
			e.log.Info("shape baselines restored", "trackers", restored, "skipped", skipped)
			return
		}
	}
	const lost = "the learned shape baselines: shape detection warms up again"
	aside, rerr := state.MoveAside(path, e.clock.Now())
	if rerr != nil {
		aside = "(could not be moved: " + rerr.Error() + ")"
	}
	e.log.Error("shape baselines not restored; learning starts afresh", "err", err, "file", aside, "lost", lost)
	e.NoteSetAside(path, aside, lost)
}

func (e *Evaluator) decodeShapes(r io.Reader) (restored, skipped int, err error) {
	dec := gob.NewDecoder(r)
	var h shapeHeader
	if err := dec.Decode(&h); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", shapesFile, err)
	}
	if h.Version != shapesVersion {
		return 0, 0, fmt.Errorf("%s: version %d, want %d", shapesFile, h.Version, shapesVersion)
	}
	for {
		var chunk []savedShape
		err := dec.Decode(&chunk)
		if errors.Is(err, io.EOF) {
			return restored, skipped, nil
		}
		if err != nil {
			return restored, skipped, fmt.Errorf("%s: %w", shapesFile, err)
		}
		for _, s := range chunk {
			if e.restoreShape(s) {
				restored++
			} else {
				skipped++
			}
		}
	}
}

// restoreShape copies s into its tracker if the tracker still exists with
// the same dimensions.
func (e *Evaluator) restoreShape(s savedShape) bool {
	r := e.regions[s.Region]
	if r == nil {
		return false
	}
	t := r.tables().shapes[s.Check]
	if t == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return t.Restore(shape.Saved{Series: s.Series, Stats: s.Stats, Meta: s.Meta, Moments: s.Moments, Bumps: s.Bumps, Model: s.Model})
}
