package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/decide"
)

func TestSeqMemorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	before := newFixture(t, withDataDir(dir))
	for seq := uint64(100); seq <= 102; seq++ {
		if code, body := before.send("us-east", keyUS, goodBody(before, seq)); code != 200 || body != "ok" {
			t.Fatalf("seq %d: %d %q", seq, code, body)
		}
	}
	before.srv.Close()
	before.ev.Close()

	after := newFixture(t, withDataDir(dir))
	after.clock.Advance(time.Minute)
	tests := []struct {
		name   string
		seq    uint64
		status int
		answer string
	}{
		{"the latest again", 102, 200, "duplicate"},
		{"a recent one again", 100, 200, "duplicate"},
		{"an older one", 99, 401, "replayed or out-of-order sequence"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := after.send("us-east", keyUS, goodBody(after, tc.seq))
			if code != tc.status || !strings.Contains(body, tc.answer) {
				t.Fatalf("answer %d %q, want %d %q", code, body, tc.status, tc.answer)
			}
		})
	}
	if w, _ := after.ev.Window("web", "us-east"); len(w.Samples) != 0 {
		t.Fatalf("replays applied after the restart: %d samples", len(w.Samples))
	}
	s := after.ev.Snapshot()
	us := s.Regions[0]
	if us.State != decide.RegionUnknown || !us.LastSeen.IsZero() {
		t.Errorf("a restart must not make a region live: %+v", us)
	}
	if len(us.Agents) != 1 || us.Agents[0].LastSeq != 102 || !us.Agents[0].LastSeen.Equal(t0) {
		t.Errorf("agents = %+v", us.Agents)
	}
	if code, body := after.send("us-east", keyUS, goodBody(after, 103)); code != 200 || body != "ok" {
		t.Fatalf("next seq after the restart: %d %q", code, body)
	}
}

// A batch whose sequence number cannot be recorded, the data dir failing,
// is applied from memory all the same: the fault is the evaluator's, and
// refusing the batch would make its region look silent. /healthz's
// Health says what is wrong; the record reaches the disk once it works.
func TestSeqMemoryWriteFailure(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, withDataDir(dir))
	diskFull := errors.New("no space left on device")
	f.ev.stateFault.Store(&diskFull)
	body := goodBody(f, 1)
	if code, answer := f.send("us-east", keyUS, body); code != 200 || answer != "ok" {
		t.Fatalf("answer %d %q, want 200 ok", code, answer)
	}
	if w, _ := f.ev.Window("web", "us-east"); len(w.Samples) != 1 {
		t.Fatalf("the batch was not applied: %+v", w)
	}
	if h := f.ev.Health(); !strings.Contains(h, "cannot write its data dir "+dir+": ") || !strings.Contains(h, "no space left on device") {
		t.Fatalf("Health = %q", h)
	}
	if v, _ := f.gathered("outpost_evaluator_fault", map[string]string{"component": "data_dir"}); v != 1 {
		t.Errorf("outpost_evaluator_fault{component=data_dir} = %g, want 1", v)
	}
	// While the fault lasts, ingest does not wait for failing commits.
	if code, answer := f.send("us-east", keyUS, goodBody(f, 2)); code != 200 || answer != "ok" {
		t.Fatalf("second batch: %d %q, want 200 ok", code, answer)
	}

	f.ev.stateFault.Store(nil)
	// A commit that was failing as the disk came back fails once more;
	// the writer retries.
	waitFor(t, "the queued record written", func() bool { return f.ev.state.Sync(context.Background()) == nil })
	if h := f.ev.Health(); h != "" {
		t.Errorf("Health after the disk recovered = %q", h)
	}
	// The queued record reached the disk: after a restart both batches
	// are duplicates.
	f.srv.Close()
	f.ev.Close()
	f = newFixture(t, withDataDir(dir))
	for seq, b := range [][]byte{body, goodBody(f, 2)} {
		if code, answer := f.send("us-east", keyUS, b); code != 200 || answer != "duplicate" {
			t.Fatalf("batch %d again after a restart: %d %q, want 200 duplicate", seq+1, code, answer)
		}
	}
}

