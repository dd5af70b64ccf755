// Package checks is Outpost's configuration: the YAML schema shared by agents
// and evaluators, its defaults, and strict loading with FILE:LINE:COL errors
// and ${ENV} expansion.
//
// Load (or LoadBytes) reads, merges, defaults and validates configuration
// files into a Config, and reports every problem it finds at once. Each check
// type is parsed into its own spec (HTTPSpec, DNSSpec, ...), whose file also
// holds its validator.
//
// The package is the bottom of Outpost's import graph: it imports the
// standard library and gopkg.in/yaml.v3 only, and nothing of ours, so that
// probes, alerting and cmd can all depend on it without a cycle.
package checks
