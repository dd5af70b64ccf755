package validate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifestsDir is the kustomization under test.
const manifestsDir = ".."

// objects is everything the kustomization builds, decoded.
type objects struct {
	Namespaces      []*corev1.Namespace
	Secrets         map[string]*corev1.Secret
	ConfigMaps      map[string]*corev1.ConfigMap
	Services        map[string]*corev1.Service
	StatefulSets    []*appsv1.StatefulSet
	Deployments     []*appsv1.Deployment
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceMonitors []*monitoringv1.ServiceMonitor
	// Namespaced are the metadata of every namespaced object.
	Namespaced []namespacedObject
}

type namespacedObject struct{ Kind, Name, Namespace string }

// kinds are the objects the manifests may hold, each with the one
// apiVersion it must be written in. Any other kind fails the test: a new
// kind needs its typed decoding here first.
var kinds = map[string]string{
	"Namespace":           "v1",
	"Secret":              "v1",
	"ConfigMap":           "v1",
	"Service":             "v1",
	"StatefulSet":         "apps/v1",
	"Deployment":          "apps/v1",
	"PodDisruptionBudget": "policy/v1",
	"ServiceMonitor":      "monitoring.coreos.com/v1",
}

var built = sync.OnceValues(func() (*objects, error) { return build(manifestsDir) })

// manifests returns the built objects, failing t if they do not build or
// decode.
func manifests(t *testing.T) *objects {
	t.Helper()
	o, err := built()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// build runs kustomize on dir as "kubectl apply -k" does and decodes each
// object strictly: an unknown or misspelt field, a wrong type or a
// duplicate key is an error, where kubectl would only warn (or, for a
// field the server drops, say nothing).
func build(dir string) (*objects, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	o := &objects{Secrets: map[string]*corev1.Secret{}, ConfigMaps: map[string]*corev1.ConfigMap{}, Services: map[string]*corev1.Service{}}
	for _, r := range m.Resources() {
		kind, name := r.GetKind(), r.GetName()
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, name, err)
		}
		want, ok := kinds[kind]
		if !ok {
			return nil, fmt.Errorf("%s %s: no typed check for this kind; add it to kinds", kind, name)
		}
		if got := r.GetApiVersion(); got != want {
			return nil, fmt.Errorf("%s %s: apiVersion %q, want %q", kind, name, got, want)
		}
		var into any
		switch kind {
		case "Namespace":
			v := &corev1.Namespace{}
			o.Namespaces = append(o.Namespaces, v)
			into = v
		case "Secret":
			v := &corev1.Secret{}
			o.Secrets[name] = v
			into = v
		case "ConfigMap":
			v := &corev1.ConfigMap{}
			o.ConfigMaps[name] = v
			into = v
		case "Service":
			v := &corev1.Service{}
			o.Services[name] = v
			into = v
		case "StatefulSet":
			v := &appsv1.StatefulSet{}
			o.StatefulSets = append(o.StatefulSets, v)
			into = v
		case "Deployment":
			v := &appsv1.Deployment{}
			o.Deployments = append(o.Deployments, v)
			into = v
		case "PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			o.PDBs = append(o.PDBs, v)
			into = v
		case "ServiceMonitor":
			v := &monitoringv1.ServiceMonitor{}
			o.ServiceMonitors = append(o.ServiceMonitors, v)
			into = v
		}
		if err := yaml.UnmarshalStrict(y, into); err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, name, err)
		}
		if kind != "Namespace" {
			o.Namespaced = append(o.Namespaced, namespacedObject{kind, name, r.GetNamespace()})
		}
	}
	return o, nil
}

// TestStrictDecodingCatchesTypos guards the guard: a misspelt field in a
// manifest must fail the build above, not pass as a field the API server
// would drop.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kustomization.yaml": "resources: [deployment.yaml]\n",
		"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: x:1
          readinessProbe: {httpGet: {path: /healthz, port: 1}, periodSecond: 10}
`,
	})
	_, err := build(dir)
	if err == nil {
		t.Fatal("a Deployment with periodSecond (for periodSeconds) decoded without error")
	}
	t.Logf("refused as it should be: %v", err)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// outpostBin is the outpost binary the tests run: OUTPOST_BIN, else one
// built from the repository into a temporary directory.
var outpostBin = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("OUTPOST_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "outpost-k8s-validate")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "outpost")
	// Built in the repository's own module, so that CI's build cache
	// serves it.
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/outpost")
	cmd.Dir = filepath.Join(manifestsDir, "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/outpost: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	p, err := outpostBin()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// builtDir is where outpostBin built the binary, if it did.
var builtDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}
