// Package notify is what every part that pages shares: the Notification
// and its evidence, the Notifier interface (one attempt, retry or not), the
// notification kinds, actions, routes and severities, the bounds on what a
// notification carries, and the HTTP helpers the receivers use to post,
// classify answers and keep secrets out of errors.
//
// The receivers live in packages of their own below it (pagerduty, slack,
// webhook, console), which never import each other; receivers is the one
// package that knows them all. notify itself imports only checks,
// probes/wire and probes/clock of Outpost's, never a receiver or the
// evaluator.
package notify
