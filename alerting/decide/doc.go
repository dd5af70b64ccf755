// Package decide is the evaluator's judgement, as pure functions of their
// inputs with now as a parameter: whether a region is failing a check
// (RegionHealth), whether a region is live (StepLiveness), the verdict
// across regions under the quorum (Decide), what regions disagree about
// (CompareDNS, CompareAddresses), and the incident lifecycle with its
// dedup keys (Step, IncidentState, Event, DedupKey).
//
// It imports no net, os or sync, holds no state between calls and does no
// I/O: the evaluator owns the state, the locks and the side effects.
package decide
