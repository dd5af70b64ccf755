package notifytest

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/outposthq/outpost/alerting/notify"
)

// Recorder is a notify.Notifier that records what it delivers and answers
// from a script: FailNext makes the next calls fail. The zero value
// delivers everything. It is safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	got []notify.Notification
	// script holds the answers to the next calls; when empty, success.
	script []scripted
	calls  int
}

type scripted struct {
	retry bool
	err   error
}

var _ notify.Notifier = (*Recorder)(nil)

// Notify records n, or fails as the script says.
func (r *Recorder) Notify(_ context.Context, n notify.Notification) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.script) > 0 {
		s := r.script[0]
		r.script = r.script[1:]
		if s.err != nil {
			return s.retry, s.err
		}
	}
	r.got = append(r.got, n)
	return false, nil
}

// FailNext makes the next n calls fail, retryable or not.
func (r *Recorder) FailNext(n int, retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.script = append(r.script, scripted{retry: retry, err: errors.New("scripted failure")})
	}
}

// Delivered returns the notifications delivered so far, in order.
func (r *Recorder) Delivered() []notify.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Notification(nil), r.got...)
}

// Calls returns how many times Notify was called, failed calls included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Summaries lists "action key summary" for each notification, one a line:
// what a failing test prints.
func Summaries(ns []notify.Notification) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Action+" "+n.Key+" "+n.Summary)
	}
	return strings.Join(out, "\n")
}
