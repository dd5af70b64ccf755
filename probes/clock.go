package probes

import "github.com/outposthq/outpost/probes/clock"

// Clock is the time source of scheduling, reporting and decisions; see
// package clock. Tests pass clocktest.Fake.
type Clock = clock.Clock

// Timer is the part of *time.Timer that Clock users need.
type Timer = clock.Timer

// RealClock is the wall clock.
type RealClock = clock.Real
