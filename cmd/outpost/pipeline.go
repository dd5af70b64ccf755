package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/outposthq/outpost/alerting/notify"
	"github.com/outposthq/outpost/alerting/outbox"
	"github.com/outposthq/outpost/checks"
)

// pipeline is the evaluator's notifier: the outbox, which a reload
// replaces with one built for the new configuration (its notifiers,
// routes, groups, budgets and check facts). What is queued stays queued:
// the new outbox opens the same file, and drops only what was for a
// notifier the configuration no longer has, as at a start.
type pipeline struct {
	open func(*checks.Config) (*outbox.Outbox, error)

	// mu is held for reading by every hand-over and for writing while
	// the outbox is replaced, so that nothing is handed to a closed one.
	mu   sync.RWMutex
	box  *outbox.Outbox
	stop context.CancelFunc
	done chan struct{}
}

var _ notify.Notifier = (*pipeline)(nil)

// newPipelineFor opens the outbox for cfg with open, which a reload calls
// again for the new configuration.
func newPipelineFor(cfg *checks.Config, open func(*checks.Config) (*outbox.Outbox, error)) (*pipeline, error) {
	box, err := open(cfg)
	if err != nil {
		return nil, err
	}
	return &pipeline{open: open, box: box}, nil
}

// start runs the outbox's delivery until stop.
func (p *pipeline) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	box := p.box
	go func() { defer close(done); box.Run(ctx) }()
	p.stop, p.done = cancel, done
}

// halt stops delivery: attempts in flight get the outbox's stop grace,
// the rest stays queued.
func (p *pipeline) halt() {
	if p.stop != nil {
		p.stop()
		<-p.done
		p.stop, p.done = nil, nil
	}
}

// Close stops delivery and closes the outbox.
func (p *pipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.halt()
	return p.box.Close()
}

// reload replaces the outbox with one for cfg. When the new one cannot be
// opened, the old configuration's is opened again and the error returned.
func (p *pipeline) reload(cfg, old *checks.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	running := p.stop != nil
	p.halt()
	if err := p.box.Close(); err != nil {
		return fmt.Errorf("closing the outbox: %w", err)
	}
	box, err := p.open(cfg)
	if err != nil {
		back, err2 := p.open(old)
		if err2 != nil {
			return fmt.Errorf("%w; reopening it with the running configuration failed too: %v", err, err2)
		}
		box = back
	}
	p.box = box
	if running {
		p.start()
	}
	return err
}

// Notify enqueues n in the outbox.
func (p *pipeline) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.box.Notify(ctx, n)
}

// EnqueueAll enqueues ns in the outbox in one write.
func (p *pipeline) EnqueueAll(ns []notify.Notification) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.box.EnqueueAll(ns)
}

// DeliverNow delivers n without the outbox (see outbox.DeliverNow).
func (p *pipeline) DeliverNow(ctx context.Context, n notify.Notification) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.box.DeliverNow(ctx, n)
}

// SetAside reports whether the outbox file was found damaged at the start.
func (p *pipeline) SetAside() (path, movedTo, lost string) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.box.SetAside()
}
