package probes

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The benchmarks probe a target served by a child process, so that the CPU
// this process spends is the client's alone.

const benchServerEnv = "OUTPOST_BENCH_TARGET"

// TestBenchTarget is the child: it serves until its stdin closes. It does
// nothing in a normal test run.
func TestBenchTarget(t *testing.T) {
	switch os.Getenv(benchServerEnv) {
	case "1":
	case "dns":
		serveBenchDNS(t)
		return
	default:
		t.Skip("helper process for benchmarks")
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "web-1")
		io.WriteString(w, `{"status":"ok","note":"Welcome"}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	go srv.Serve(ln)
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

func startBenchTarget(b *testing.B) string { return startBenchChild(b, "1") }

func startBenchChild(b *testing.B, kind string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchTarget$")
	cmd.Env = append(os.Environ(), benchServerEnv+"="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench target did not start: %v", err)
	}
	return strings.TrimSpace(line)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareGET is the floor: net/http on a fresh connection, body read, nothing else.
func bareGET(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// BenchmarkHTTPProbeVsBareGET runs an Outpost HTTP probe (with status, body,
// header and JSON assertions) and a bare net/http GET in alternating blocks
// in one run, and reports the CPU per probe of each and their ratio.
func BenchmarkHTTPProbeVsBareGET(b *testing.B) {
	addr := startBenchTarget(b)
	url := "http://" + addr + "/"
	cfg := fmt.Sprintf("- id: bench\n  http:\n    url: %s\n    expect: {status: [200], body_contains: Welcome, headers: {X-Served-By: '^web-'}, json: {'$.status': ok}}\n", url)
	_, c := loadOne(b, cfg, nil)
	p, err := New(c, Options{Region: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	bare := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	ctx := context.Background()

	compareCPU(b, 100, "probe", "get", func() {
		if r := p.Probe(ctx); !r.OK {
			b.Fatalf("probe failed: %s", r.Reason)
		}
	}, func() {
		if err := bareGET(bare, url); err != nil {
			b.Fatal(err)
		}
	})
}

// compareCPU runs measured and yardstick in alternating blocks of block
// iterations, b.N of each, and reports the CPU per op of both and their
// ratio: two numbers from one run on the same machine state. Only measured
// counts towards the benchmark's time and allocations.
func compareCPU(b *testing.B, block int, unit, yardUnit string, measured, yardstick func()) {
	var cpuMeasured, cpuYard time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(block, b.N-i)
		start := cpuTime()
		for j := 0; j < n; j++ {
			measured()
		}
		cpuMeasured += cpuTime() - start
		b.StopTimer()
		start = cpuTime()
		for j := 0; j < n; j++ {
			yardstick()
		}
		cpuYard += cpuTime() - start
		b.StartTimer()
		i += n
	}
	b.StopTimer()
	o := float64(cpuMeasured.Nanoseconds()) / float64(b.N)
	g := float64(cpuYard.Nanoseconds()) / float64(b.N)
	b.ReportMetric(o, "cpu-ns/"+unit)
	b.ReportMetric(g, "bare-cpu-ns/"+yardUnit)
	b.ReportMetric(o/g, "cpu-ratio")
}

// BenchmarkHTTPProbeAllocs isolates the probe for allocation counts.
func BenchmarkHTTPProbeAllocs(b *testing.B) {
	addr := startBenchTarget(b)
	_, c := loadOne(b, fmt.Sprintf("- id: bench\n  http: {url: 'http://%s/'}\n", addr), nil)
	p, err := New(c, Options{Region: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := p.Probe(context.Background()); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}

// BenchmarkBareGETAllocs is the floor for BenchmarkHTTPProbeAllocs.
func BenchmarkBareGETAllocs(b *testing.B) {
	addr := startBenchTarget(b)
	bare := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		if err := bareGET(bare, "http://"+addr+"/"); err != nil {
			b.Fatal(err)
		}
	}
}

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
