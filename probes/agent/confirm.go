package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/outposthq/outpost/probes/clock"
	"github.com/outposthq/outpost/probes/wire"
)

// ConfirmPoller holds a long-poll open to every evaluator and runs the
// checks an evaluator asks for at once: when another region has just seen a
// check fail, this region's second opinion arrives within one probe timeout
// instead of at its next interval.
type ConfirmPoller struct {
	// Evaluators are the evaluators' base URLs, as for the Reporter.
	Evaluators []string
	Key        []byte
	Region     string
	Agent      string
	// RunNow runs the requested checks of this region now, each as many
	// times back to back as the request says (Scheduler.RunNow with JobKey
	// and ConfirmRequest.RunsOf).
	RunNow func(req wire.ConfirmRequest)
	// Clock drives signing times and backoff; nil means clock.Real.
	Clock clock.Clock
	// HTTPClient makes the polls; nil means one whose timeout covers the
	// evaluator's 20s hold.
	HTTPClient *http.Client
	// TLS configures the default client's HTTPS (see ReporterOptions.TLS);
	// unused with an HTTPClient.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Run polls every evaluator until ctx ends.
func (p *ConfirmPoller) Run(ctx context.Context) {
	if p.Clock == nil {
		p.Clock = clock.Real{}
	}
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 45 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if p.TLS != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = p.TLS
			p.HTTPClient.Transport = t
		}
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan struct{})
	for _, u := range p.Evaluators {
		go func() {
			defer func() { done <- struct{}{} }()
			p.poll(ctx, strings.TrimRight(u, "/"))
		}()
	}
	for range p.Evaluators {
		<-done
	}
}

func (p *ConfirmPoller) poll(ctx context.Context, base string) {
	failures := 0
	var lastLogged time.Time
	for ctx.Err() == nil {
		req, err := p.once(ctx, base)
		if err == nil {
			failures = 0
			if len(req.Checks) > 0 {
				p.RunNow(req)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		if now := p.Clock.Now(); now.Sub(lastLogged) >= time.Minute {
			p.Logger.Warn("confirmation poll failed; retrying with backoff", "evaluator", base, "err", err, "failures", failures)
			lastLogged = now
		}
		// Full jitter, 1s doubling to 1m: an evaluator that is down is
		// not hammered by every agent at once.
		wait := time.Duration(rand.Int64N(int64(min(time.Minute, time.Second<<min(failures, 6)))))
		t := p.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// once makes one long-poll and returns the checks to run (none when the
// evaluator had nothing to ask).
func (p *ConfirmPoller) once(ctx context.Context, base string) (wire.ConfirmRequest, error) {
	var none wire.ConfirmRequest
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.ConfirmPath, nil)
	if err != nil {
		return none, err
	}
	ts, sig := wire.Sign(p.Key, p.Clock.Now(), wire.ConfirmPayload(p.Region, p.Agent))
	req.Header.Set(wire.HeaderRegion, p.Region)
	req.Header.Set(wire.HeaderAgent, p.Agent)
	req.Header.Set(wire.HeaderTimestamp, ts)
	req.Header.Set(wire.HeaderSignature, sig)
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return none, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return none, err
	}
	switch resp.StatusCode {
	case http.StatusNoContent:
		return none, nil
	case http.StatusOK:
		var cr wire.ConfirmRequest
		if err := json.Unmarshal(body, &cr); err != nil {
			return none, fmt.Errorf("confirmation request: %w", err)
		}
		return cr, nil
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return none, errors.New("the evaluator does not offer confirmations (an older version?)")
	}
	return none, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
}
