// Package validate checks the Kubernetes manifests of examples/kubernetes,
// in its own Go module so that Outpost's module takes on no k8s.io
// dependency. Its tests build the kustomization as "kubectl apply -k" does
// (kustomize's krusty), decode every object strictly into the typed
// k8s.io/api and prometheus-operator structs, check what the API server
// and the scheduler would refuse or silently ignore (selectors, port
// names, probe ports, references to Secrets and ConfigMaps), and check the
// manifests against Outpost itself: the real binary validates the
// ConfigMap's configuration and serves the probes' paths; each role's
// Secret holds what that role's loader needs and nothing more; peers: and
// the agents' --evaluator name the StatefulSet's pods.
//
//	cd examples/kubernetes/validate && go test ./...
//
// OUTPOST_BIN names an outpost binary to use; without it the tests build
// one from the repository.
package validate
