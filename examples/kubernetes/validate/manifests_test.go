package validate

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// image is the repository every container runs, as the Dockerfile builds
// it and the README names it.
const image = "ghcr.io/outposthq/outpost"

// uid is the Dockerfile's non-root user.
const uid = 65532

// workload is a pod template with the workload that owns it.
type workload struct {
	Kind, Name string
	Selector   *metav1.LabelSelector
	Template   *corev1.PodTemplateSpec
	// Claims are the StatefulSet's volume claim templates, mountable like
	// volumes.
	Claims []string
}

func (o *objects) workloads() []workload {
	var ws []workload
	for _, s := range o.StatefulSets {
		w := workload{Kind: "StatefulSet", Name: s.Name, Selector: s.Spec.Selector, Template: &s.Spec.Template}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.Claims = append(w.Claims, c.Name)
		}
		ws = append(ws, w)
	}
	for _, d := range o.Deployments {
		ws = append(ws, workload{Kind: "Deployment", Name: d.Name, Selector: d.Spec.Selector, Template: &d.Spec.Template})
	}
	return ws
}

func (w workload) String() string { return w.Kind + " " + w.Name }

func selector(t *testing.T, what string, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		t.Fatalf("%s: empty selector (selects everything, or nothing)", what)
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatalf("%s: selector: %v", what, err)
	}
	return sel
}

func TestNamesAndNamespace(t *testing.T) {
	o := manifests(t)
	if len(o.Namespaces) != 1 {
		t.Fatalf("%d Namespace objects, want 1", len(o.Namespaces))
	}
	ns := o.Namespaces[0].Name
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		t.Errorf("Namespace %q: %v", ns, errs)
	}
	for _, obj := range o.Namespaced {
		if obj.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, want %q", obj.Kind, obj.Name, obj.Namespace, ns)
		}
		if errs := validation.IsDNS1123Subdomain(obj.Name); len(errs) > 0 {
			t.Errorf("%s %q: %v", obj.Kind, obj.Name, errs)
		}
	}
	for name := range o.Services {
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			t.Errorf("Service %q: %v", name, errs)
		}
	}
	// A pod's hostname is its name: a label, at most 63 characters.
	for _, s := range o.StatefulSets {
		pod := fmt.Sprintf("%s-%d", s.Name, replicas(s.Spec.Replicas)-1)
		if errs := validation.IsDNS1123Label(pod); len(errs) > 0 {
			t.Errorf("StatefulSet pod %q: %v", pod, errs)
		}
	}
}

func replicas(p *int32) int {
	if p == nil {
		return 1
	}
	return int(*p)
}

func TestWorkloads(t *testing.T) {
	o := manifests(t)
	ws := o.workloads()
	if len(ws) == 0 {
		t.Fatal("no workloads")
	}
	for _, w := range ws {
		t.Run(w.Kind+"/"+w.Name, func(t *testing.T) {
			sel := selector(t, w.String(), w.Selector)
			if !sel.Matches(labels.Set(w.Template.Labels)) {
				t.Errorf("selector %s does not match the template's labels %v", sel, w.Template.Labels)
			}
			for _, other := range ws {
				if other.Name != w.Name && sel.Matches(labels.Set(other.Template.Labels)) {
					t.Errorf("selector %s also matches the pods of %s: the two would fight over them", sel, other)
				}
			}
			checkPodSpec(t, o, w)
		})
	}
}

