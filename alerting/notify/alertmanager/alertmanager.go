// Package alertmanager is the Alertmanager receiver: Outpost's incidents
// posted as alerts to Alertmanager's API v2 (POST /api/v2/alerts) of
// every configured Alertmanager, as Prometheus does, so that teams who
// route, group, inhibit and silence with Alertmanager get Outpost's
// alerts there. It imports notify, never another receiver.
//
// Alertmanager resolves an alert whose endsAt passes without an update,
// so a firing alert is posted again every resend interval with endsAt =
// now + 4 × resend, as Prometheus does; the outbox delivers each
// notification once, so the notifier keeps its firing alerts (bounded,
// by dedup key) and re-posts them itself until their resolve. It keeps
// them in memory only: see Notifier for what a restart costs.
package alertmanager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/clock"
)

// MaxFiring bounds the firing alerts a notifier re-sends. Beyond it a new
// incident's alert is still posted once, and Alertmanager resolves it
// after 4 × resend unless its incident is updated.
const MaxFiring = 10000

// maxBatch bounds the alerts of one POST.
const maxBatch = 500

// Bounds of the look-up of alerts fired before a restart: the keys asked
// about per notification (past them, an alert ends at its own endsAt) and
// the answer read.
const (
	maxLookups     = 32
	maxLookupBytes = 4 << 20
)

// Env is what the notifier takes from the configuration beyond its own
// block. Every field is optional.
type Env struct {
	// Labels returns a check's labels (its labels: key), sent as labels
	// of its alerts.
	Labels func(check string) map[string]string
	// Log receives the failures of re-sends, which no caller sees.
	Log *slog.Logger
}

// Notifier posts alerts to every Alertmanager of its configuration. A
// notification is delivered when at least one Alertmanager accepted it
// (as Prometheus does); the others get it at the next re-send.
//
// The firing alerts live in memory. After a restart or a reload, an
// incident still open is posted again only once the notifier is sent
// another trigger for it: when the incident changes, or as a reminder
// (the notifier's repeat:, which the outbox keeps across restarts; below
// 4 × resend it keeps the alert from lapsing). Until then Alertmanager
// shows it resolved from its last endsAt. Persisting the alerts would keep
// alive alerts whose incidents the evaluator no longer has; see
// docs/config.md.
type Notifier struct {
	urls      []string
	header    http.Header
	resend    time.Duration
	client    *http.Client
	clock     clock.Clock
	timeout   time.Duration
	redact    func(string) string
	transport http.RoundTripper
	env       Env

	// send orders the posts: a re-send that took its alerts before a
	// resolve must not reach Alertmanager after it and fire the alert
	// again. It is held across a post, bounded by the timeout; mu never
	// is.
	send sync.Mutex

	mu      sync.Mutex
	firing  map[string]postableAlert // by dedup key
	running bool                     // the re-send loop runs
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New returns a notifier for cfg. The re-send loop runs while alerts
// fire; CloseIdleConnections stops it.
func New(cfg *checks.AlertmanagerNotifier, opts notify.Options, env Env) (*Notifier, error) {
	if cfg == nil || len(cfg.URLs) == 0 {
		return nil, errors.New("alertmanager: urls is required")
	}
	opts = opts.WithDefaults()
	if cfg.Timeout > 0 {
		opts.Timeout = cfg.Timeout
	}
	var secrets []string
	var urls []string
	for _, raw := range cfg.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("alertmanager: a url is not an http(s) URL")
		}
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p, u.User.String())
		}
		secrets = append(secrets, u.RawQuery)
		urls = append(urls, strings.TrimSuffix(raw, "/")+"/api/v2/alerts")
	}
	h := http.Header{}
	switch {
	case cfg.BasicAuth != nil:
		pass := cfg.BasicAuth.Password.Value()
		cred := base64.StdEncoding.EncodeToString([]byte(cfg.BasicAuth.Username + ":" + pass))
		h.Set("Authorization", "Basic "+cred)
		secrets = append(secrets, pass, cred)
	case !cfg.BearerToken.IsZero():
		h.Set("Authorization", "Bearer "+cfg.BearerToken.Value())
		secrets = append(secrets, cfg.BearerToken.Value())
	}
	resend := cfg.Resend
	if resend <= 0 {
		resend = checks.DefaultAlertmanagerResend
	}
	if env.Log == nil {
		env.Log = slog.Default()
	}
	return &Notifier{
		urls:      urls,
		header:    h,
		resend:    resend,
		client:    notify.NewHTTPClient(opts),
		clock:     opts.Clock,
		timeout:   opts.Timeout,
		redact:    opts.Redactor(notify.NonTrivial(secrets)...),
		transport: opts.Transport,
		env:       env,
		firing:    map[string]postableAlert{},
		stop:      make(chan struct{}),
	}, nil
}

// CloseIdleConnections stops the re-send loop and closes the notifier's
// idle connections; the outbox's Close calls it. Notify still delivers
// afterwards, without re-sends.
func (a *Notifier) CloseIdleConnections() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.stop)
	}
	a.mu.Unlock()
	a.wg.Wait()
	notify.CloseIdle(a.transport)
}

// Firing returns how many alerts the notifier re-sends.
func (a *Notifier) Firing() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.firing)
}

