package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// buildTest compiles the alerting package's tests (go test -c) into dir.
func buildTest(dir string) (string, error) {
	out := filepath.Join(dir, "alerting.test")
	cmd := exec.Command("go", "test", "-c", "-o", out, "./alerting/")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go test -c ./alerting/ (run from the repository root): %w", err)
	}
	return out, nil
}

// runInProcess runs BenchmarkIngest and BenchmarkIngestParallelDataDir with
// -test.cpu procs and returns their results/s.
func runInProcess(ctx context.Context, test string, procs int, benchtime string, out io.Writer) (serial, dataDir float64, err error) {
	cmd := exec.CommandContext(ctx, test, "-test.run", "^$", "-test.bench", "^(BenchmarkIngest|BenchmarkIngestParallelDataDir)$",
		"-test.cpu", strconv.Itoa(procs), "-test.benchtime", benchtime)
	cmd.Dir = "alerting" // the package's directory, as go test runs it
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("in-process benchmark: %w\n%s", err, buf.String())
	}
	serial, dataDir = -1, -1
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "BenchmarkIngest") {
			continue
		}
		fmt.Fprintf(out, "  in-process: %s\n", line)
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			if f[i] != "results/s" {
				continue
			}
			v, _ := strconv.ParseFloat(f[i-1], 64)
			if strings.HasPrefix(f[0], "BenchmarkIngestParallelDataDir") {
				dataDir = v
			} else {
				serial = v
			}
		}
	}
	return serial, dataDir, nil
}
