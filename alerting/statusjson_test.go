package alerting

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outposthq/outpost/alerting/status"
)

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

// TestStatusPageOneCheck: /status?check=ID, where pages link, is the HTML
// page with that check alone; an unknown check is a 404.
func TestStatusPageOneCheck(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.ev.StatusPage())
	t.Cleanup(srv.Close)
	get := func(query string) (int, string) {
		resp, err := http.Get(srv.URL + "/status" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, page := get("?check=api")
	if code != http.StatusOK || !bytes.Contains([]byte(page), []byte(`id="check-api"`)) || bytes.Contains([]byte(page), []byte(`id="check-web"`)) {
		t.Fatalf("?check=api: %d, want the api check alone:\n%s", code, page)
	}
	if code, _ := get("?check=nope"); code != http.StatusNotFound {
		t.Errorf("unknown check: %d, want 404", code)
	}
}