// Notify posts the alerts n stands for: firing ones with endsAt = now +
// 4 × resend, resolved ones with endsAt = now. A firing alert is then
// re-sent until its resolve.
func (a *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	a.send.Lock()
	defer a.send.Unlock()
	now := a.clock.Now().UTC()
	var alerts []postableAlert
	var lookup []string // resolves of alerts this notifier does not hold
	type change struct {
		key    string
		alert  postableAlert
		firing bool
	}
	var changes []change
	a.mu.Lock()
	for _, o := range split(n) {
		var labels map[string]string
		if a.env.Labels != nil && o.check != "" {
			labels = a.env.Labels(o.check)
		}
		al := alertFor(n, o, labels)
		prev, held := a.firing[o.key]
		switch {
		case n.Action == "" && len(n.Members) == 0:
			// A notice: shown until it expires, never re-sent.
			al.StartsAt, al.EndsAt = now, now.Add(4*a.resend)
			alerts = append(alerts, al)
		case o.firing:
			al.StartsAt = n.Time.UTC()
			if held {
				al.StartsAt = prev.StartsAt
				if !sameLabels(prev.Labels, al.Labels) {
					// The failing regions changed: end the alert
					// of the old set, the new one takes over.
					prev.EndsAt = now
					alerts = append(alerts, prev)
				}
			}
			if al.StartsAt.IsZero() || al.StartsAt.After(now) {
				al.StartsAt = now
			}
			al.EndsAt = now.Add(4 * a.resend)
			alerts = append(alerts, al)
			changes = append(changes, change{o.key, al, true})
		default:
			if held {
				al = prev
			} else {
				al.StartsAt = openedAt(n, now)
				if len(lookup) < maxLookups {
					lookup = append(lookup, o.key)
				}
			}
			al.EndsAt = now
			alerts = append(alerts, al)
			changes = append(changes, change{key: o.key})
		}
	}
	a.mu.Unlock()

	if len(lookup) > 0 {
		// Resolves of alerts fired before a restart: their failing
		// regions are unknown here, so ask the Alertmanagers which
		// label sets they hold under the key.
		alerts = append(alerts, a.held(ctx, lookup, now)...)
	}
	retry, err := a.postAll(ctx, alerts)
	if err != nil {
		return retry, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range changes {
		if !c.firing {
			delete(a.firing, c.key)
			continue
		}
		if _, held := a.firing[c.key]; held || len(a.firing) < MaxFiring {
			a.firing[c.key] = c.alert
		}
	}
	if len(a.firing) > 0 && !a.running && !a.closed {
		a.running = true
		a.wg.Add(1)
		go a.loop()
	}
	return false, nil
}

// openedAt is when a resolved incident opened, as its resolve says.
func openedAt(n notify.Notification, now time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, n.Details["opened_at"]); err == nil && !t.After(now) {
		return t.UTC()
	}
	if !n.Time.IsZero() && !n.Time.After(now) {
		return n.Time.UTC()
	}
	return now
}

// postAll posts alerts to every Alertmanager at once. It succeeds when
// one of them took every batch; otherwise the errors are joined, and
// worth a retry when one of them is.
func (a *Notifier) postAll(ctx context.Context, alerts []postableAlert) (bool, error) {
	if len(alerts) == 0 {
		return false, nil
	}
	var bodies [][]byte
	for i := 0; i < len(alerts); i += maxBatch {
		b, err := json.Marshal(alerts[i:min(i+maxBatch, len(alerts))])
		if err != nil {
			return false, fmt.Errorf("alertmanager: encoding alerts: %w", err)
		}
		bodies = append(bodies, b)
	}
	type result struct {
		retry bool
		err   error
	}
	results := make([]result, len(a.urls))
	var wg sync.WaitGroup
	for i, u := range a.urls {
		wg.Go(func() {
			for _, b := range bodies {
				if retry, err := a.post(ctx, u, b); err != nil {
					results[i] = result{retry, err}
					return
				}
			}
		})
	}
	wg.Wait()
	var errs []error
	retry := false
	for _, r := range results {
		if r.err == nil {
			return false, nil
		}
		errs = append(errs, r.err)
		retry = retry || r.retry
	}
	return retry, errors.Join(errs...)
}

func (a *Notifier) post(ctx context.Context, target string, body []byte) (bool, error) {
	ans, err := notify.Post(ctx, a.client, target, body, a.header.Clone())
	if err != nil {
		return notify.Failed("alertmanager", err, a.redact)
	}
	if ans.Status/100 != 2 {
		return notify.StatusError("alertmanager", ans, "", a.redact)
	}
	return false, nil
}

// gettableAlert is what GET /api/v2/alerts returns of an alert, as far
// as the notifier needs it.
type gettableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// held returns, ended at now, the alerts the Alertmanagers hold under
// keys. A failure to ask is not an error: the alert then ends at its own
// endsAt, at most 4 × resend after the last post.
func (a *Notifier) held(ctx context.Context, keys []string, now time.Time) []postableAlert {
	var out []postableAlert
	seen := map[string]bool{}
	for _, u := range a.urls {
		for _, key := range keys {
			q := url.Values{"filter": {fmt.Sprintf("%s=%q", LabelKey, key)}, "active": {"true"}, "silenced": {"true"}, "inhibited": {"true"}, "unprocessed": {"true"}}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+q.Encode(), nil)
			if err != nil {
				continue
			}
			for k, v := range a.header {
				req.Header[k] = v
			}
			resp, err := a.client.Do(req)
			if err != nil {
				continue
			}
			var got []gettableAlert
			if resp.StatusCode == http.StatusOK {
				_ = json.NewDecoder(io.LimitReader(resp.Body, maxLookupBytes)).Decode(&got)
			}
			resp.Body.Close()
			for _, g := range got {
				id := fmt.Sprint(g.Labels)
				if seen[id] || g.Labels[LabelKey] != key {
					continue
				}
				seen[id] = true
				start := g.StartsAt
				if start.IsZero() || start.After(now) {
					start = now
				}
				out = append(out, postableAlert{Labels: g.Labels, Annotations: g.Annotations, StartsAt: start, EndsAt: now, GeneratorURL: g.GeneratorURL})
			}
		}
	}
	return out
}
