package main

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// fakePD is a PagerDuty Events API v2 endpoint on loopback: it accepts
// POST /v2/enqueue, checks the fields PagerDuty requires, counts events by
// routing key (one key per evaluator under test), action and dedup key,
// and answers 202 as PagerDuty does.
type fakePD struct {
	mu    sync.Mutex
	byKey map[string]*pdCounts
	// onTrigger, when set before serving, is called with the summary of
	// every valid trigger as it arrives.
	onTrigger func(summary string)
}

// pdCounts are the events one routing key received.
type pdCounts struct {
	Triggers, Resolves, Acks, Invalid int
	Keys                              map[string]int // events per dedup key
}

func newFakePD() *fakePD { return &fakePD{byKey: map[string]*pdCounts{}} }

type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary  string `json:"summary"`
		Source   string `json:"source"`
		Severity string `json:"severity"`
	} `json:"payload"`
}

func (p *fakePD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 512<<10+1))
	var ev pdEvent
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.byKey[ev.RoutingKey]
	if c == nil {
		c = &pdCounts{Keys: map[string]int{}}
		p.byKey[ev.RoutingKey] = c
	}
	valid := err == nil && len(body) <= 512<<10 && ev.RoutingKey != "" && ev.DedupKey != "" && len(ev.DedupKey) <= 255
	switch ev.EventAction {
	case "trigger":
		valid = valid && ev.Payload != nil && ev.Payload.Summary != "" && ev.Payload.Source != "" && ev.Payload.Severity != ""
	case "resolve", "acknowledge":
	default:
		valid = false
	}
	if !valid {
		c.Invalid++
		http.Error(w, `{"status":"invalid event","message":"Event object is invalid"}`, http.StatusBadRequest)
		return
	}
	switch ev.EventAction {
	case "trigger":
		c.Triggers++
		if p.onTrigger != nil {
			p.onTrigger(ev.Payload.Summary)
		}
	case "resolve":
		c.Resolves++
	case "acknowledge":
		c.Acks++
	}
	c.Keys[ev.DedupKey]++
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// counts returns a copy of what routing key got.
func (p *fakePD) counts(key string) pdCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.byKey[key]
	if c == nil {
		return pdCounts{}
	}
	out := *c
	out.Keys = make(map[string]int, len(c.Keys))
	for k, v := range c.Keys {
		out.Keys[k] = v
	}
	return out
}
