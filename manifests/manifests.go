// Package manifests embeds what `kubectl pxb install` applies: the namespace, the generated CRDs, the job
// runner's ServiceAccount and RBAC, and the pxb-config ConfigMap.
package manifests

import "embed"

// FS holds namespace.yaml, crds/*.yaml, rbac.yaml and config.yaml.
//
//go:embed namespace.yaml crds/*.yaml rbac.yaml config.yaml
var FS embed.FS

// Files lists FS's files in the order they are applied: the namespace first, then the types, then the
// objects that live in the namespace or refer to the types.
func Files() ([]string, error) {
	crds, err := FS.ReadDir("crds")
	if err != nil {
		return nil, err
	}
	files := []string{"namespace.yaml"}
	for _, e := range crds {
		files = append(files, "crds/"+e.Name())
	}
	return append(files, "rbac.yaml", "config.yaml"), nil
}
