package main

import (
	"context"
	"errors"
	"io"
)

func ingestCmd(ctx context.Context, args []string, out io.Writer) error {
	return errors.New("not yet")
}
