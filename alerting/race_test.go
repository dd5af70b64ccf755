//go:build race

package alerting

// raceEnabled is whether the race detector is on: it makes loading
// 50,000 windows take close to a minute on a loaded machine.
const raceEnabled = true
