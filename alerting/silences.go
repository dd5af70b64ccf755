package alerting

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/silence"
	"github.com/outposthq/outpost/checks"
)

// Silences are ad-hoc maintenance made through the API (alerting/silence):
// while one covers a check, the check's new incidents are not paged, as in
// a maintenance window of the configuration. They are kept in the state
// store, listed on the status page and in outpost_silence_active, and
// passed to the peers as heartbeat pings are, so that every evaluator holds
// back the same pages.
//
//	POST   /api/v1/silences       create (or, with an id, replace) one
//	GET    /api/v1/silences       list them, newest first
//	DELETE /api/v1/silence/{id}   expire one
//
// Every request carries "Authorization: Bearer " and api.token; without a
// token configured, the API answers 404. A wrong token takes from its
// source's allowance of wrong credentials, as a wrong ping token does.

const (
	bucketSilences = "silences" // silence id → silence.Silence, JSON
	// maxSilenceBody bounds a silence in a request.
	maxSilenceBody = 64 << 10
)

// silences holds the silences by id. Its mutex is a leaf: decisions take it
// under a decider's.
type silences struct {
	mu  sync.Mutex
	all map[string]*silence.Silence
}

// maintenanceFor returns the maintenance windows of the configuration and
// those the active silences make for c at now: one per silence that
// covers c, for the regions of c it selects.
func (e *Evaluator) maintenanceFor(c *checks.Check, now time.Time) []*checks.Maintenance {
	maint := e.config().Maintenance
	e.silences.mu.Lock()
	defer e.silences.mu.Unlock()
	if len(e.silences.all) == 0 {
		return maint
	}
	sc := silence.Check{ID: c.ID, Labels: c.Labels}
	for _, id := range slices.Sorted(maps.Keys(e.silences.all)) {
		s := e.silences.all[id]
		if !s.CoversCheck(sc, now) {
			continue
		}
		regions := s.Restrict(c.Regions)
		if len(regions) == 0 {
			continue
		}
		if len(maint) == len(e.config().Maintenance) {
			maint = slices.Clone(maint)
		}
		maint = append(maint, &checks.Maintenance{Name: "silence " + s.ID, Checks: []string{c.ID}, Regions: regions, Start: s.StartsAt, End: s.EndsAt})
	}
	return maint
}

// silencesOf describes the active silences covering c at now, for the
// status page.
func (e *Evaluator) silencesOf(c *checks.Check, now time.Time) []string {
	e.silences.mu.Lock()
	defer e.silences.mu.Unlock()
	var out []string
	sc := silence.Check{ID: c.ID, Labels: c.Labels}
	for _, id := range slices.Sorted(maps.Keys(e.silences.all)) {
		if s := e.silences.all[id]; s.CoversCheck(sc, now) && len(s.Restrict(c.Regions)) > 0 {
			// Who and why stay in the API's listing: the status page is
			// public.
			out = append(out, "silenced until "+s.EndsAt.UTC().Format("2006-01-02 15:04")+" UTC")
		}
	}
	return out
}

// loadSilences restores the silences in the store; those it cannot read
// are removed.
func (e *Evaluator) loadSilences() error {
	var drop []string
	e.silences.mu.Lock()
	defer e.silences.mu.Unlock()
	err := e.state.ForEach(bucketSilences, func(id string, v []byte) error {
		var s silence.Silence
		if json.Unmarshal(v, &s) != nil || s.ID != id || s.Compile() != nil || len(e.silences.all) >= silence.MaxSilences {
			drop = append(drop, id)
			return nil
		}
		e.silences.all[id] = &s
		return nil
	})
	for _, id := range drop {
		e.state.Delete(bucketSilences, id)
	}
	return err
}

