package alerting

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/outposthq/outpost/alerting/status"
)

// StatusJSON serves GET /status.json: the evaluator's public state as
// JSON, bounded whatever the size of the configuration.
//
// With at most status.FullMaxChecks checks and no query, the answer is
// the whole of PublicStatus, as it has always been; readers that arrive
// while it is being built wait for it and share it. A larger configuration
// answers with every region, a summary (checks by state, open incidents)
// and one page of checks, those not OK first; that answer is built at most
// once a second and shared by every reader. ?page= and ?per_page= (at most
// status.MaxPerPage) choose a page, ?state= keeps the checks in one state
// (OK, DEGRADED, DOWN, UNKNOWN, PENDING), for a configuration of any size.
// ?check=ID answers one check in full (every region's liveness stays),
// built for that check alone; an unknown ID is a 404, a malformed query a
// 400.
func (e *Evaluator) StatusJSON() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		q, err := status.ParseQuery(req.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch {
		case q.Check != "":
			s, ok := status.One(e, q.Check)
			if ok {
				s.Checks[0].Days, s.Checks[0].History = e.CheckHistory(q.Check, s.Time)
			}
			if !ok {
				http.Error(w, "no check "+strconv.Quote(q.Check), http.StatusNotFound)
				return
			}
			writeJSON(w, req, encodeStatus(s))
		case q.Paged():
			writeJSON(w, req, encodeStatus(status.Paged(e, q)))
		case e.statusChecks() <= status.FullMaxChecks:
			body, _ := e.statusBuilds.Get(func() ([]byte, error) { return encodeStatus(e.PublicStatus()), nil })
			writeJSON(w, req, body)
		default:
			body, _ := e.statusSummary.Get(e.clock.Now(), time.Second, func() ([]byte, error) {
				return encodeStatus(status.Paged(e, q)), nil
			})
			writeJSON(w, req, body)
		}
	})
}

func writeJSON(w http.ResponseWriter, req *http.Request, body []byte) {
	status.Write(w, req, "application/json", body)
}

// encodeStatus is s as the indented JSON /status.json has always served.
func encodeStatus(s status.Status) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s) // a Status always encodes
	return buf.Bytes()
}
