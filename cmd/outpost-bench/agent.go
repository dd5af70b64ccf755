package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const agentAbout = `Measures "outpost agent" (built from ./cmd/outpost unless -outpost is given)
running -checks HTTP checks against a loopback target, with its default,
auto-sized --workers, shipping signed batches over HTTP to a real "outpost
evaluator", beside Debian's prometheus-blackbox-exporter scraped at the same
probe rate against the same target. Prints CPU per probe of each side.

The sides are measured in alternating windows, A B A B ... (-windows pairs of
-window each), so that machine noise falls on both alike. While blackbox_exporter
is measured the agent is paused with SIGSTOP; after SIGCONT it gets -settle
(default: two intervals) to catch up before its next window, which is not
counted. blackbox_exporter is idle whenever it is not scraped. Prints every
window, and the median of the per-pair ratios (agent / blackbox_exporter).

The evaluator is not measured; it shares the machine with both sides.`

type options struct {
	checks                   int
	interval, warmup, window time.Duration
	settle                   time.Duration
	windows                  int
	outpost, blackbox        string
	gomaxprocs               int
	skipBB                   bool
}

func agentCmd(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := newFlagSet("agent", agentAbout)
	fs.IntVar(&o.checks, "checks", 10000, "HTTP checks the agent runs")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "interval of every check; checks/interval is the probe rate")
	fs.DurationVar(&o.warmup, "warmup", 15*time.Second, "time to let the agent settle before the first window")
	fs.DurationVar(&o.window, "window", 20*time.Second, "length of one measurement window")
	fs.IntVar(&o.windows, "windows", 3, "pairs of windows (agent, then blackbox_exporter)")
	fs.DurationVar(&o.settle, "settle", 0, "time the agent gets after SIGCONT before its window (default: two intervals)")
	fs.StringVar(&o.outpost, "outpost", "", "outpost binary (default: go build ./cmd/outpost)")
	fs.StringVar(&o.blackbox, "blackbox", "prometheus-blackbox-exporter", "blackbox_exporter binary")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of both measured processes (0: leave unset, the default a user gets)")
	fs.BoolVar(&o.skipBB, "skip-blackbox", false, "measure the agent only")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.settle <= 0 {
		o.settle = 2 * o.interval
	}
	if o.windows < 1 || o.checks < 1 {
		return errors.New("need -windows ≥ 1 and -checks ≥ 1")
	}
	return runAgent(ctx, o, out)
}

type sample struct {
	rate, cpuPerProbe, rssMiB, peakMiB float64
	p50, p99                           time.Duration
	skipped                            float64
}

