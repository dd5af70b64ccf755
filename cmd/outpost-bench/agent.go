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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	checks     int
	interval   time.Duration
	warmup     time.Duration
	measure    time.Duration
	outpost    string
	blackbox   string
	gomaxprocs int
	skipBB     bool
}

const agentAbout = `Runs "outpost agent" with -checks HTTP checks against a loopback target and
blackbox_exporter scraped at the same rate, and prints CPU per probe.`

func agentCmd(ctx context.Context, args []string, out io.Writer) error {
	var o options
	flag := newFlagSet("agent", agentAbout)
	flag.IntVar(&o.checks, "checks", 10000, "HTTP checks the agent runs")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "interval of every check; checks/interval is the probe rate")
	flag.DurationVar(&o.warmup, "warmup", 15*time.Second, "time to let each side settle before measuring")
	flag.DurationVar(&o.measure, "measure", 40*time.Second, "measurement window for each side")
	flag.StringVar(&o.outpost, "outpost", "", "outpost binary (default: build ./cmd/outpost)")
	flag.StringVar(&o.blackbox, "blackbox", "prometheus-blackbox-exporter", "blackbox_exporter binary")
	flag.IntVar(&o.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS for both measured processes")
	flag.BoolVar(&o.skipBB, "skip-blackbox", false, "measure Outpost only")
	if err := parse(flag, args); err != nil {
		return err
	}
	return run(ctx, o)
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "outpost-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.outpost == "" {
		o.outpost = filepath.Join(dir, "outpost")
		build := exec.Command("go", "build", "-o", o.outpost, "./cmd/outpost")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build outpost: %w", err)
		}
	}
	rate := float64(o.checks) / o.interval.Seconds()
	fmt.Printf("target rate: %.0f probes/s (%d checks every %s), GOMAXPROCS=%d, %d CPUs\n\n", rate, o.checks, o.interval, o.gomaxprocs, runtime.NumCPU())

	target, stopTarget, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	if err != nil {
		return err
	}
	defer stopTarget()
	var sinkResults atomic.Int64
	sink, stopSink, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n > 0 {
			sinkResults.Add(1)
		}
		io.WriteString(w, "ok")
	}))
	if err != nil {
		return err
	}
	defer stopSink()

	op, err := measureOutpost(ctx, o, dir, target, sink)
	if err != nil {
		return fmt.Errorf("outpost: %w", err)
	}
	fmt.Printf("outpost agent:   %7.0f probes/s  %6.1f µs CPU/probe  RSS %5.1f MiB (peak %5.1f)  lateness p50 %s p99 %s  skipped %.0f\n",
		op.rate, op.cpuPerProbe*1e6, op.rssMiB, op.peakMiB, fmtDur(op.p50), fmtDur(op.p99), op.skipped)
	if o.skipBB {
		return nil
	}
	bb, err := measureBlackbox(ctx, o, dir, target, rate)
	if err != nil {
		return fmt.Errorf("blackbox_exporter: %w", err)
	}
	fmt.Printf("blackbox_exporter: %5.0f probes/s  %6.1f µs CPU/probe  RSS %5.1f MiB (peak %5.1f)\n",
		bb.rate, bb.cpuPerProbe*1e6, bb.rssMiB, bb.peakMiB)
	fmt.Printf("\nCPU per probe, outpost / blackbox_exporter: %.2f\n", op.cpuPerProbe/bb.cpuPerProbe)
	return nil
}

type sample struct {
	rate, cpuPerProbe, rssMiB, peakMiB float64
	p50, p99                           time.Duration
	skipped                            float64
}

func measureOutpost(ctx context.Context, o options, dir, target, sink string) (sample, error) {
	cfg := filepath.Join(dir, "bench.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nregions: [bench]\nagents: [{region: bench, key: \"${OUTPOST_BENCH_KEY}\"}]\ndefaults: {interval: %s, timeout: 5s}\nchecks:\n", o.interval)
	for i := 0; i < o.checks; i++ {
		fmt.Fprintf(&b, "  - {id: c%05d, http: {url: \"http://%s/c%d\"}}\n", i, target, i)
	}
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return sample{}, err
	}
	listen, err := freeAddr()
	if err != nil {
		return sample{}, err
	}
	cmd := exec.Command(o.outpost, "agent", "-c", cfg, "--region", "bench", "--evaluator", "http://"+sink,
		"--listen", listen, "--spool-dir", filepath.Join(dir, "spool"), "--workers", "1024")
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.gomaxprocs), "OUTPOST_BENCH_KEY=bench-key")
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	metricsURL := "http://" + listen + "/metrics"
	if err := waitHTTP(ctx, metricsURL, nil, 30*time.Second); err != nil {
		return sample{}, err
	}
	time.Sleep(o.warmup)
	m0, err := scrape(metricsURL)
	if err != nil {
		return sample{}, err
	}
	c0, _ := procCPU(cmd.Process.Pid)
	start := time.Now()
	time.Sleep(o.measure)
	m1, err := scrape(metricsURL)
	if err != nil {
		return sample{}, err
	}
	c1, _ := procCPU(cmd.Process.Pid)
	elapsed := time.Since(start).Seconds()
	rss, peak := procMem(cmd.Process.Pid)
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

func measureBlackbox(ctx context.Context, o options, dir, target string, rate float64) (sample, error) {
	bin, err := exec.LookPath(o.blackbox)
	if err != nil {
		return sample{}, fmt.Errorf("%s not found (apt-get install prometheus-blackbox-exporter)", o.blackbox)
	}
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"), 0o600); err != nil {
		return sample{}, err
	}
	listen, err := freeAddr()
	if err != nil {
		return sample{}, err
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--web.listen-address="+listen)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.gomaxprocs))
	logf, _ := os.Create(filepath.Join(dir, "blackbox.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	if err := waitHTTP(ctx, "http://"+listen+"/metrics", nil, 30*time.Second); err != nil {
		return sample{}, err
	}
	probeURL := "http://" + listen + "/probe?module=http_2xx&target=" + "http://" + target + "/bb"
	ctx, cancel := context.WithCancel(context.Background())
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); drive(ctx, probeURL, rate, &done, &failed) }()
	time.Sleep(o.warmup)
	c0, _ := procCPU(cmd.Process.Pid)
	d0 := done.Load()
	start := time.Now()
	time.Sleep(o.measure)
	c1, _ := procCPU(cmd.Process.Pid)
	d1 := done.Load()
	elapsed := time.Since(start).Seconds()
	rss, peak := procMem(cmd.Process.Pid)
	cancel()
	wg.Wait()
	probes := float64(d1 - d0)
	if probes <= 0 {
		return sample{}, fmt.Errorf("no probes completed (%d failed)", failed.Load())
	}
	if f := failed.Load(); f > 0 {
		fmt.Printf("(blackbox_exporter: %d scrapes failed)\n", f)
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
