package alerting

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/checks"
	"github.com/outposthq/outpost/probes/wire"
)

// The evaluator's own faults. When its data dir cannot be written, or its
// outbox cannot record a notification, the fault is the evaluator's, not
// the agents': ingest goes on in memory (regions stay LIVE), /healthz
// answers 503 with what is wrong, outpost_evaluator_fault says which part,
// and the evaluator pages on the meta route under its own name, directly
// to the notifiers if the outbox cannot take the page.

// Fault components, the values of outpost_evaluator_fault's label.
const (
	faultDataDir = "data_dir" // the state store cannot commit
	faultOutbox  = "outbox"   // the outbox cannot record notifications
	faultBus     = "bus"      // results cannot be consumed from the bus
)

var faultComponents = []string{faultDataDir, faultOutbox, faultBus}

// faultClearAfter is how long a fault must stay cleared before its page
// resolves: a disk at its limit frees and fills again by the second.
const faultClearAfter = time.Minute

// Sources of a fault: what noticed it. A component fails while any of
// its sources does.
const (
	sourceCommit = "commit" // the state store's commits
	sourceProbe  = "probe"  // the data dir write check (checkDataDir)
	sourceQueue  = "queue"  // the outbox's enqueue
)

// fault is one component's trouble.
type fault struct {
	since   time.Time         // when it started
	errs    map[string]string // failing source → its latest error, redacted and clipped
	cleared time.Time         // when the last source stopped failing; zero while failing
	paged   bool              // its page was sent and not yet resolved
}

// reason is the fault's errors, one per distinct message.
func (ft *fault) reason() string {
	var msgs []string
	for _, src := range slices.Sorted(maps.Keys(ft.errs)) {
		if m := ft.errs[src]; !slices.Contains(msgs, m) {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return "failing"
	}
	return strings.Join(msgs, "; ")
}

// faults tracks the evaluator's own faults. Its methods are safe for
// concurrent use; the ingest path only takes its mutex on a change.
type faults struct {
	mu     sync.Mutex
	byName map[string]*fault
	gauge  *prometheus.GaugeVec
}

func newFaults(reg prometheus.Registerer) (*faults, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "outpost_evaluator_fault",
		Help: "1 while a part of this evaluator is failing: data_dir (its state cannot be written; ingest goes on in memory) or outbox (notifications cannot be recorded).",
	}, []string{"component"})
	for _, c := range faultComponents {
		g.WithLabelValues(c).Set(0)
	}
	if reg != nil {
		if err := reg.Register(g); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return &faults{byName: map[string]*fault{}, gauge: g}, nil
}

// fail records that source saw component fail with err at now. It
// reports whether this starts a fault (so the caller logs once); failing
// again within faultClearAfter of recovering goes on with the same fault
// and page.
func (f *faults) fail(component, source string, err error, now time.Time) bool {
	msg := wire.Clip(err.Error(), 300)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gauge.WithLabelValues(component).Set(1)
	if ft := f.byName[component]; ft != nil {
		ft.errs[source], ft.cleared = msg, time.Time{}
		return false
	}
	f.byName[component] = &fault{since: now, errs: map[string]string{source: msg}}
	return true
}

// ok records that source saw component work at now. It reports whether
// this ends the fault: no source of it fails any more.
func (f *faults) ok(component, source string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.byName[component]
	if ft == nil || !ft.cleared.IsZero() {
		return false
	}
	if _, failing := ft.errs[source]; !failing {
		return false
	}
	delete(ft.errs, source)
	if len(ft.errs) > 0 {
		return false
	}
	ft.cleared = now
	f.gauge.WithLabelValues(component).Set(0)
	return true
}

// failing reports whether component is failing now.
func (f *faults) failing(component string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.byName[component]
	return ft != nil && ft.cleared.IsZero()
}

// describe says what component's fault is, as a page or /healthz says it.
func describe(component, dataDir string, ft *fault) string {
	switch component {
	case faultDataDir:
		return fmt.Sprintf("cannot write its data dir %s: %s", dataDir, ft.reason())
	case faultBus:
		return "cannot consume results from the bus (NATS), so it hears from no region: " + ft.reason()
	default:
		return "cannot record notifications in its outbox: " + ft.reason()
	}
}

// Health reports what is wrong with this evaluator itself, one clause per
// failing part ("cannot write its data dir /var/lib/outpost: no space left
// on device (since 12:00:05)"), or "" when nothing is. A process serving
// it should answer its health check with a failure: the evaluator keeps
// judging from memory, but what it is told is no longer kept.
func (e *Evaluator) Health() string {
	f := e.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for _, c := range faultComponents {
		if ft := f.byName[c]; ft != nil && ft.cleared.IsZero() {
			parts = append(parts, fmt.Sprintf("%s (since %s)", describe(c, e.dataDir, ft), ft.since.UTC().Format(time.TimeOnly)))
		}
	}
	return strings.Join(parts, "; ")
}

// faultKey is the dedup key of this evaluator's page about component.
func (e *Evaluator) faultKey(component string) string {
	return "outpost:evaluator-fault:" + e.name + ":" + component
}