// forgetSilences drops the silences expired for longer than silence.Keep.
// Called from the liveness loop.
func (e *Evaluator) forgetSilences(now time.Time) {
	e.silences.mu.Lock()
	var gone []string
	for id, s := range e.silences.all {
		if now.Sub(s.EndsAt) > silence.Keep {
			delete(e.silences.all, id)
			gone = append(gone, id)
		}
	}
	e.silences.mu.Unlock()
	if e.state != nil {
		for _, id := range gone {
			e.state.Delete(bucketSilences, id)
		}
	}
}

// silenceCollector exports outpost_silence_active{id,created_by}: 1 for
// each active silence (at most silence.MaxSilences series).
type silenceCollector struct{ e *Evaluator }

var silenceActiveDesc = prometheus.NewDesc("outpost_silence_active",
	"1 for each active silence made through the API (POST /api/v1/silences); its pages are held back as in maintenance.",
	[]string{"id", "created_by"}, nil)

func (c silenceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- silenceActiveDesc }

func (c silenceCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.e.clock.Now()
	c.e.silences.mu.Lock()
	defer c.e.silences.mu.Unlock()
	for _, s := range c.e.silences.all {
		if s.Active(now) {
			ch <- prometheus.MustNewConstMetric(silenceActiveDesc, prometheus.GaugeValue, 1, s.ID, s.CreatedBy)
		}
	}
}

// apiAuthorized reports whether req carries the API token, answering it
// when not: 404 without a token configured, 401 for a wrong or missing
// one, 429 once its source has spent its allowance of wrong ones.
func (e *Evaluator) apiAuthorized(w http.ResponseWriter, req *http.Request, now time.Time) bool {
	api := e.config().API
	if !api.Enabled() {
		http.NotFound(w, req)
		return false
	}
	got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	want := sha256.Sum256([]byte(api.Token.Value()))
	sum := sha256.Sum256([]byte(got))
	if ok && subtle.ConstantTimeCompare(want[:], sum[:]) == 1 {
		return true
	}
	src := sourceOf(req)
	w.Header().Set("Connection", "close")
	if full, wait := e.pings.exhausted(src, now); full {
		w.Header().Set("Retry-After", retryAfter(wait))
		http.Error(w, "too many wrong credentials from this address; retry later", http.StatusTooManyRequests)
		e.metrics.pingRefused("rate_limited").Inc()
		return false
	}
	e.pings.wrong(src, now)
	e.metrics.pingRefused("wrong_token").Inc()
	if ok, suppressed := e.refusalLog.Allow("api/unauthorized", now); ok {
		e.log.Warn("API request refused: no or wrong bearer token", "path", req.URL.Path, "source", src.String(), "suppressed", suppressed)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
	http.Error(w, "unauthorized: Authorization: Bearer and api.token required", http.StatusUnauthorized)
	return false
}

// serveSilences serves GET and POST /api/v1/silences.
func (e *Evaluator) serveSilences(w http.ResponseWriter, req *http.Request) {
	now := e.clock.Now()
	if !e.apiAuthorized(w, req, now) {
		return
	}
	if req.Method == http.MethodGet {
		e.silences.mu.Lock()
		list := make([]silenceView, 0, len(e.silences.all))
		for _, s := range e.silences.all {
			list = append(list, silenceView{Silence: *s, Status: silenceStatus{State: s.State(now)}})
		}
		e.silences.mu.Unlock()
		slices.SortFunc(list, func(a, b silenceView) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
		writeJSONValue(w, http.StatusOK, list)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxSilenceBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("body: %v (at most %d bytes)", err, maxSilenceBody), http.StatusRequestEntityTooLarge)
		return
	}
	var s silence.Silence
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		http.Error(w, "malformed silence: "+quote(err.Error()), http.StatusBadRequest)
		return
	}
	forwarded := req.Header.Get(headerForwarded) != ""
	if s.ID != "" && !forwarded {
		// Replacing one: it must exist here.
		e.silences.mu.Lock()
		_, ok := e.silences.all[s.ID]
		e.silences.mu.Unlock()
		if !ok {
			http.Error(w, "no silence "+quote(s.ID), http.StatusNotFound)
			return
		}
	}
	if err := s.Prepare(now); err != nil {
		http.Error(w, "invalid silence: "+err.Error(), http.StatusBadRequest)
		return
	}
	if s.ID == "" {
		s.ID = silence.NewID()
	}
	if err := e.putSilence(req.Context(), &s); err != nil {
		http.Error(w, err.Error(), silenceErrStatus(err))
		return
	}
	e.log.Info("silence set", "silence", s.String(), "forwarded_by", req.Header.Get(headerForwarded))
	if !forwarded {
		data, _ := json.Marshal(s)
		e.forwardSilence(http.MethodPost, "/api/v1/silences", data)
	}
	e.reevaluate(now)
	writeJSONValue(w, http.StatusOK, map[string]string{"silenceID": s.ID})
}

