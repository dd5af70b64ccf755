package validate

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestProbesAnswer runs the real binary as each pod's container would run
// (its arguments and its environment, nothing more) and asks it what the
// kubelet and Prometheus would: every httpGet probe's path must answer 200
// on a healthy process, every tcpSocket probe's port must accept, and the
// ServiceMonitor's path must serve metrics. Only the configuration
// differs: the ConfigMap's, with its checks, notifiers and peers replaced
// by ones that stay on this machine, and the addresses and directories
// moved to loopback and temporary ones.
func TestProbesAnswer(t *testing.T) {
	o := manifests(t)
	s, ew := evaluators(t, o)
	dir := t.TempDir()
	cfgPath, _ := configFile(t, o, ew, dir)
	local := localConfig(t, cfgPath)

	ec := container(ew)
	env, _ := podEnv(t, o, ec, s.Name+"-0")
	evalURL := start(t, ec, env, map[string]string{
		"config":   local,
		"listen":   "127.0.0.1:0",
		"data-dir": filepath.Join(dir, "evaluator"),
	})
	answers(t, o, "StatefulSet "+s.Name, ec, evalURL)

	for _, d := range o.Deployments {
		w := workload{Kind: "Deployment", Name: d.Name, Template: &d.Spec.Template}
		c := container(w)
		env, _ := podEnv(t, o, c, d.Name)
		u := start(t, c, env, map[string]string{
			"config":    local,
			"listen":    "127.0.0.1:0",
			"spool-dir": filepath.Join(dir, d.Name),
			"evaluator": evalURL,
		})
		answers(t, o, "Deployment "+d.Name, c, u)
	}
}

// localConfig writes, beside p, p's configuration with nothing that would
// reach past this machine: one check of a closed loopback port, the
// console notifier, no peers. Regions, agents (and their keys' variables)
// and everything else stay as they are.
func localConfig(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "peers")
	cfg["notifiers"] = []any{map[string]any{"name": "log", "console": map[string]any{}}}
	cfg["checks"] = []any{map[string]any{"id": "loopback", "http": map[string]any{"url": "http://127.0.0.1:1/"}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(filepath.Dir(p), "local.yaml")
	if err := os.WriteFile(local, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return local
}

// start runs c's arguments, with the flags in replace set to other values
// (each must be among c's flags), and env as the whole environment; it
// returns the base URL the process logged once it listened, and stops the
// process at the end of the test.
func start(t *testing.T, c *corev1.Container, env map[string]string, replace map[string]string) string {
	t.Helper()
	cmd, flags := command(t, c)
	args := []string{cmd}
	for _, a := range c.Args[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if v, ok := replace[name]; ok {
			a = "--" + name + "=" + v
		}
		args = append(args, expand(a, env))
	}
	for name := range replace {
		if _, ok := flags[name]; !ok {
			t.Fatalf("no --%s in %q", name, c.Args)
		}
	}
	p := exec.Command(binary(t), args...)
	for k, v := range env {
		p.Env = append(p.Env, k+"="+v)
	}
	stderr, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { p.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			p.Process.Kill()
			<-exited
		}
	})
	running := "outpost " + cmd + " running"
	var seen []string
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("outpost %s exited before it served:\n%s", cmd, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(l), &rec) != nil {
				t.Fatalf("outpost %s: log line not JSON (the manifests give --log.format=json): %s", cmd, l)
			}
			if rec.Msg == running {
				t.Logf("%s listens on %s", running, rec.Listen)
				// The log lines that follow are not read: keep the pipe
				// drained.
				go func() {
					for range lines {
					}
				}()
				return rec.Listen
			}
		case <-deadline:
			t.Fatalf("outpost %s did not log %q within a minute:\n%s", cmd, running, strings.Join(seen, "\n"))
		}
	}
}

// answers asks the process at base what c's probes and the ServiceMonitor
// ask.
func answers(t *testing.T, o *objects, what string, c *corev1.Container, base string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("%s: GET %s: %v", what, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		switch {
		case p == nil:
		case p.HTTPGet != nil:
			if code, body := get(p.HTTPGet.Path); code != http.StatusOK {
				t.Errorf("%s: %s GET %s: %d %s, want 200 from a healthy process", what, name, p.HTTPGet.Path, code, strings.TrimSpace(body))
			}
		case p.TCPSocket != nil:
			conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
			if err != nil {
				t.Errorf("%s: %s: %v", what, name, err)
				continue
			}
			conn.Close()
		}
	}
	for _, sm := range o.ServiceMonitors {
		for _, ep := range sm.Spec.Endpoints {
			path := ep.Path
			if path == "" {
				path = "/metrics"
			}
			if code, body := get(path); code != http.StatusOK || !strings.Contains(body, "outpost_build_info") {
				t.Errorf("%s: ServiceMonitor %s: GET %s: %d, want 200 with outpost_build_info", what, sm.Name, path, code)
			}
		}
	}
}
