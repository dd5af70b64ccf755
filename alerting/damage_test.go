package alerting

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/notify/notifytest"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/probes/clock/clocktest"
	"github.com/outposthq/outpost/probes/wire"
)

// setAsideOf returns where path was set aside (path.corrupt-TIMESTAMP),
// failing unless there is exactly one such file and path's own is gone or
// new.
func setAsideOf(t *testing.T, path string) string {
	t.Helper()
	kept, _ := filepath.Glob(path + ".corrupt-*")
	if len(kept) != 1 {
		t.Fatalf("%s set aside as %v, want one path.corrupt-TIMESTAMP", path, kept)
	}
	return kept[0]
}

// damages are the ways a state file is found broken: cut short by a disk
// that lost its end, zeroed by a filesystem that lost its blocks, its
// pages past the first overwritten with garbage, or empty.
var damages = map[string]func(data []byte) []byte{
	"truncated": func(d []byte) []byte { return d[:len(d)/2] },
	"zeroed":    func(d []byte) []byte { return make([]byte, len(d)) },
	"random pages": func(d []byte) []byte {
		out := append([]byte(nil), d...)
		if len(out) > 4096 {
			rand.Read(out[4096:])
		} else {
			rand.Read(out[len(out)/2:])
		}
		return out
	},
	"empty": func([]byte) []byte { return nil },
}

// populate gives dir every state file an evaluator keeps: state.db
// (incidents, sequence memory), shapes.gob and the outbox, each with
// something in it.
func populate(t *testing.T, dir string) {
	t.Helper()
	clk := clocktest.New(t0)
	rec := &notifytest.Recorder{}
	pipe, err := outbox.Open(outbox.Options{Notifiers: map[string]notify.Notifier{"oncall": rec}, Dir: filepath.Join(dir, "outbox"), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := New(loadTestConfig(t), Options{Clock: clk, Notifier: pipe, DataDir: dir, Name: "eval-a"})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		b := wire.Batch{V: 1, Agent: "a1", Region: "us-east", Seq: seq, Created: clk.Now(), Results: []wire.Result{probedAt("web", "us-east", false, clk.Now())}}
		if err := ev.Apply(b); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
	}
	ev.tick(context.Background(), clk.Now().Add(time.Minute)) // a meta page waits in the outbox: nobody runs it
	if err := ev.saveShapes(); err != nil {
		t.Fatal(err)
	}
	ev.Close()
	pipe.Close()
}

// TestDamagedStateFilesNeverStopTheEvaluator is issue 13's table: every
// state file, broken every way, one at a time. The evaluator (with its
// outbox, as cmd/outpost wires it) starts, the damaged file is set aside
// with a timestamped name, and on-call gets a meta notice that says which
// file and what was lost.
func TestDamagedStateFilesNeverStopTheEvaluator(t *testing.T) {
	healthy := t.TempDir()
	populate(t, healthy)
	legacy := map[string]string{ // files of earlier versions, imported once
		incidentsFile: `{"version":1,"checks":{"web":{"state":{}}}}`,
		seqFileName:   `{"version":1,"agents":[{"region":"us-east","agent":"a1","highest":3}]}`,
	}
	files := map[string]string{ // file → a word of what its notice says was lost
		stateFile:  "open incidents",
		shapesFile: "shape baselines",
		filepath.Join("outbox", outbox.OutboxFileName): "notifications it had not delivered",
		incidentsFile: "incidents open before the upgrade",
		seqFileName:   "sequence memory from before the upgrade",
	}
	for file, lost := range files {
		for damage, broken := range damages {
			t.Run(file+"/"+damage, func(t *testing.T) {
				dir := t.TempDir()
				if err := os.CopyFS(dir, os.DirFS(healthy)); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, file)
				data := []byte(legacy[file])
				if data != nil {
					// An upgrade: the old file is there, the store is not yet.
					if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
						t.Fatal(err)
					}
				} else {
					var err error
					if data, err = os.ReadFile(path); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(path, broken(data), 0o600); err != nil {
					t.Fatal(err)
				}

				clk := clocktest.New(t0.Add(time.Hour))
				rec := &notifytest.Recorder{}
				pipe, err := outbox.Open(outbox.Options{Notifiers: map[string]notify.Notifier{"oncall": rec}, Dir: filepath.Join(dir, "outbox"), Clock: clk})
				if err != nil {
					t.Fatalf("the outbox did not start: %v", err)
				}
				defer pipe.Close()
				ev, err := New(loadTestConfig(t), Options{Clock: clk, Notifier: pipe, DataDir: dir, Name: "eval-a"})
				if err != nil {
					t.Fatalf("the evaluator did not start: %v", err)
				}
				defer ev.Close()
				if p, movedTo, lost := pipe.SetAside(); movedTo != "" {
					ev.NoteSetAside(p, movedTo, lost)
				}
				aside := setAsideOf(t, path)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); pipe.Run(ctx) }()
				defer func() { cancel(); <-done }()
				ev.tick(ctx, clk.Now())
				var notice *notify.Notification
				waitFor(t, "the notice", func() bool {
					for _, n := range rec.Delivered() {
						if n.Kind == notify.KindStateSetAside {
							notice = &n
							return true
						}
					}
					return false
				})
				if !strings.Contains(notice.Summary, "evaluator eval-a started without its damaged "+path+" (moved to "+aside+")") ||
					!strings.Contains(notice.Summary, lost) || notice.Route != "meta" {
					t.Fatalf("notice %q (route %s), want it to name %s, %s and what was lost (%s)", notice.Summary, notice.Route, path, aside, lost)
				}
			})
		}
	}
}
