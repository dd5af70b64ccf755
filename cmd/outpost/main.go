// Command outpost is Outpost's one binary: it validates configurations, runs
// checks once from the command line, and runs agents, evaluators, or both
// in one process ("outpost run").
//
// It holds flags and wiring only: it may import every package of Outpost's,
// and is the one place where the agent side (probes/...) and the evaluator
// (alerting) meet. Nothing imports it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/common/promslog"
	promversion "github.com/prometheus/common/version"

	"github.com/outposthq/outpost/checks"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// the Makefile stamps github.com/prometheus/common/version instead (with
// the revision and build date too), which this overrides when set.
var version = ""

// Exit codes shared by every command.
const (
	exitOK     = 0
	exitFailed = 1 // invalid config (validate) or failing checks (check)
	exitUsage  = 2 // bad flags or a config that cannot be loaded
)

const usage = `Outpost: external synthetic monitoring that pages only when regions agree.

Usage:
  outpost <command> [flags]

Commands:
  validate   check configuration files and report every error as FILE:LINE:COL
  check      run every check once from here and print what passed and why not
  run        an evaluator and a local agent in one process: the quick start
  agent      run a region's checks and ship signed results to evaluators
  evaluator  receive results from agents, watch region liveness, serve status
  silence    add, list or expire silences on an evaluator (ad-hoc maintenance)
  schema     print the configuration's JSON Schema, for editors and CI
  version    print the version
  help       show help for a command: outpost help check

Configuration is YAML; see README.md and docs/config.md. Secrets are written
as ${ENV_VAR} references and never printed.
`

// env is what a command needs from its process, injected for tests.
type env struct {
	stdout, stderr io.Writer
	lookup         checks.LookupEnv
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookup: os.LookupEnv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "validate":
		return cmdValidate(rest, e)
	case "check":
		return cmdCheck(ctx, rest, e)
	case "schema":
		return cmdSchema(rest, e)
	case "silence":
		return cmdSilence(ctx, rest, e)
	case "version", "--version", "-version":
		fmt.Fprintln(e.stdout, versionText())
		return exitOK
	case "help", "-h", "--help", "-help":
		if len(rest) > 0 && rest[0] != "help" {
			return run(ctx, []string{rest[0], "--help"}, e)
		}
		fmt.Fprint(e.stdout, usage)
		return exitOK
	case "run":
		return cmdRun(ctx, rest, e)
	case "agent":
		return cmdAgent(ctx, rest, e)
	case "evaluator":
		return cmdEvaluator(ctx, rest, e)
	}
	fmt.Fprintf(e.stderr, "outpost: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// stampVersion fills github.com/prometheus/common/version, which
// outpost_build_info and "outpost version" read, from what the build
// stamped: the Makefile's -ldflags, else main.version, else the module
// version and VCS data the go tool records.
func stampVersion() {
	if version != "" {
		promversion.Version = version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if promversion.Version == "" {
		promversion.Version = "dev"
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			promversion.Version = v
		}
	}
	for _, kv := range bi.Settings {
		switch {
		case kv.Key == "vcs.revision" && promversion.Revision == "":
			promversion.Revision = kv.Value
		case kv.Key == "vcs.time" && promversion.BuildDate == "":
			promversion.BuildDate = kv.Value
		}
	}
}

// versionText is what "outpost version" prints: version, revision, build
// date, Go version and platform.
func versionText() string {
	stampVersion()
	return promversion.Print("outpost")
}

// command is one subcommand's flag set, with the -c files every command
// takes.
type command struct {
	name      string
	fs        *flag.FlagSet
	files     configFlag
	e         env
	logLevel  *promslog.Level
	logFormat *promslog.Format
}

func newCommand(name, usage string, e env) *command {
	c := &command{name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError), e: e, logLevel: promslog.NewLevel(), logFormat: promslog.NewFormat()}
	c.fs.SetOutput(e.stderr)
	c.fs.Var(&c.files, "c", "configuration `file` or directory; repeatable, or comma-separated")
	c.fs.Var(&c.files, "config", "same as -c")
	_ = c.logFormat.Set("logfmt")
	c.fs.Var(levelFlag{c.logLevel}, "log.level", "log only at this `level` and above: debug, info, warn or error")
	c.fs.Var(c.logFormat, "log.format", "log `format`: logfmt or json")
	c.fs.Usage = func() { fmt.Fprint(c.fs.Output(), usage); c.fs.PrintDefaults() }
	return c
}

// levelFlag is promslog.Level as a flag.Value whose zero value prints, so
// that --help can tell the default apart.
type levelFlag struct{ l *promslog.Level }

func (f levelFlag) String() string {
	if f.l == nil {
		return ""
	}
	return f.l.String()
}

func (f levelFlag) Set(s string) error { return f.l.Set(s) }

// logger is the command's logger on stderr, as --log.level and
// --log.format say (the Prometheus ecosystem's conventions).
func (c *command) logger() *slog.Logger {
	return promslog.New(&promslog.Config{Level: c.logLevel, Format: c.logFormat, Writer: c.e.stderr})
}

// parse parses args, taking positional arguments as more files. When done
// is true the command must exit with code: help was shown, or the flags
// or files are wrong (and said so).
func (c *command) parse(args []string) (code int, done bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	c.files = append(c.files, c.fs.Args()...)
	if len(c.files) == 0 {
		fmt.Fprintf(c.e.stderr, "outpost %s: no configuration given; use -c FILE\n", c.name)
		return exitUsage, true
	}
	return exitOK, false
}

// configFlag collects -c values; each may also be a comma-separated list.
type configFlag []string

func (c *configFlag) String() string { return strings.Join(*c, ",") }

func (c *configFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*c = append(*c, p)
		}
	}
	return nil
}
