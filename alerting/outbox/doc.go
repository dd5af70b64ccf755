// Package outbox delivers notifications durably, Alertmanager-style, in
// small stages: routing to the notifiers whose routes take a notification,
// a pure dedup stage, a bbolt outbox that holds every accepted notification
// until it is delivered or refused for good, and one worker per notifier
// with backoff and escalation. Open, Enqueue, Run, Close.
//
// It knows only notify.Notifier, never a receiver, and never imports the
// evaluator.
package outbox
