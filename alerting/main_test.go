package alerting

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// liveness loop, notifiers and HTTP servers must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
