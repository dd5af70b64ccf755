package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// child is a process this tool started. Its stdout and stderr go to a log
// file through a writer that counts lines. Every child is registered so that
// killChildren stops it on every way out, Ctrl-C included; Pdeathsig kills
// it should this process die without cleaning up.
type child struct {
	name  string
	cmd   *exec.Cmd
	log   *lineCounter
	done  chan struct{}
	err   error // set before done is closed
	pid   int
	start time.Time
}

var (
	childrenMu sync.Mutex
	children   []*child
)

// startChild runs bin with args and extra environment, its output in logPath.
func startChild(name, bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	lc := &lineCounter{w: f}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lc, lc
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: lc, done: make(chan struct{}), pid: cmd.Process.Pid, start: time.Now()}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	childrenMu.Lock()
	children = append(children, c)
	childrenMu.Unlock()
	return c, nil
}

// stop asks the child to end (SIGTERM), and kills it after grace. It
// returns how long the child took to end, and whether it had to be killed.
func (c *child) stop(grace time.Duration) (took time.Duration, killed bool) {
	select {
	case <-c.done:
		return 0, false
	default:
	}
	start := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		killed = true
	}
	return time.Since(start), killed
}

// exited reports whether the child has ended, and how.
func (c *child) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// killChildren stops every child still running.
func killChildren() {
	childrenMu.Lock()
	cs := children
	children = nil
	childrenMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(5 * time.Second) }()
	}
	wg.Wait()
}

// lineCounter passes writes through and counts the lines written.
type lineCounter struct {
	w     io.Writer
	lines atomic.Int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.lines.Add(int64(strings.Count(string(p), "\n")))
	return l.w.Write(p)
}

// procStat is what /proc says about a process at one moment.
type procStat struct {
	cpu        float64 // user+system CPU seconds
	writeBytes float64 // bytes the process caused to be written to storage
	rssMiB     float64
	peakMiB    float64 // VmHWM
}

func readProc(pid int) procStat {
	var s procStat
	s.cpu, _ = procCPU(pid)
	s.rssMiB, s.peakMiB = procMem(pid)
	s.writeBytes = procWriteBytes(pid)
	return s
}

// procCPU returns the user+system CPU seconds of pid from /proc.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// procWriteBytes returns write_bytes of /proc/PID/io: bytes sent to the
// storage layer (page cache writeback included), or -1 if unreadable.
func procWriteBytes(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return -1
}

// procMem returns current and peak resident memory of pid in MiB.
func procMem(pid int) (rss, peak float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// serve serves h on a free loopback port.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// freeAddr returns a loopback address nobody listens on at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP waits until url answers, c ends, or limit passes.
func waitHTTP(ctx context.Context, url string, c *child, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if c != nil {
			if done, err := c.exited(); done {
				return fmt.Errorf("%s exited before answering (%v); see its log", c.name, err)
			}
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not answer within %s", url, limit)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// selfCPU returns this process's CPU seconds.
func selfCPU() float64 {
	s, _ := procCPU(os.Getpid())
	return s
}
