package main

import (
	"fmt"
	"slices"

	"github.com/outposthq/outpost/checks"
)

const validateUsage = `Usage: outpost validate -c FILE [-c FILE ...] [--only ID] [FILE ...]

Loads the configuration (files, or directories of *.yaml files, merged) and
checks it as every Outpost component would: unknown keys, wrong types,
duplicate ids, unknown regions and notifiers, bad URLs and regexes, timeouts
not below intervals, unset ${ENV} variables. Every error is printed, one per
line, as FILE:LINE:COL: check "ID": message. Warnings (such as an agents:
entry without a name) are printed as "warning: FILE:LINE:COL: message" and
do not change the exit status.

With --only, the whole configuration is still checked, but of the secrets
only those the named checks use must be set: what "outpost check --only"
needs, so a check can be validated where only its credentials are.

Exit status: 0 valid, 1 invalid, 2 bad usage.

Flags:
`

func cmdValidate(args []string, e env) int {
	cmd := newCommand("validate", validateUsage, e)
	var only configFlag
	cmd.fs.Var(&only, "only", "require only the secrets of the check with this `id`; repeatable, or comma-separated")
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	needs := checks.AllSecrets()
	if len(only) > 0 {
		needs = checks.Needs{Checks: func(c *checks.Check) bool { return slices.Contains(only, c.ID) }}
	}
	cfg, err := checks.LoadFor(files, e.lookup, needs)
	if err == nil && len(only) > 0 {
		if _, _, serr := selectChecks(cfg, only, ""); serr != nil {
			fmt.Fprintf(e.stderr, "outpost validate: %v\n", serr)
			return exitUsage
		}
	}
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		n := len(checks.Errors(err))
		fmt.Fprintf(e.stderr, "%d error(s)\n", n)
		return exitFailed
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	fmt.Fprintf(e.stdout, "ok: %d check(s), %d region(s), %d notifier(s) in %d file(s)\n",
		len(cfg.Checks), len(cfg.Regions), len(cfg.Notifiers), len(cfg.Files))
	return exitOK
}
