package validate

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/prometheus/common/model"

	"github.com/outposthq/outpost/checks"
)

const zoneKey = "topology.kubernetes.io/zone"

// container is the outpost container of a pod template.
func container(w workload) *corev1.Container { return &w.Template.Spec.Containers[0] }

// command splits an outpost container's arguments into the subcommand and
// its flags. Every flag is written --name=value, so that which value
// belongs to which flag is never in doubt.
func command(t *testing.T, c *corev1.Container) (string, map[string]string) {
	t.Helper()
	if len(c.Command) > 0 {
		t.Fatalf("command %q: the image's entrypoint is the binary; give args only", c.Command)
	}
	if len(c.Args) == 0 {
		t.Fatal("no args: the image's default is help")
	}
	flags := map[string]string{}
	for _, a := range c.Args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Fatalf("argument %q: write flags as --name=value", a)
		}
		if _, dup := flags[name]; dup {
			t.Fatalf("flag --%s given twice", name)
		}
		flags[name] = value
	}
	return c.Args[0], flags
}

// podEnv is the environment Kubernetes gives a pod named pod: literal
// values, Secret keys and the pod's name. secretVars are the variables
// taken from Secrets.
func podEnv(t *testing.T, o *objects, c *corev1.Container, pod string) (env map[string]string, secretVars []string) {
	t.Helper()
	env = map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretValue(o.Secrets[ref.Name], ref.Key)
			if !ok {
				t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
			secretVars = append(secretVars, e.Name)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = pod
		default:
			t.Fatalf("env %s: a source this test does not resolve; add it", e.Name)
		}
	}
	return env, secretVars
}

// expand replaces $(VAR) as Kubernetes does in args and values: a defined
// variable by its value, anything else left as it is.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[varRef.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

// configFile writes the configuration that --config names in w's pods,
// from the ConfigMap mounted there, to dir, and returns its path and the
// ConfigMap's name.
func configFile(t *testing.T, o *objects, w workload, dir string) (string, string) {
	t.Helper()
	c := container(w)
	_, flags := command(t, c)
	p, ok := flags["config"]
	if !ok {
		t.Fatal("no --config")
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != path.Dir(p) {
			continue
		}
		for _, v := range w.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm := o.ConfigMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("--config=%s: ConfigMap %s is not in the manifests", p, v.ConfigMap.Name)
			}
			data, ok := cm.Data[path.Base(p)]
			if !ok {
				t.Fatalf("--config=%s: ConfigMap %s has no key %s", p, cm.Name, path.Base(p))
			}
			f := filepath.Join(dir, path.Base(p))
			if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			return f, cm.Name
		}
	}
	t.Fatalf("--config=%s: no ConfigMap is mounted at %s", p, path.Dir(p))
	return "", ""
}

func lookupIn(env map[string]string, without string) checks.LookupEnv {
	return func(k string) (string, bool) {
		if k == without {
			return "", false
		}
		v, ok := env[k]
		return v, ok
	}
}

// load loads the configuration at p as a process of the role needs does,
// with env as its whole environment.
func load(t *testing.T, p string, env map[string]string, needs checks.Needs) *checks.Config {
	t.Helper()
	cfg, err := checks.LoadFor([]string{p}, lookupIn(env, ""), needs)
	if err != nil {
		t.Fatalf("with its pod's environment, the configuration does not load as it would at start:\n%v", err)
	}
	return cfg
}

// leastPrivilege fails for every Secret variable the role is given but
// does not need: the loader's own rules (checks.Needs) decide, by loading
// the configuration without it.
func leastPrivilege(t *testing.T, p string, env map[string]string, secretVars []string, needs checks.Needs) {
	t.Helper()
	for _, v := range secretVars {
		if _, err := checks.LoadFor([]string{p}, lookupIn(env, v), needs); err == nil {
			t.Errorf("given %s, which it does not need: leave it out of its Secret and env", v)
		}
	}
}

