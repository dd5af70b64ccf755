package probes

import (
	"errors"

	"github.com/outposthq/outpost/checks"
)

func newTCP(c *checks.Check, opts Options) (Prober, error) { return nil, errors.New("wip") }
func newTLS(c *checks.Check, opts Options) (Prober, error) { return nil, errors.New("wip") }