// pageFaults sends, from the liveness tick, the page of every fault that
// started and the resolve of every fault cleared for faultClearAfter.
func (e *Evaluator) pageFaults(ctx context.Context, now time.Time) {
	name := e.name
	var pages []notify.Notification
	f := e.faults
	f.mu.Lock()
	for _, c := range faultComponents {
		ft := f.byName[c]
		if ft == nil {
			continue
		}
		n := notify.Notification{Kind: notify.KindEvaluatorFault, Key: e.faultKey(c), Route: checks.RouteMeta,
			Severity: notify.SeverityCritical, Time: now,
			Details: map[string]string{"route": checks.RouteMeta, "evaluator": name, "component": c}}
		switch {
		case ft.cleared.IsZero() && !ft.paged:
			ft.paged = true
			n.Action = notify.ActionTrigger
			n.Summary = fmt.Sprintf("evaluator %s %s", name, describe(c, e.dataDir, ft))
			n.Details["since"] = ft.since.UTC().Format(time.RFC3339)
			n.Details["error"] = ft.reason()
		case !ft.cleared.IsZero() && now.Sub(ft.cleared) >= faultClearAfter:
			delete(f.byName, c)
			if !ft.paged {
				continue
			}
			n.Action = notify.ActionResolve
			n.Summary = fmt.Sprintf("evaluator %s %s again (failed from %s to %s)", name, recoveredPhrase(c),
				ft.since.UTC().Format(time.TimeOnly), ft.cleared.UTC().Format(time.TimeOnly))
		default:
			continue
		}
		n.Details["action"] = n.Action
		pages = append(pages, n)
	}
	f.mu.Unlock()
	for _, n := range pages {
		e.sendDirectOnFailure(ctx, n)
	}
}

func recoveredPhrase(component string) string {
	if component == faultDataDir {
		return "writes its data dir"
	}
	return "records notifications"
}

// directNotifier is a notifier that can also deliver a notification at
// once, without recording it (the outbox, when its disk fails).
type directNotifier interface {
	DeliverNow(ctx context.Context, n notify.Notification) error
}

// sendDirectOnFailure sends n through the notifier and, when that cannot
// record it, delivers it directly: a page about the evaluator's own disk
// must not depend on that disk.
func (e *Evaluator) sendDirectOnFailure(ctx context.Context, n notify.Notification) {
	_, err := e.hand(ctx, &n)
	if err == nil {
		return
	}
	if d, ok := e.notifier.(directNotifier); ok {
		dctx, cancel := context.WithTimeout(ctx, notify.DefaultTimeout)
		err = d.DeliverNow(dctx, n)
		cancel()
	}
	if err != nil {
		e.log.Error("page about this evaluator not delivered", "key", n.Key, "err", err)
	}
}

// noteNotifyResult records whether the notifier could record a
// notification: a failure to is the outbox's fault. Only a recording
// pipeline (a directNotifier, the outbox) counts: a plain notifier's
// failure is its receiver's, not this evaluator's.
func (e *Evaluator) noteNotifyResult(retry bool, err error) {
	if _, recording := e.notifier.(directNotifier); !recording {
		return
	}
	now := e.clock.Now()
	if err != nil && retry {
		if e.faults.fail(faultOutbox, sourceQueue, err, now) {
			e.log.Error("this evaluator cannot record notifications; it pages directly about it", "err", err)
		}
		return
	}
	if e.faults.ok(faultOutbox, sourceQueue, now) {
		e.log.Info("this evaluator records notifications again")
	}
}

// dataDirCheckEvery is how often the liveness tick checks that the data
// dir takes a write, and dataDirCheckTimeout how long a check may hang
// before the dir counts as failing. A commit of the state store says the
// same whenever there is one; the check also covers a quiet evaluator and
// a disk that fills while bbolt still has free pages.
const (
	dataDirCheckEvery   = 30 * time.Second
	dataDirCheckTimeout = 10 * time.Second
	writeCheckFile      = ".write-check"
)

// dirCheck is the state of the data dir write check.
type dirCheck struct {
	last     time.Time // when the latest check started; liveness loop only
	inFlight atomic.Bool
	started  atomic.Int64 // Unix nanoseconds of the check in flight
	wg       sync.WaitGroup
}

// dirCheckStopWait bounds how long Run waits, when it stops, for a write
// check in flight: one on a hung disk would never return.
const dirCheckStopWait = 2 * time.Second

// wait waits for the check in flight, at most dirCheckStopWait.
func (c *dirCheck) wait() {
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	t := time.NewTimer(dirCheckStopWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// checkDataDir starts a write check of the data dir when one is due and
// none is in flight, and counts one in flight for dataDirCheckTimeout as
// failing. It runs from the liveness tick; the check's I/O runs on its
// own goroutine, so a hung disk cannot stall the tick.
func (e *Evaluator) checkDataDir(now time.Time) {
	if e.dataDir == "" {
		return
	}
	c := &e.dirCheck
	if c.inFlight.Load() {
		if hung := now.Sub(time.Unix(0, c.started.Load())); hung >= dataDirCheckTimeout {
			err := fmt.Errorf("a write check has not returned for %s", hung.Round(time.Second))
			if e.faults.fail(faultDataDir, sourceProbe, err, now) {
				e.log.Error("this evaluator cannot write its data dir: it goes on judging from memory, and pages about it", "dir", e.dataDir, "err", err)
			}
		}
		return
	}
	if !c.last.IsZero() && now.Sub(c.last) < dataDirCheckEvery {
		return
	}
	c.last = now
	c.started.Store(now.UnixNano())
	c.inFlight.Store(true)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := writeCheck(e.dataDir)
		c.inFlight.Store(false)
		at := e.clock.Now()
		switch {
		case err != nil:
			if e.faults.fail(faultDataDir, sourceProbe, err, at) {
				e.log.Error("this evaluator cannot write its data dir: it goes on judging from memory, and pages about it", "dir", e.dataDir, "err", err)
			}
		case e.faults.ok(faultDataDir, sourceProbe, at):
			e.log.Info("this evaluator writes its data dir again", "dir", e.dataDir)
		}
	}()
}

// writeCheck writes, syncs and removes a page-sized file in dir: a full
// or read-only disk refuses it.
func writeCheck(dir string) error {
	path := filepath.Join(dir, writeCheckFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, 4096))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(path); err == nil && rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	return err
}
