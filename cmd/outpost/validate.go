package main

import (
	"errors"
	"flag"
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
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var files configFlag
	fs.Var(&files, "c", "configuration `file` or directory; repeatable, or comma-separated")
	fs.Var(&files, "config", "same as -c")
	fs.Usage = func() { fmt.Fprint(fs.Output(), validateUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		fmt.Fprintln(e.stderr, "outpost validate: no configuration given; use -c FILE")
		return exitUsage
	}
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