// Concurrent agents share writes; every accepted sequence number is on
// disk when its answer is sent.
func TestSeqMemoryConcurrentAgents(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, withDataDir(dir))
	const agents, batches = 8, 5
	var wg sync.WaitGroup
	for a := range agents {
		wg.Go(func() {
			for seq := uint64(1); seq <= batches; seq++ {
				b := f.batch("us-east", seq, result("web", "us-east", true))
				b.Agent = fmt.Sprintf("agent-%d", a)
				if code, body := f.sendBatch(b); code != 200 {
					t.Errorf("agent %d seq %d: %d %q", a, seq, code, body)
				}
			}
		})
	}
	wg.Wait()
	var onDisk []seqRecord // committed, so fsynced
	err := f.ev.state.ForEach(bucketSeqs, func(_ string, v []byte) error {
		var r seqRecord
		onDisk = append(onDisk, r)
		return json.Unmarshal(v, &onDisk[len(onDisk)-1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != agents {
		t.Fatalf("%d agents on disk, want %d", len(onDisk), agents)
	}
	for _, r := range onDisk {
		if r.Highest != batches || len(r.Recent) != batches || r.Region != "us-east" {
			t.Errorf("record %+v", r)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPruneKeepsTheMostRecentAgents(t *testing.T) {
	table := map[agentKey]seqRecord{}
	for i := range maxAgentsPerRegion + 6 {
		r := seqRecord{Region: "us-east", Agent: fmt.Sprintf("a%d", i), Highest: 1, Seen: t0.Add(time.Duration(i) * time.Second)}
		table[agentKey{r.Region, r.Agent}] = r
	}
	table[agentKey{"eu-west", "old"}] = seqRecord{Region: "eu-west", Agent: "old", Seen: t0.Add(-time.Hour)}
	prune(table)
	if len(table) != maxAgentsPerRegion+1 {
		t.Fatalf("%d records kept, want %d", len(table), maxAgentsPerRegion+1)
	}
	for i := range 6 {
		if _, ok := table[agentKey{"us-east", fmt.Sprintf("a%d", i)}]; ok {
			t.Errorf("a%d, among the oldest, was kept", i)
		}
	}
}

func TestSeqMemoryRestore(t *testing.T) {
	m := restoreSeqMemory(20, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25, 0})
	if m.classify(20) != seqDuplicate || m.classify(5) != seqDuplicate || m.classify(4) != seqReplay || m.classify(21) != seqNew {
		t.Fatalf("restored memory = %+v", m)
	}
	if got := m.recentList(); len(got) != recentSeqs || got[len(got)-1] != 20 {
		t.Fatalf("recent = %v", got)
	}
}

// TestStartRemovesWhatACrashLeft: a temporary file of an atomic write that
// a crash interrupted is removed at start; the state files are not.
func TestStartRemovesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	first := newFixture(t, withDataDir(dir))
	if code, body := first.send("us-east", keyUS, goodBody(first, 100)); code != 200 || body != "ok" {
		t.Fatalf("%d %q", code, body)
	}
	first.srv.Close()
	first.ev.Close()
	leftover := filepath.Join(dir, ".incidents.json.atomic-42")
	if err := os.WriteFile(leftover, []byte(`{"version":`), 0o600); err != nil {
		t.Fatal(err)
	}
	newFixture(t, withDataDir(dir))
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("the crash's temporary file is still there: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Error("the state files went too")
	}
}

// An ingest-seq.json from before the state store is imported once: its
// batches are still refused as replays, and the file is renamed.
func TestSeqMemoryIsMigrated(t *testing.T) {
	dir := t.TempDir()
	old := seqFile{Version: 1, Agents: []seqRecord{{Region: "us-east", Agent: "a1", Highest: 102, Recent: []uint64{100, 101, 102}, Seen: t0}}}
	if err := os.WriteFile(filepath.Join(dir, seqFileName), mustJSON(t, old), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the import, then a start from the store alone
		f := newFixture(t, withDataDir(dir))
		if _, err := os.Stat(filepath.Join(dir, seqFileName+migratedSuffix)); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if code, body := f.send("us-east", keyUS, goodBody(f, 101)); code != 200 || body != "duplicate" {
			t.Fatalf("start %d: a recent batch again: %d %q", i, code, body)
		}
		if code, _ := f.send("us-east", keyUS, goodBody(f, 99)); code != 401 {
			t.Fatalf("start %d: an older batch: %d, want 401", i, code)
		}
		f.srv.Close()
		f.ev.Close()
	}
}
