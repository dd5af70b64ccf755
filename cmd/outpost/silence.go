package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outposthq/outpost/alerting/silence"
)

const silenceUsage = `Usage:
  outpost silence add    --url URL --for DURATION|--until TIME --comment TEXT [--author NAME] MATCHER...
  outpost silence list   --url URL
  outpost silence expire --url URL ID

Silences hold back the pages of the checks they match, as a maintenance
window does, without a change to the configuration or a restart: for an
outage already being handled, or work nobody planned ahead. They are made
on one evaluator, which passes them to its peers, and kept across restarts.

A MATCHER is NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, where
NAME is "check" (the check's id), "region" (every region involved must
match) or a label of the check (service=shop). Every matcher must match.

  outpost silence add --url https://outpost.example.com --for 2h \
      --comment "db failover, INC-123" check=checkout region=eu-west
  outpost silence list --url https://outpost.example.com
  outpost silence expire --url https://outpost.example.com 3f2a...

The token is the evaluator's api.token, read from $OUTPOST_API_TOKEN (or
the variable --token-env names); it is never taken on the command line,
where other users could read it.

Flags:
`

// silenceTimeout bounds every request to the evaluator.
const silenceTimeout = 10 * time.Second

func cmdSilence(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("silence", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), silenceUsage); fs.PrintDefaults() }
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return exitOK
		}
		fmt.Fprint(e.stderr, silenceUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	url := fs.String("url", "", "the evaluator's base `URL` (http://127.0.0.1:9797); required")
	tokenEnv := fs.String("token-env", "OUTPOST_API_TOKEN", "the environment `variable` holding api.token")
	dur := fs.Duration("for", 0, "add: how long the silence lasts from its start (2h, 30m)")
	until := fs.String("until", "", "add: when it ends, RFC 3339 (2030-01-02T15:04:05Z); instead of --for")
	start := fs.String("start", "", "add: when it starts, RFC 3339; default now")
	comment := fs.String("comment", "", "add: why; required")
	user, _ := e.lookup("USER")
	author := fs.String("author", user, "add: who (default $USER)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "outpost silence %s: "+format+"\n", append([]any{sub}, a...)...)
		return exitUsage
	}
	if *url == "" {
		return fail("--url is required")
	}
	token, ok := e.lookup(*tokenEnv)
	if !ok || token == "" {
		return fail("$%s is not set: it must hold the evaluator's api.token", *tokenEnv)
	}
	c := &silenceClient{base: strings.TrimRight(*url, "/"), token: token, http: &http.Client{Timeout: silenceTimeout}}
	switch sub {
	case "add":
		s := silence.Silence{Comment: *comment, CreatedBy: *author}
		for _, arg := range fs.Args() {
			m, err := parseMatcher(arg)
			if err != nil {
				return fail("%v", err)
			}
			s.Matchers = append(s.Matchers, m)
		}
		now := time.Now()
		if *start != "" {
			t, err := time.Parse(time.RFC3339, *start)
			if err != nil {
				return fail("--start: %v", err)
			}
			s.StartsAt = t
		}
		switch {
		case *until != "" && *dur != 0:
			return fail("give --for or --until, not both")
		case *until != "":
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return fail("--until: %v", err)
			}
			s.EndsAt = t
		case *dur > 0:
			s.EndsAt = now.Add(*dur)
			if !s.StartsAt.IsZero() {
				s.EndsAt = s.StartsAt.Add(*dur)
			}
		default:
			return fail("--for or --until is required")
		}
		var out struct {
			SilenceID string `json:"silenceID"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/v1/silences", s, &out); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(e.stdout, out.SilenceID)
	case "list":
		var list []struct {
			silence.Silence
			Status struct{ State string } `json:"status"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/v1/silences", nil, &list); err != nil {
			return fail("%v", err)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tENDS\tBY\tMATCHERS\tCOMMENT")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status.State, s.EndsAt.UTC().Format(time.RFC3339), s.CreatedBy, matchersText(s.Matchers), s.Comment)
		}
		tw.Flush()
	case "expire":
		if fs.NArg() != 1 || !silence.ValidID(fs.Arg(0)) {
			return fail("give one silence ID (32 hexadecimal digits, from outpost silence list)")
		}
		if err := c.do(ctx, http.MethodDelete, "/api/v1/silence/"+fs.Arg(0), nil, nil); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(e.stdout, "expired", fs.Arg(0))
	default:
		fmt.Fprintf(e.stderr, "outpost silence: unknown subcommand %q (add, list, expire)\n", sub)
		return exitUsage
	}
	return exitOK
}

// parseMatcher reads NAME=VALUE, NAME!=VALUE, NAME=~RE or NAME!~RE.
func parseMatcher(s string) (silence.Matcher, error) {
	for _, op := range []string{"!~", "=~", "!=", "="} {
		name, value, ok := strings.Cut(s, op)
		if !ok || name == "" {
			continue
		}
		m := silence.Matcher{Name: name, Value: value, IsRegex: strings.HasSuffix(op, "~")}
		if strings.HasPrefix(op, "!") {
			f := false
			m.IsEqual = &f
		}
		return m, nil
	}
	return silence.Matcher{}, fmt.Errorf("matcher %q: want NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX", s)
}

func matchersText(ms []silence.Matcher) string {
	s := silence.Silence{ID: "", Matchers: ms}
	text := s.String()
	i, j := strings.Index(text, "{"), strings.Index(text, "}")
	if i < 0 || j < i {
		return ""
	}
	return text[i+1 : j]
}

// silenceClient calls an evaluator's silence API.
type silenceClient struct {
	base, token string
	http        *http.Client
}

// do sends in as JSON (nil: no body) and decodes the answer into out (nil:
// none); an answer other than 200 is an error with the evaluator's words.
func (c *silenceClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data[:min(len(data), 1024)])))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
