package alerting

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/outposthq/outpost/alerting/status"
)

// StatusJSON serves GET /status.json: PublicStatus as JSON. Readers that
// arrive while an answer is being built wait for it and share it, so a
// crowd of readers in a storm costs one build, not one each, and one
// body's memory. ?check=ID narrows the answer to one check (every region's
// liveness stays); an unknown ID is a 404.
func (e *Evaluator) StatusJSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		if id := req.URL.Query().Get("check"); id != "" {
			if e.checks[id] == nil {
				http.Error(w, "no check "+strconv.Quote(id), http.StatusNotFound)
				return
			}
			s := e.PublicStatus()
			for _, c := range s.Checks {
				if c.ID == id {
					s.Checks = []status.CheckStatus{c}
					break
				}
			}
			writeJSON(w, encodeStatus(s))
			return
		}
		body, _ := e.statusBuilds.Get(func() ([]byte, error) { return encodeStatus(e.PublicStatus()), nil })
		writeJSON(w, body)
	})
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// encodeStatus is s as the indented JSON /status.json has always served.
func encodeStatus(s status.Status) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s) // a Status always encodes
	return buf.Bytes()
}
