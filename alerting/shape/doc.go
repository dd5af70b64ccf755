// Package shape learns what normal looks like for a (check, region) and
// says when it stops looking like it: latency distributions kept as
// DDSketch bin indices by phase, a decayed baseline per slot of the day or
// week, and the detectors (tail shift, slow rise; for series, spike, drop,
// dip and level shift judged by their surprise for the series, and a
// recurring spike forecast), each explaining itself with numbers.
//
// It is pure: now is a parameter, a Tracker has no lock of its own (its
// owner's lock guards it) and nothing here imports net, os or sync.
package shape
