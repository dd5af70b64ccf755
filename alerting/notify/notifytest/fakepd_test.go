package notifytest

import (
	"net/http"
	"strings"
	"testing"
)

// TestFakePagerDutyValidates checks the fake itself: a fake that accepts
// anything would hide real bugs.
func TestFakePagerDutyValidates(t *testing.T) {
	long := strings.Repeat("x", 256)
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"trigger", `{"routing_key":"k","event_action":"trigger","dedup_key":"d","payload":{"summary":"s","source":"src","severity":"critical"}}`, true},
		{"resolve", `{"routing_key":"k","event_action":"resolve","dedup_key":"d"}`, true},
		{"no routing key", `{"event_action":"resolve","dedup_key":"d"}`, false},
		{"bad action", `{"routing_key":"k","event_action":"fire","dedup_key":"d"}`, false},
		{"unknown field", `{"routing_key":"k","event_action":"resolve","dedup_key":"d","extra":1}`, false},
		{"unknown payload field", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"src","severity":"info","x":1}}`, false},
		{"long dedup key", `{"routing_key":"k","event_action":"resolve","dedup_key":"` + long + `"}`, false},
		{"trigger without payload", `{"routing_key":"k","event_action":"trigger"}`, false},
		{"bad severity", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"src","severity":"high"}}`, false},
		{"no source", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","severity":"info"}}`, false},
		{"long summary", `{"routing_key":"k","event_action":"trigger","payload":{"summary":"` + strings.Repeat("y", 1025) + `","source":"s","severity":"info"}}`, false},
		{"link without href", `{"routing_key":"k","event_action":"resolve","dedup_key":"d","links":[{"text":"t"}]}`, false},
		{"relative link", `{"routing_key":"k","event_action":"resolve","dedup_key":"d","links":[{"href":"/status?check=web"}]}`, false},
		{"relative client_url", `{"routing_key":"k","event_action":"resolve","dedup_key":"d","client":"Outpost","client_url":"status"}`, false},
		{"links and client", `{"routing_key":"k","event_action":"trigger","dedup_key":"d","client":"Outpost","client_url":"https://s.example/status?check=web",` +
			`"links":[{"href":"https://s.example/status?check=web","text":"status"}],"payload":{"summary":"s","source":"eval-a","severity":"error","group":"web"}}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := ValidateEvent([]byte(tc.body))
			if ok := len(problems) == 0; ok != tc.ok {
				t.Errorf("valid = %v (%v), want %v", ok, problems, tc.ok)
			}
		})
	}
}

// TestFakePagerDutyFailKey: one dedup key's events fail, the others pass,
// and the key passes again once cleared.
func TestFakePagerDutyFailKey(t *testing.T) {
	f := NewFakePagerDuty(t)
	f.FailKey("a", http.StatusInternalServerError)
	post := func(key string) int {
		t.Helper()
		body := `{"routing_key":"k","event_action":"resolve","dedup_key":"` + key + `"}`
		resp, err := http.Post(f.URL()+"/v2/enqueue", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("a"); got != http.StatusInternalServerError {
		t.Errorf("failing key: status %d", got)
	}
	if got := post("b"); got != http.StatusAccepted {
		t.Errorf("other key: status %d", got)
	}
	f.FailKey("a", 0)
	if got := post("a"); got != http.StatusAccepted {
		t.Errorf("cleared key: status %d", got)
	}
	if n := len(f.Events()); n != 2 {
		t.Errorf("%d events accepted, want 2", n)
	}
}
