//go:build !race

package alerting

// raceEnabled is whether the race detector is on.
const raceEnabled = false