func checkPodSpec(t *testing.T, o *objects, w workload) {
	spec := &w.Template.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: Outpost never calls the Kubernetes API")
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Error("enableServiceLinks must be false: the environment is what the manifest lists")
	}
	psc := spec.SecurityContext
	switch {
	case psc == nil:
		t.Fatal("no pod securityContext")
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Error("pod securityContext: runAsNonRoot must be true")
	case psc.RunAsUser == nil || *psc.RunAsUser != uid || psc.RunAsGroup == nil || *psc.RunAsGroup != uid:
		t.Errorf("pod securityContext: run as %d:%d, the Dockerfile's user", uid, uid)
	case psc.FSGroup == nil || *psc.FSGroup != uid:
		t.Errorf("pod securityContext: fsGroup %d, so that volumes are writable", uid)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("pod securityContext: seccompProfile RuntimeDefault (Pod Security restricted)")
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		if v.ConfigMap == nil && v.Secret == nil && v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Projected == nil && v.DownwardAPI == nil {
			t.Errorf("volume %s: a type Pod Security restricted refuses", v.Name)
		}
		if v.ConfigMap != nil {
			if _, ok := o.ConfigMaps[v.ConfigMap.Name]; !ok {
				t.Errorf("volume %s: ConfigMap %q is not in the manifests", v.Name, v.ConfigMap.Name)
			}
		}
		if v.Secret != nil {
			if _, ok := o.Secrets[v.Secret.SecretName]; !ok {
				t.Errorf("volume %s: Secret %q is not in the manifests", v.Name, v.Secret.SecretName)
			}
		}
		volumes[v.Name] = v
	}
	if len(spec.InitContainers) > 0 {
		t.Error("init containers: add their checks here first")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want the one outpost container", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		t.Errorf("container name %q: %v", c.Name, errs)
	}
	repo, tag, ok := strings.Cut(c.Image, ":")
	if !ok || repo != image || tag == "" || tag == "latest" {
		t.Errorf("image %q: want %s with a pinned tag (kustomization.yaml images:)", c.Image, image)
	}
	csc := c.SecurityContext
	switch {
	case csc == nil:
		t.Fatal("no container securityContext")
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Error("container securityContext: readOnlyRootFilesystem must be true")
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Error("container securityContext: allowPrivilegeEscalation must be false")
	case csc.Privileged != nil && *csc.Privileged:
		t.Error("container securityContext: privileged")
	case csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0:
		t.Error("container securityContext: capabilities must drop ALL and add none")
	case csc.RunAsUser != nil && *csc.RunAsUser != uid:
		t.Errorf("container securityContext: runAsUser %d, want %d", *csc.RunAsUser, uid)
	}
	checkPorts(t, c)
	checkResources(t, c)
	checkEnv(t, o, c)
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok && !slices.Contains(w.Claims, m.Name) {
			t.Errorf("volumeMount %s: no such volume or volume claim template", m.Name)
		}
		if v, ok := volumes[m.Name]; ok && (v.ConfigMap != nil || v.Secret != nil) && !m.ReadOnly {
			t.Errorf("volumeMount %s: mount configuration and secrets readOnly", m.Name)
		}
	}
}

func checkPorts(t *testing.T, c *corev1.Container) {
	names := map[string]int32{}
	for _, p := range c.Ports {
		if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
			t.Errorf("port %d: name %q: %v", p.ContainerPort, p.Name, errs)
		}
		if errs := validation.IsValidPortNum(int(p.ContainerPort)); len(errs) > 0 {
			t.Errorf("port %s: %v", p.Name, errs)
		}
		if _, dup := names[p.Name]; dup {
			t.Errorf("port name %q used twice", p.Name)
		}
		names[p.Name] = p.ContainerPort
	}
	probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Error("want a livenessProbe and a readinessProbe")
	}
	for what, p := range probes {
		if p == nil {
			continue
		}
		var port intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = p.HTTPGet.Port
			if !strings.HasPrefix(p.HTTPGet.Path, "/") {
				t.Errorf("%s: path %q", what, p.HTTPGet.Path)
			}
		case p.TCPSocket != nil:
			port = p.TCPSocket.Port
		default:
			t.Errorf("%s: only httpGet and tcpSocket probes: the image has no shell to exec in", what)
			continue
		}
		if !portExists(names, port) {
			t.Errorf("%s: port %s is not one of the container's ports %v", what, port.String(), names)
		}
	}
}

func portExists(names map[string]int32, p intstr.IntOrString) bool {
	if p.Type == intstr.String {
		_, ok := names[p.StrVal]
		return ok
	}
	for _, n := range names {
		if n == p.IntVal {
			return true
		}
	}
	return false
}