// serveSilence serves DELETE /api/v1/silence/{id}: expires it.
func (e *Evaluator) serveSilence(w http.ResponseWriter, req *http.Request) {
	now := e.clock.Now()
	if !e.apiAuthorized(w, req, now) {
		return
	}
	id := req.PathValue("id")
	e.silences.mu.Lock()
	s, ok := e.silences.all[id]
	var expired silence.Silence
	if ok {
		s.Expire(now)
		expired = *s
	}
	e.silences.mu.Unlock()
	if !ok {
		http.Error(w, "no silence "+quote(id), http.StatusNotFound)
		return
	}
	if e.state != nil {
		data, _ := json.Marshal(expired)
		if err := e.state.PutSync(req.Context(), bucketSilences, id, data); err != nil {
			http.Error(w, "silence expired but not recorded; it may come back after a restart: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	e.log.Info("silence expired", "silence", expired.String(), "forwarded_by", req.Header.Get(headerForwarded))
	if req.Header.Get(headerForwarded) == "" {
		e.forwardSilence(http.MethodDelete, "/api/v1/silence/"+id, nil)
	}
	e.reevaluate(now)
	w.WriteHeader(http.StatusOK)
}

// errSilenceFull: silence.MaxSilences are kept.
var errSilenceFull = errors.New("too many silences: expire some first")

func silenceErrStatus(err error) int {
	if errors.Is(err, errSilenceFull) {
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// putSilence keeps s, durably before it answers.
func (e *Evaluator) putSilence(ctx context.Context, s *silence.Silence) error {
	e.silences.mu.Lock()
	if _, exists := e.silences.all[s.ID]; !exists && len(e.silences.all) >= silence.MaxSilences {
		e.silences.mu.Unlock()
		return errSilenceFull
	}
	e.silences.all[s.ID] = s
	e.silences.mu.Unlock()
	if e.state == nil {
		return nil
	}
	data, err := json.Marshal(s)
	if err == nil {
		err = e.state.PutSync(ctx, bucketSilences, s.ID, data)
	}
	if err != nil {
		return fmt.Errorf("silence in force but not recorded; it is lost at a restart: %w", err)
	}
	return nil
}

// reevaluate decides about every check now, so that a silence's end
// pages what it held back without waiting for the sweep.
func (e *Evaluator) reevaluate(now time.Time) {
	ids := make([]string, 0, len(e.config().Checks))
	for _, c := range e.config().Checks {
		ids = append(ids, c.ID)
	}
	e.evaluate(context.Background(), now, ids...)
}

// forwardSilence passes a silence request to every peer, as a ping is.
func (e *Evaluator) forwardSilence(method, path string, body []byte) {
	token := e.config().API.Token.Value()
	e.forward("silence", method, path, body, func(h http.Header) {
		h.Set("Authorization", "Bearer "+token)
		h.Set("Content-Type", "application/json")
	})
}

// silenceView is a silence as the API lists it: Alertmanager's form.
type silenceView struct {
	silence.Silence
	Status silenceStatus `json:"status"`
}

type silenceStatus struct {
	State string `json:"state"`
}

func writeJSONValue(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}
