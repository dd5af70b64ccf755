// Package agent runs checks on an agent and ships their results: the
// Scheduler that runs jobs on time with bounded concurrency, Jobs that
// turns a configuration into scheduler jobs, the Reporter that seals
// results into signed batches, spools them on disk and delivers them to
// every evaluator, the ConfirmPoller that runs at once the checks an
// evaluator asks about, the agent's Prometheus Metrics, Local, the
// in-process reporter of "outpost run", and WatchEvaluators, which pages
// through a Pager when no evaluator answers.
//
// It builds on the probers (probes), the wire contract (probes/wire), the
// clock (probes/clock) and the configuration (checks). It never imports
// alerting: evaluators are reached over HTTP, or in process through the
// Applier interface. Nor may alerting import it; only cmd/outpost wires
// the two together.
package agent
