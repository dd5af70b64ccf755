package main

import (
	"fmt"

	"github.com/outposthq/outpost/checks"
)

const validateUsage = `Usage: outpost validate -c FILE [-c FILE ...] [FILE ...]

Loads the configuration (files, or directories of *.yaml files, merged) and
checks it as every Outpost component would: unknown keys, wrong types,
duplicate ids, unknown regions and notifiers, bad URLs and regexes, timeouts
not below intervals, unset ${ENV} variables. Every error is printed, one per
line, as FILE:LINE:COL: check "ID": message.

Exit status: 0 valid, 1 invalid, 2 bad usage.

Flags:
`

func cmdValidate(args []string, e env) int {
	cmd := newCommand("validate", validateUsage, e)
	if code, done := cmd.parse(args); done {
		return code
	}
	files := cmd.files
	cfg, err := checks.Load(files, e.lookup)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		n := len(checks.Errors(err))
		fmt.Fprintf(e.stderr, "%d error(s)\n", n)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "ok: %d check(s), %d region(s), %d notifier(s) in %d file(s)\n",
		len(cfg.Checks), len(cfg.Regions), len(cfg.Notifiers), len(cfg.Files))
	return exitOK
}