// TestConfigValidates runs the real "outpost validate" on the ConfigMap's
// configuration, with every Secret's values set.
func TestConfigValidates(t *testing.T) {
	o := manifests(t)
	dir := t.TempDir()
	var cmName string
	var cfgPath string
	for _, w := range o.workloads() {
		p, name := configFile(t, o, w, dir)
		if cmName != "" && name != cmName {
			t.Errorf("%s reads ConfigMap %s, others %s: every role must read the one configuration (its digest is compared)", w, name, cmName)
		}
		cmName, cfgPath = name, p
	}
	// One value per variable across Secrets: an agent's key must be the
	// one the evaluators verify with.
	env := []string{}
	seen := map[string]string{}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range o.Secrets {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		s := o.Secrets[n]
		keys := slices.Concat(slices.Collect(mapKeys(s.StringData)), slices.Collect(mapKeys(s.Data)))
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := secretValue(s, k)
			if prev, ok := seen[k]; ok {
				if prev != v {
					t.Errorf("Secret %s: %s differs from its value in another Secret: one variable, one secret", n, k)
				}
				continue
			}
			seen[k] = v
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.Command(binary(t), "validate", "--config="+cfgPath)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("outpost validate on ConfigMap %s: %v\n%s", cmName, err, out)
	}
	if strings.Contains(string(out), "warning:") {
		t.Errorf("outpost validate warns:\n%s", out)
	}
	t.Logf("outpost validate: %s", strings.TrimSpace(string(out)))
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// listenPort is the port of a --listen address.
func listenPort(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		t.Fatalf("--listen=%s: no port", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatalf("--listen=%s: %v", addr, err)
	}
	return int32(p)
}

// checkListen checks that --listen serves on every address of the pod, on
// the container's port named http.
func checkListen(t *testing.T, c *corev1.Container, flags map[string]string) {
	t.Helper()
	l, ok := flags["listen"]
	if !ok {
		t.Fatal("no --listen: the default is 127.0.0.1, which nothing outside the pod reaches")
	}
	if host := l[:strings.LastIndex(l, ":")]; host != "" && host != "0.0.0.0" && host != "[::]" {
		t.Errorf("--listen=%s: serve on every address of the pod (:%d)", l, listenPort(t, l))
	}
	if !portExists(portNames(c), intstr.FromInt32(listenPort(t, l))) || portNames(c)["http"] != listenPort(t, l) {
		t.Errorf("--listen=%s is not the container's port named http %v", l, portNames(c))
	}
}

func portNames(c *corev1.Container) map[string]int32 {
	m := map[string]int32{}
	for _, p := range c.Ports {
		m[p.Name] = p.ContainerPort
	}
	return m
}

// writableUnder reports whether dir lies under a mount of a writable
// volume (a claim template or an emptyDir), the root file system being
// read-only.
func writableUnder(w workload, dir string) bool {
	c := container(w)
	for _, m := range c.VolumeMounts {
		if m.ReadOnly || (dir != m.MountPath && !strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")) {
			continue
		}
		if slices.Contains(w.Claims, m.Name) {
			return true
		}
		for _, v := range w.Template.Spec.Volumes {
			if v.Name == m.Name && (v.EmptyDir != nil || v.PersistentVolumeClaim != nil) {
				return true
			}
		}
	}
	return false
}

// volumeUnder is the pod volume mounted where dir lies, if any.
func volumeUnder(w workload, dir string) *corev1.Volume {
	for _, m := range container(w).VolumeMounts {
		if dir != m.MountPath && !strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for i, v := range w.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &w.Template.Spec.Volumes[i]
			}
		}
	}
	return nil
}

// evaluators returns the one StatefulSet, which must run "outpost
// evaluator".
func evaluators(t *testing.T, o *objects) (*appsv1.StatefulSet, workload) {
	t.Helper()
	if len(o.StatefulSets) != 1 {
		t.Fatalf("%d StatefulSets, want the evaluators' one", len(o.StatefulSets))
	}
	s := o.StatefulSets[0]
	w := o.workloads()[0]
	if cmd, _ := command(t, container(w)); cmd != "evaluator" {
		t.Fatalf("StatefulSet %s runs %q, want evaluator", s.Name, cmd)
	}
	return s, w
}

