package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/outposthq/outpost/checks"
)

const schemaUsage = `Usage: outpost schema

Prints the JSON Schema (draft-07) of an Outpost configuration file, so that
editors can complete and check it and CI can validate it with any JSON
Schema tool. It is generated from the types the loader reads, and is the
same as checks/schema.json in the repository.

The schema rejects unknown keys, values of the wrong type, unknown values
of an enumeration, missing required keys, and a check or notifier with no
type or two. References between checks, notifiers and regions, ranges, and
timeouts below intervals are left to "outpost validate", which remains the
authority.

To use it in an editor with yaml-language-server (VS Code's YAML
extension, Neovim, Helix, ...), put this line at the top of the file:

  # yaml-language-server: $schema=` + checks.SchemaURL + `

or save the output and point at it by path:

  outpost schema > outpost.schema.json
  # yaml-language-server: $schema=./outpost.schema.json

(a path is relative to the YAML file).
`

func cmdSchema(args []string, e env) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), schemaUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "outpost schema: takes no arguments, got %q\n", fs.Args())
		return exitUsage
	}
	if _, err := e.stdout.Write(checks.Schema()); err != nil {
		fmt.Fprintf(e.stderr, "outpost schema: %v\n", err)
		return exitFailed
	}
	return exitOK
}