func checkResources(t *testing.T, c *corev1.Container) {
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("resources: want requests and limits for %s", r)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("resources: %s request %s above its limit %s", r, req.String(), lim.String())
		}
	}
	// GOMEMLIMIT, if set, must leave the collector room below the limit.
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		soft, err := goMemLimit(e.Value)
		if err != nil {
			t.Errorf("GOMEMLIMIT: %v", err)
			continue
		}
		lim := c.Resources.Limits[corev1.ResourceMemory]
		if soft >= lim.Value() {
			t.Errorf("GOMEMLIMIT %s is not below the memory limit %s", e.Value, lim.String())
		}
	}
}

// goMemLimit parses GOMEMLIMIT as the Go runtime does: a number of bytes
// with an optional B, KiB, MiB, GiB or TiB suffix.
func goMemLimit(s string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+)(B|KiB|MiB|GiB|TiB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a byte count the Go runtime reads (such as 450MiB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	unit := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	return n * unit[m[2]], nil
}

// checkEnv checks that every Secret key an env var takes exists, and that
// every $(VAR) in the arguments is defined: Kubernetes would leave an
// undefined one as it is, literally.
func checkEnv(t *testing.T, o *objects, c *corev1.Container) {
	defined := map[string]bool{}
	for _, e := range c.Env {
		if defined[e.Name] {
			t.Errorf("env %s set twice", e.Name)
		}
		defined[e.Name] = true
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref.Optional != nil && *ref.Optional {
			t.Errorf("env %s: an optional Secret key would start the pod without it", e.Name)
		}
		s, ok := o.Secrets[ref.Name]
		if !ok {
			t.Errorf("env %s: Secret %q is not in the manifests", e.Name, ref.Name)
			continue
		}
		if _, ok := secretValue(s, ref.Key); !ok {
			t.Errorf("env %s: Secret %q has no key %q", e.Name, ref.Name, ref.Key)
		}
	}
	if len(c.EnvFrom) > 0 {
		t.Error("envFrom: list each variable, so that a role gets exactly what it is given")
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		for _, m := range varRef.FindAllStringSubmatch(a, -1) {
			if !defined[m[1]] {
				t.Errorf("argument %q: $(%s) is not defined in env", a, m[1])
			}
		}
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func secretValue(s *corev1.Secret, key string) (string, bool) {
	if v, ok := s.StringData[key]; ok {
		return v, true
	}
	v, ok := s.Data[key]
	return string(v), ok
}

func TestServices(t *testing.T) {
	o := manifests(t)
	ws := o.workloads()
	for name, s := range o.Services {
		t.Run(name, func(t *testing.T) {
			sel := labels.SelectorFromSet(s.Spec.Selector)
			if len(s.Spec.Selector) == 0 {
				t.Fatal("no selector")
			}
			var selected []workload
			for _, w := range ws {
				if sel.Matches(labels.Set(w.Template.Labels)) {
					selected = append(selected, w)
				}
			}
			if len(selected) == 0 {
				t.Fatalf("selector %s matches no workload's pods", sel)
			}
			for _, p := range s.Spec.Ports {
				if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
					t.Errorf("port %d: name %q: %v", p.Port, p.Name, errs)
				}
				if errs := validation.IsValidPortNum(int(p.Port)); len(errs) > 0 {
					t.Errorf("port %s: %v", p.Name, errs)
				}
				for _, w := range selected {
					c := &w.Template.Spec.Containers[0]
					names := map[string]int32{}
					for _, cp := range c.Ports {
						names[cp.Name] = cp.ContainerPort
					}
					target := p.TargetPort
					if target.Type == intstr.Int && target.IntVal == 0 {
						target = intstr.FromInt32(p.Port)
					}
					if !portExists(names, target) {
						t.Errorf("port %s: targetPort %s is not a port of %s", p.Name, target.String(), w)
					}
				}
			}
		})
	}
}