func TestEvaluators(t *testing.T) {
	o := manifests(t)
	s, w := evaluators(t, o)
	c := container(w)
	_, flags := command(t, c)
	n := replicas(s.Spec.Replicas)
	if n < 2 {
		t.Errorf("%d evaluator replicas: want two, in different zones", n)
	}

	t.Run("headless service", func(t *testing.T) {
		svc := o.Services[s.Spec.ServiceName]
		switch {
		case svc == nil:
			t.Fatalf("serviceName %q: no such Service", s.Spec.ServiceName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			t.Errorf("Service %s: clusterIP None, to give each pod its DNS name", svc.Name)
		case !svc.Spec.PublishNotReadyAddresses:
			t.Errorf("Service %s: publishNotReadyAddresses, so that an unhealthy evaluator keeps its name for agents and peers", svc.Name)
		case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.Template.Labels)):
			t.Errorf("Service %s does not select the StatefulSet's pods", svc.Name)
		}
	})

	t.Run("zones", func(t *testing.T) {
		var found bool
		for _, tsc := range w.Template.Spec.TopologySpreadConstraints {
			if tsc.TopologyKey != zoneKey {
				continue
			}
			found = true
			if tsc.MaxSkew != 1 || tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
				t.Errorf("spread over %s: maxSkew 1 and DoNotSchedule keep two evaluators out of one zone", zoneKey)
			}
			if !selector(t, "topologySpreadConstraint", tsc.LabelSelector).Matches(labels.Set(w.Template.Labels)) {
				t.Error("topologySpreadConstraint: its labelSelector does not match the evaluators: it would spread nothing")
			}
		}
		if !found {
			t.Errorf("no topologySpreadConstraint on %s", zoneKey)
		}
	})

	t.Run("data volume", func(t *testing.T) {
		if !slices.Contains(w.Claims, "data") {
			t.Fatal("no volumeClaimTemplate named data")
		}
		d, ok := flags["data-dir"]
		if !ok {
			t.Fatal("no --data-dir")
		}
		if !writableUnder(w, d) {
			t.Errorf("--data-dir=%s is not on the data volume", d)
		}
		for _, ct := range s.Spec.VolumeClaimTemplates {
			if _, ok := ct.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
				t.Errorf("volumeClaimTemplate %s: no storage request", ct.Name)
			}
		}
	})

	t.Run("disruption budget", func(t *testing.T) {
		var pdb *policyv1.PodDisruptionBudget
		for _, p := range o.PDBs {
			if selector(t, "PodDisruptionBudget "+p.Name, p.Spec.Selector).Matches(labels.Set(w.Template.Labels)) {
				pdb = p
			}
		}
		if pdb == nil {
			t.Fatal("no PodDisruptionBudget for the evaluators")
		}
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable 1, so that a drain takes one evaluator at a time", pdb.Name)
		}
	})

	t.Run("listen", func(t *testing.T) { checkListen(t, c, flags) })

	t.Run("peers", func(t *testing.T) {
		if flags["name"] != "$(POD_NAME)" {
			t.Fatalf("--name=%s: want $(POD_NAME), the name its peers: entry has", flags["name"])
		}
		pod0 := s.Name + "-0"
		env, _ := podEnv(t, o, c, pod0)
		if env["POD_NAME"] != pod0 {
			t.Fatal("POD_NAME is not the pod's name (fieldRef metadata.name)")
		}
		p, _ := configFile(t, o, w, t.TempDir())
		cfg := load(t, p, env, checks.EvaluatorNeeds())
		var want, got []string
		for i := range n {
			want = append(want, fmt.Sprintf("%s-%d", s.Name, i))
		}
		scheme := "http"
		if _, ok := flags["tls-cert"]; ok {
			scheme = "https"
		}
		for _, pe := range cfg.Peers {
			got = append(got, pe.Name)
			u, err := url.Parse(pe.URL)
			if err != nil {
				t.Errorf("peer %s: %v", pe.Name, err)
				continue
			}
			if want := podHosts(pe.Name, s.Spec.ServiceName, s.Namespace); !slices.Contains(want, u.Hostname()) {
				t.Errorf("peer %s: host %q, want one of %q (the pod's name through the headless Service)", pe.Name, u.Hostname(), want)
			}
			if u.Scheme != scheme {
				t.Errorf("peer %s: %s, want %s as the evaluators serve", pe.Name, u.Scheme, scheme)
			}
			if u.Port() != strconv.Itoa(int(portNames(c)["http"])) {
				t.Errorf("peer %s: port %q, want the evaluator's %d", pe.Name, u.Port(), portNames(c)["http"])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("peers: %q, want the StatefulSet's pods %q", got, want)
		}
	})

	t.Run("secrets", func(t *testing.T) {
		env, secretVars := podEnv(t, o, c, s.Name+"-0")
		p, _ := configFile(t, o, w, t.TempDir())
		load(t, p, env, checks.EvaluatorNeeds())
		leastPrivilege(t, p, env, secretVars, checks.EvaluatorNeeds())
	})
}

// podHosts are the names under which pod of a StatefulSet governed by the
// headless Service svc in namespace ns is reached: the short ones through
// the pod's DNS search path, the long ones from anywhere in the cluster.
func podHosts(pod, svc, ns string) []string {
	short := pod + "." + svc
	return []string{short, short + "." + ns, short + "." + ns + ".svc", short + "." + ns + ".svc.cluster.local"}
}

