package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

// TestDispatch: every mode answers -h without running, and bad modes and
// flags are usage errors.
func TestDispatch(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"help", "storm"}, {"agent", "-h"}, {"storm", "-h"}, {"ingest", "-h"}, {"nab", "-h"}, {"help", "nab"}} {
		if err := dispatch(ctx, args, io.Discard); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%v: %v, want flag.ErrHelp", args, err)
		}
	}
	for _, args := range [][]string{{"nonsense"}, {"storm", "-no-such-flag"}, {"storm", "extra"}, {"nab"}, {"nab", "-data"}} {
		if err := dispatch(ctx, args, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want errUsage", args, err)
		}
	}
}
