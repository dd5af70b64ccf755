package alertmanager

import (
	"context"
	"maps"
	"slices"
)

// loop re-posts the firing alerts every resend interval, each with
// endsAt = now + 4 × resend, until none fires or the notifier is closed.
// A failed re-send is logged and left to the next one: four in a row must
// fail before Alertmanager resolves an alert.
func (a *Notifier) loop() {
	defer a.wg.Done()
	for {
		t := a.clock.NewTimer(a.resend)
		select {
		case <-a.stop:
			t.Stop()
			a.mu.Lock()
			a.running = false
			a.mu.Unlock()
			return
		case <-t.C():
		}
		a.send.Lock()
		now := a.clock.Now().UTC()
		a.mu.Lock()
		if len(a.firing) == 0 {
			a.running = false
			a.mu.Unlock()
			a.send.Unlock()
			return
		}
		alerts := make([]postableAlert, 0, len(a.firing))
		for _, k := range slices.Sorted(maps.Keys(a.firing)) {
			al := a.firing[k]
			al.EndsAt = now.Add(4 * a.resend)
			alerts = append(alerts, al)
		}
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		go func() {
			select {
			case <-a.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, err := a.postAll(ctx, alerts); err != nil {
			a.env.Log.Warn("alertmanager: re-sending firing alerts failed; the next re-send tries again", "alerts", len(alerts), "err", err)
		}
		cancel()
		a.send.Unlock()
	}
}
