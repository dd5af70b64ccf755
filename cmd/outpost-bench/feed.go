package main

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outposthq/outpost/probes/wire"
)

// feeder plays one agent per region at the checks' schedule: every tick
// (the agents' default batch_delay, 1s) each region reports the checks
// whose slot in the interval falls in that tick, passing or failing as
// told, in batches of at most batchSize. Every batch goes, byte for byte
// the same, to every evaluator, through one sender per (evaluator,
// region): the evaluators compared see identical input at the same time.
type feeder struct {
	bc        benchConfig
	agents    []*agentSim
	senders   [][]*sender // [evaluator][region]
	failing   atomic.Bool
	batchSize int
	tick      time.Duration
	stats     []*sendStats // per evaluator
}

func newFeeder(bc benchConfig, digest string, evals []*evalProc) *feeder {
	f := &feeder{bc: bc, batchSize: 500, tick: min(time.Second, bc.interval)}
	for _, r := range bc.regions {
		f.agents = append(f.agents, newAgentSim(r, "bench-"+r, digest))
	}
	client := newClient()
	for _, e := range evals {
		st := &sendStats{}
		f.stats = append(f.stats, st)
		var row []*sender
		for _, a := range f.agents {
			row = append(row, newSender(e.base, a, client, st))
		}
		f.senders = append(f.senders, row)
	}
	return f
}

// run feeds until ctx ends.
func (f *feeder) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, row := range f.senders {
		for _, s := range row {
			wg.Add(1)
			go func() { defer wg.Done(); s.run(ctx) }()
		}
	}
	defer wg.Wait()
	slots := max(1, int(f.bc.interval/f.tick))
	t := time.NewTicker(f.tick)
	defer t.Stop()
	for k := 0; ; k++ {
		now := time.Now()
		ok := !f.failing.Load()
		for ri, a := range f.agents {
			var results []wire.Result
			for i := k % slots; i < f.bc.checks; i += slots {
				results = append(results, a.result(checkID(i), ok, now))
			}
			for { // an empty batch when there is nothing: the heartbeat
				n := min(len(results), f.batchSize)
				body := a.seal(results[:n], now)
				for _, row := range f.senders {
					row[ri].enqueue(body, n)
				}
				if results = results[n:]; len(results) == 0 {
					break
				}
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// backlog returns the deepest any sender's queue to evaluator e got.
func (f *feeder) backlog(e int) int {
	most := 0
	for _, s := range f.senders[e] {
		_, m := s.depth()
		most = max(most, m)
	}
	return most
}

// poller reads one evaluator's /healthz and /status.json during a run:
// latencies while recording, the latest view, and the check state changes
// it saw while counting.
type poller struct {
	e      *evalProc
	client *http.Client
	every  time.Duration

	mu          sync.Mutex
	view        statusView
	arrived     time.Time // when view arrived
	seen        bool
	recording   bool
	healthz     []time.Duration
	status      []time.Duration
	errs        int
	transitions int
	prev        map[string]string
}

func newPoller(e *evalProc, every time.Duration) *poller {
	return &poller{e: e, every: every, client: &http.Client{Timeout: 30 * time.Second}}
}

func (p *poller) run(ctx context.Context) {
	go p.pollHealthz(ctx)
	for ctx.Err() == nil {
		start := time.Now()
		v, lat, err := fetchStatus(ctx, p.client, p.e.base)
		p.mu.Lock()
		if err != nil {
			if ctx.Err() == nil && p.recording {
				p.errs++
			}
		} else {
			p.view, p.arrived, p.seen = v, time.Now(), true
			if p.recording {
				p.status = append(p.status, lat)
			}
			if p.prev != nil {
				for id, s := range v.checks {
					if old, ok := p.prev[id]; ok && old != s {
						p.transitions++
					}
				}
			}
			if p.recording {
				p.prev = v.checks
			}
		}
		p.mu.Unlock()
		_ = sleep(ctx, p.every-time.Since(start))
	}
}

func (p *poller) pollHealthz(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.e.base+"/healthz", nil)
		resp, err := p.client.Do(req)
		lat := time.Since(start)
		if err == nil {
			resp.Body.Close()
		}
		p.mu.Lock()
		if p.recording {
			if err != nil || resp.StatusCode != http.StatusOK {
				if ctx.Err() == nil {
					p.errs++
				}
			} else {
				p.healthz = append(p.healthz, lat)
			}
		}
		p.mu.Unlock()
		_ = sleep(ctx, 100*time.Millisecond-lat)
	}
}

// record starts or stops recording latencies and counting transitions
// (from the next view on).
func (p *poller) record(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording = on
	if on {
		p.prev = p.view.checks
	} else {
		p.prev = nil
	}
}

// latest returns the last view read, when it arrived, and whether there
// is one.
func (p *poller) latest() (statusView, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.view, p.arrived, p.seen
}

// quantile returns quantile q of ds (nearest rank), or -1 if empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