func TestAgents(t *testing.T) {
	o := manifests(t)
	s, ew := evaluators(t, o)
	evalEnv, _ := podEnv(t, o, container(ew), s.Name+"-0")
	p, _ := configFile(t, o, ew, t.TempDir())
	cfg := load(t, p, evalEnv, checks.EvaluatorNeeds())
	var peerURLs []string
	for _, pe := range cfg.Peers {
		peerURLs = append(peerURLs, pe.URL)
	}
	slices.Sort(peerURLs)
	regions := map[string]string{}
	for _, d := range o.Deployments {
		w := workload{Kind: "Deployment", Name: d.Name, Selector: d.Spec.Selector, Template: &d.Spec.Template}
		t.Run(w.Name, func(t *testing.T) {
			c := container(w)
			cmd, flags := command(t, c)
			if cmd != "agent" {
				t.Fatalf("runs %q, want agent", cmd)
			}
			if replicas(d.Spec.Replicas) != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Error("one replica, replaced with strategy Recreate: two agents under one name would have each other's batches refused as replays")
			}
			region, name := flags["region"], flags["name"]
			if !slices.Contains(cfg.Regions, region) {
				t.Fatalf("--region=%s: not among the configuration's regions %q", region, cfg.Regions)
			}
			if prev, dup := regions[region]; dup {
				t.Errorf("--region=%s: %s runs it too", region, prev)
			}
			regions[region] = w.Name
			if !slices.ContainsFunc(cfg.Agents, func(a checks.Agent) bool { return a.Region == region && a.Name == name }) {
				t.Errorf("--region=%s --name=%s: no agents: entry with that region and name (its own key)", region, name)
			}
			evs := strings.Split(flags["evaluator"], ",")
			slices.Sort(evs)
			if !slices.Equal(evs, peerURLs) {
				t.Errorf("--evaluator=%s: want every evaluator, as peers: lists them: %q", flags["evaluator"], peerURLs)
			}
			checkListen(t, c, flags)
			if sd, ok := flags["spool-dir"]; !ok || !writableUnder(w, sd) {
				t.Errorf("--spool-dir=%s: want it on a writable volume (the root file system is read-only)", sd)
			} else if v := volumeUnder(w, sd); v != nil && v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
				// Over its sizeLimit the pod is evicted and the spool,
				// the one thing it is for, goes with it.
				need := int64(cfg.Reporting.SpoolSize) * int64(len(evs))
				if v.EmptyDir.SizeLimit.Value() <= need {
					t.Errorf("volume %s: sizeLimit %s does not hold a full spool (reporting.spool_size) for each of %d evaluators and the outbox", v.Name, v.EmptyDir.SizeLimit.String(), len(evs))
				}
			}
			env, secretVars := podEnv(t, o, c, w.Name)
			for _, v := range secretVars {
				if ev, ok := evalEnv[v]; ok && ev != env[v] {
					t.Errorf("%s differs from the evaluators' %s: one variable of the configuration, one secret (an agent key that differs has every batch refused)", v, v)
				}
			}
			p, _ := configFile(t, o, w, t.TempDir())
			// Its own key, its checks' credentials, and the notifiers'
			// secrets for its own page when no evaluator answers.
			needs := checks.AgentNeeds(region, name).Union(checks.Needs{Notifiers: true})
			load(t, p, env, needs)
			leastPrivilege(t, p, env, secretVars, needs)
		})
	}
	for _, r := range cfg.Regions {
		if _, ok := regions[r]; !ok {
			t.Errorf("region %s has no agent Deployment: it would be STALE, and page as such", r)
		}
	}
}

func TestServiceMonitor(t *testing.T) {
	o := manifests(t)
	if len(o.ServiceMonitors) == 0 {
		t.Fatal("no ServiceMonitor")
	}
	scraped := map[string]int{}
	for _, sm := range o.ServiceMonitors {
		sel := selector(t, "ServiceMonitor "+sm.Name, &sm.Spec.Selector)
		if len(sm.Spec.NamespaceSelector.MatchNames) > 0 || sm.Spec.NamespaceSelector.Any {
			t.Errorf("ServiceMonitor %s: its own namespace only", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Interval == "" || ep.ScrapeTimeout == "" {
				t.Errorf("ServiceMonitor %s: set interval and scrapeTimeout: a large configuration's /metrics takes seconds", sm.Name)
				continue
			}
			iv, err1 := model.ParseDuration(string(ep.Interval))
			to, err2 := model.ParseDuration(string(ep.ScrapeTimeout))
			if err := errors.Join(err1, err2); err != nil || to > iv {
				t.Errorf("ServiceMonitor %s: scrapeTimeout %s must be a duration within interval %s (%v)", sm.Name, ep.ScrapeTimeout, ep.Interval, err)
			}
		}
		for name, svc := range o.Services {
			if !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			ports := map[string]bool{}
			for _, p := range svc.Spec.Ports {
				ports[p.Name] = true
			}
			for _, ep := range sm.Spec.Endpoints {
				if !ports[ep.Port] {
					t.Errorf("ServiceMonitor %s: Service %s has no port %q", sm.Name, name, ep.Port)
				}
			}
			for _, w := range o.workloads() {
				if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.Template.Labels)) {
					scraped[w.Name]++
				}
			}
		}
	}
	for _, w := range o.workloads() {
		if scraped[w.Name] != 1 {
			t.Errorf("%s is scraped through %d Services, want 1", w, scraped[w.Name])
		}
	}
}
