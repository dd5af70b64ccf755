package agent

import (
	"testing"
	"time"

	"github.com/outposthq/outpost/probes/clock/clocktest"
)

// fakeClock adapts clocktest.Fake to the helpers this package's tests use.
type fakeClock struct{ *clocktest.Fake }

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{clocktest.New(start)} }

// waitCreated blocks until n timers have been created in all: how a test
// knows the loop under test has parked again.
func (f *fakeClock) waitCreated(t *testing.T, n int) { f.WaitTimersCreated(t, n, 10*time.Second) }
