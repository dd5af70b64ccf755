package alerting

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outposthq/outpost/alerting/status"
	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// TestSharedBuildServesACrowdFromOneBuild: readers that ask while a build
// is under way wait for it and get its body; a reader after it builds
// anew.
func TestSharedBuildServesACrowdFromOneBuild(t *testing.T) {
	var s sharedBuild
	var builds atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan []byte)
	go func() {
		first <- s.get(func() []byte { builds.Add(1); close(started); <-release; return []byte("one") })
	}()
	<-started
	var wg sync.WaitGroup
	bodies := make([][]byte, 10)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[i] = s.get(func() []byte { builds.Add(1); return []byte("another") })
		}()
	}
	clocktest.WaitIdle(t, 30*time.Second) // every reader waits on the build
	close(release)
	wg.Wait()
	if got := <-first; string(got) != "one" {
		t.Fatalf("first reader got %q", got)
	}
	for i, b := range bodies {
		if string(b) != "one" {
			t.Errorf("reader %d got %q, want the shared build's body", i, b)
		}
	}
	if n := builds.Load(); n != 1 {
		t.Errorf("%d builds for 11 readers at once, want 1", n)
	}
	if got := s.get(func() []byte { builds.Add(1); return []byte("later") }); string(got) != "later" || builds.Load() != 2 {
		t.Errorf("a later reader got %q after %d builds, want a build of its own", got, builds.Load())
	}
}

// TestStatusJSONOneCheck: ?check=ID answers that check alone, with every
// region's liveness; an unknown check is a 404; no filter is the whole
// status, as PublicStatus has it.
func TestStatusJSONOneCheck(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.ev.StatusJSON())
	t.Cleanup(srv.Close)
	get := func(query string) (int, []byte) {
		resp, err := http.Get(srv.URL + "/status.json" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	code, body := get("?check=api")
	var one status.Status
	if err := json.Unmarshal(body, &one); code != 200 || err != nil {
		t.Fatalf("?check=api: %d %v\n%s", code, err, body)
	}
	if len(one.Checks) != 1 || one.Checks[0].ID != "api" || len(one.Regions) != 3 {
		t.Errorf("?check=api gave checks %v and %d regions, want api alone and all 3 regions", one.Checks, len(one.Regions))
	}
	if code, _ := get("?check=nope"); code != http.StatusNotFound {
		t.Errorf("unknown check: %d, want 404", code)
	}
	code, body = get("")
	var all status.Status
	if err := json.Unmarshal(body, &all); code != 200 || err != nil || len(all.Checks) != len(f.cfg.Checks) {
		t.Fatalf("whole status: %d %v, %d checks", code, err, len(all.Checks))
	}
	if !bytes.HasPrefix(body, []byte("{\n  \"time\"")) {
		t.Errorf("not the indented form /status.json has always served: %.40s", body)
	}
}
