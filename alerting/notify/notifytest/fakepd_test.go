package notifytest

import (
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