func runAgent(ctx context.Context, o options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "outpost-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.outpost == "" {
		if o.outpost, err = buildCurrent(dir, "outpost"); err != nil {
			return err
		}
	}
	var bbBin string
	if !o.skipBB {
		if bbBin, err = exec.LookPath(o.blackbox); err != nil {
			return fmt.Errorf("%s not found (apt-get install prometheus-blackbox-exporter, or -skip-blackbox)", o.blackbox)
		}
	}
	rate := float64(o.checks) / o.interval.Seconds()
	fmt.Fprintf(out, "target rate: %.0f probes/s (%d checks every %s), GOMAXPROCS %s, %d CPUs, agent --workers: default\n",
		rate, o.checks, o.interval, gmp(o.gomaxprocs), runtime.NumCPU())
	target, stopTarget, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	if err != nil {
		return err
	}
	defer stopTarget()

	bc := benchConfig{checks: o.checks, regions: []string{"bench"}, interval: o.interval, target: target}
	cfg := filepath.Join(dir, "bench.yaml")
	if _, err := bc.write(cfg); err != nil {
		return err
	}
	ev, err := startEvaluator(ctx, "evaluator", o.outpost, cfg, dir, bc.evalEnv("", 0), "")
	if err != nil {
		return err
	}
	defer ev.stop(10 * time.Second)
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	agentArgs := []string{"agent", "-c", cfg, "--region", "bench", "--evaluator", ev.base,
		"--listen", listen, "--spool-dir", filepath.Join(dir, "spool")}
	ag, err := startChild("agent", o.outpost, agentArgs, bc.evalEnv("", o.gomaxprocs), filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	defer ag.stop(10 * time.Second)
	defer func() { _ = ag.cmd.Process.Signal(syscall.SIGCONT) }() // a stopped process cannot take SIGTERM
	metricsURL := "http://" + listen + "/metrics"
	if err := waitHTTP(ctx, metricsURL, ag, 30*time.Second); err != nil {
		return err
	}
	var bb *child
	var probeURL string
	if !o.skipBB {
		if bb, probeURL, err = startBlackbox(ctx, bbBin, dir, target, o.gomaxprocs); err != nil {
			return err
		}
		defer bb.stop(10 * time.Second)
	}
	fmt.Fprintf(out, "agent pid %d → evaluator %s (pid %d); target %s\n", ag.pid, ev.base, ev.pid, target)
	if err := sleep(ctx, o.warmup); err != nil {
		return err
	}

	var ratios []float64
	for w := 1; w <= o.windows; w++ {
		if w > 1 {
			if err := ag.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				return err
			}
			if err := sleep(ctx, o.settle); err != nil {
				return err
			}
		}
		a, err := measureAgent(ctx, ag, metricsURL, o.window)
		if err != nil {
			return fmt.Errorf("agent window %d: %w", w, err)
		}
		fmt.Fprintf(out, "window %d A outpost agent:     %6.0f probes/s  %6.1f µs CPU/probe  RSS %5.1f MiB (peak %5.1f)  lateness p50 %s p99 %s  skipped %.0f\n",
			w, a.rate, a.cpuPerProbe*1e6, a.rssMiB, a.peakMiB, fmtDur(a.p50), fmtDur(a.p99), a.skipped)
		if o.skipBB {
			continue
		}
		if err := ag.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			return err
		}
		b, err := measureBlackbox(ctx, bb, probeURL, rate, o.window)
		if err != nil {
			return fmt.Errorf("blackbox_exporter window %d: %w", w, err)
		}
		fmt.Fprintf(out, "window %d B blackbox_exporter: %6.0f probes/s  %6.1f µs CPU/probe  RSS %5.1f MiB (peak %5.1f)   agent/blackbox %.2f\n",
			w, b.rate, b.cpuPerProbe*1e6, b.rssMiB, b.peakMiB, a.cpuPerProbe/b.cpuPerProbe)
		ratios = append(ratios, a.cpuPerProbe/b.cpuPerProbe)
	}
	if len(ratios) > 0 {
		sort.Float64s(ratios)
		fmt.Fprintf(out, "\nCPU per probe, outpost agent / blackbox_exporter: median %.2f of %d window pairs (min %.2f, max %.2f)\n",
			median(ratios), len(ratios), ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

func median(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// measureAgent measures the running agent for one window.
func measureAgent(ctx context.Context, ag *child, metricsURL string, window time.Duration) (sample, error) {
	m0, err := scrape(metricsURL)
	if err != nil {
		return sample{}, err
	}
	c0, _ := procCPU(ag.pid)
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return sample{}, err
	}
	m1, err := scrape(metricsURL)
	if err != nil {
		return sample{}, err
	}
	c1, _ := procCPU(ag.pid)
	elapsed := time.Since(start).Seconds()
	rss, peak := procMem(ag.pid)
	probes := m1.sum("outpost_probes_total") - m0.sum("outpost_probes_total")
	if probes <= 0 {
		return sample{}, errors.New("no probes ran; see the agent log")
	}
	s := sample{rate: probes / elapsed, cpuPerProbe: (c1 - c0) / probes, rssMiB: rss, peakMiB: peak,
		skipped: m1.sum("outpost_scheduler_skipped_total") - m0.sum("outpost_scheduler_skipped_total")}
	s.p50 = histQuantile(m0, m1, "outpost_scheduler_lateness_seconds", 0.50)
	s.p99 = histQuantile(m0, m1, "outpost_scheduler_lateness_seconds", 0.99)
	return s, nil
}

func startBlackbox(ctx context.Context, bin, dir, target string, gomaxprocs int) (*child, string, error) {
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"), 0o600); err != nil {
		return nil, "", err
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	var env []string
	if gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	c, err := startChild("blackbox_exporter", bin, []string{"--config.file=" + cfg, "--web.listen-address=" + listen}, env, filepath.Join(dir, "blackbox.log"))
	if err != nil {
		return nil, "", err
	}
	if err := waitHTTP(ctx, "http://"+listen+"/metrics", c, 30*time.Second); err != nil {
		return nil, "", err
	}
	return c, "http://" + listen + "/probe?module=http_2xx&target=" + "http://" + target + "/bb", nil
}

// measureBlackbox scrapes blackbox_exporter at rate for two seconds, then
// measures one window.
func measureBlackbox(ctx context.Context, bb *child, probeURL string, rate float64, window time.Duration) (sample, error) {
	dctx, cancel := context.WithCancel(ctx)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); drive(dctx, probeURL, rate, &done, &failed) }()
	defer func() { cancel(); wg.Wait() }()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return sample{}, err
	}
	c0, _ := procCPU(bb.pid)
	d0, f0 := done.Load(), failed.Load()
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return sample{}, err
	}
	c1, _ := procCPU(bb.pid)
	d1, f1 := done.Load(), failed.Load()
	elapsed := time.Since(start).Seconds()
	rss, peak := procMem(bb.pid)
	probes := float64(d1 - d0)
	if probes <= 0 {
		return sample{}, fmt.Errorf("no probes completed (%d failed)", f1-f0)
	}
	return sample{rate: probes / elapsed, cpuPerProbe: (c1 - c0) / probes, rssMiB: rss, peakMiB: peak}, nil
}

// drive scrapes url at rate per second, as a Prometheus server would at
// that many targets, until ctx ends.
func drive(ctx context.Context, url string, rate float64, done, failed *atomic.Int64) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	sem := make(chan struct{}, 512)
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		next = next.Add(every)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := client.Get(url)
			if err != nil {
				failed.Add(1)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "probe_success 1") {
				done.Add(1)
			} else {
				failed.Add(1)
			}
		}()
	}
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return d.Round(10 * time.Microsecond).String()
}
