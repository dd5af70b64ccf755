package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestOpenAPISchema validates every object against Kubernetes' own OpenAPI
// schema, the one kustomize carries (Kubernetes v1.21): required fields
// that typed decoding cannot see missing (a container's name, a port's
// number, a Deployment's selector). Fields newer than that schema are
// not checked by it (typed decoding checks them); the ServiceMonitor, a
// custom resource, has no schema there (typed decoding checks it).
func TestOpenAPISchema(t *testing.T) {
	errs, err := validateOpenAPI(manifestsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// TestOpenAPISchemaCatchesMissingFields guards the guard: a container
// without a name must fail.
func TestOpenAPISchemaCatchesMissingFields(t *testing.T) {
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
        - image: x:1
          ports: [{name: http}]
`,
	})
	errs, err := validateOpenAPI(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"containers[0].name in body is required", "containerPort in body is required"}
	for _, w := range want {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, w) }) {
			t.Errorf("no error about %s: %q", w, errs)
		}
	}
}

// validateOpenAPI builds dir and returns what Kubernetes' OpenAPI schema
// finds wrong with each object.
func validateOpenAPI(dir string) ([]string, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	root := openapi.Schema()
	var errs []string
	for _, r := range m.Resources() {
		what := r.GetKind() + " " + r.GetName()
		rs := openapi.SchemaForResourceType(kyaml.TypeMeta{APIVersion: r.GetApiVersion(), Kind: r.GetKind()})
		if rs == nil {
			if r.GetKind() != "ServiceMonitor" {
				errs = append(errs, what+": no OpenAPI schema for it")
			}
			continue
		}
		obj, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		sch, err := expandRefs(*rs.Schema, root, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: schema: %w", what, err)
		}
		for _, e := range validate.NewSchemaValidator(&sch, nil, "", strfmt.Default).Validate(obj).Errors {
			errs = append(errs, fmt.Sprintf("%s: %v", what, e))
		}
	}
	return errs, nil
}

// expandRefs returns s with every $ref replaced by its definition in root,
// as the validator wants them, and int-or-string fields (an IntOrString
// in Go) as either.
func expandRefs(s spec.Schema, root *spec.Schema, depth int) (spec.Schema, error) {
	if depth > 64 {
		return s, fmt.Errorf("schema nested deeper than 64: a recursive type")
	}
	if ref := s.Ref.String(); ref != "" {
		def, ok := root.Definitions[strings.TrimPrefix(ref, "#/definitions/")]
		if !ok {
			return s, fmt.Errorf("%s: no such definition", ref)
		}
		s = def
	}
	if s.Format == "int-or-string" {
		s.Type, s.Format = nil, ""
		s.AnyOf = []spec.Schema{*spec.Int64Property(), *spec.StringProperty()}
	}
	if len(s.Properties) > 0 {
		props := make(map[string]spec.Schema, len(s.Properties))
		for k, p := range s.Properties {
			var err error
			if props[k], err = expandRefs(p, root, depth+1); err != nil {
				return s, err
			}
		}
		s.Properties = props
	}
	if s.Items != nil && s.Items.Schema != nil {
		it, err := expandRefs(*s.Items.Schema, root, depth+1)
		if err != nil {
			return s, err
		}
		s.Items = &spec.SchemaOrArray{Schema: &it}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		ap, err := expandRefs(*s.AdditionalProperties.Schema, root, depth+1)
		if err != nil {
			return s, err
		}
		s.AdditionalProperties = &spec.SchemaOrBool{Allows: true, Schema: &ap}
	}
	return s, nil
}
