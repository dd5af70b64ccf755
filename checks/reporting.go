package checks

import (
	"time"
)

// Reporting governs how agents ship results to evaluators and how soon an
// evaluator calls a silent region stale. Agents and evaluators read the same
// block, so the two sides cannot disagree.
type Reporting struct {
	// Heartbeat is the longest an agent goes without sending a batch; an
	// empty batch is its liveness signal. Default 10s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// StaleAfter is how long a region may be silent before the evaluator
	// takes it out of every quorum and raises a meta alert. Default three
	// heartbeats.
	StaleAfter time.Duration `yaml:"stale_after"`
	// BatchSize is the most results in one batch. Default 500.
	BatchSize int `yaml:"batch_size"`
	// BatchDelay is the longest a result waits to be batched. Default 1s.
	BatchDelay time.Duration `yaml:"batch_delay"`
	// SpoolSize bounds each evaluator's on-disk spool; when it is full the
	// oldest batches are dropped, counted and logged. Default 256MiB.
	SpoolSize Size `yaml:"spool_size"`
	// LostAfter is how long an agent may fail to reach every evaluator
	// before it pages through its own notifiers. Default 5m.
	LostAfter time.Duration `yaml:"lost_after"`
	Src       Source
}

// Reporting defaults.
const (
	DefaultHeartbeat  = 10 * time.Second
	DefaultBatchSize  = 500
	DefaultBatchDelay = time.Second
	DefaultSpoolSize  = 256 << 20
	maxBatchSize      = 1000 // wire.MaxBatchResults
)

func validateReporting(r *Reporting, errs *errorList) {
	add := func(key, format string, args ...any) { errs.add(r.Src.At(key), "", "reporting."+format, args...) }
	if r.Heartbeat == 0 {
		r.Heartbeat = DefaultHeartbeat
	} else if r.Heartbeat < 100*time.Millisecond {
		add("heartbeat", "heartbeat %s is below the minimum of 100ms", r.Heartbeat)
	}
	if r.StaleAfter == 0 {
		r.StaleAfter = 3 * r.Heartbeat
	} else if r.StaleAfter <= r.Heartbeat {
		add("stale_after", "stale_after %s must be longer than heartbeat %s, or every region would flap stale", r.StaleAfter, r.Heartbeat)
	}
	if !r.Src.Has("batch_size") {
		r.BatchSize = DefaultBatchSize
	} else if r.BatchSize < 1 || r.BatchSize > maxBatchSize {
		add("batch_size", "batch_size %d must be between 1 and %d", r.BatchSize, maxBatchSize)
	}
	if r.BatchDelay == 0 {
		r.BatchDelay = min(DefaultBatchDelay, r.Heartbeat)
	} else if r.BatchDelay > r.Heartbeat {
		add("batch_delay", "batch_delay %s must not exceed heartbeat %s", r.BatchDelay, r.Heartbeat)
	}
	if r.LostAfter == 0 {
		r.LostAfter = max(5*time.Minute, 2*r.StaleAfter)
	} else if r.LostAfter <= r.Heartbeat {
		add("lost_after", "lost_after %s must be longer than heartbeat %s", r.LostAfter, r.Heartbeat)
	}
	if !r.Src.Has("spool_size") {
		r.SpoolSize = DefaultSpoolSize
	} else if r.SpoolSize < 1<<20 {
		add("spool_size", "spool_size must be at least 1MiB")
	}
}

// Meta governs the pages about monitoring itself: regions gone silent and
// checks too few regions can judge.
type Meta struct {
	// For is how long a region must stay STALE, or a check UNKNOWN, before
	// the meta page goes out: a blip shorter than it pages nobody. Default
	// two heartbeats.
	For time.Duration `yaml:"for"`
	Src Source
}

// maxMetaFor bounds meta.for: monitoring blind for longer, unpaged, is
// not a setting.
const maxMetaFor = time.Hour

func validateMeta(m *Meta, r *Reporting, errs *errorList) {
	switch {
	case !m.Src.Has("for"):
		m.For = 2 * r.Heartbeat
	case m.For < 0 || m.For > maxMetaFor:
		errs.add(m.Src.At("for"), "", "meta.for: %s must be between 0 and %s", m.For, maxMetaFor)
	}
}
