// Package manifests embeds what `kubectl pxb install` applies: the namespace, the generated CRDs, the job
// runner's ServiceAccount and RBAC, the roles of teams, the admission policies that keep teams to their
// namespace, and the pxb-config ConfigMap.
package manifests

import "embed"

// TenantFile holds the ClusterRoles aggregated into admin, edit and view for pxb's objects in a namespace.
const TenantFile = "tenant.yaml"

// FS holds namespace.yaml, crds/*.yaml, rbac.yaml, tenant.yaml, policy.yaml and config.yaml.
//
//go:embed namespace.yaml crds/*.yaml rbac.yaml tenant.yaml policy.yaml config.yaml
var FS embed.FS

// Monitoring holds what `kubectl pxb install --monitoring` applies, also usable without it: the
// kube-state-metrics custom-resource-state configuration and the Prometheus rule file.
//
//go:embed monitoring/kube-state-metrics.yaml monitoring/prometheus-rules.yaml
var Monitoring embed.FS

// Files of Monitoring.
const (
	KubeStateMetricsFile = "monitoring/kube-state-metrics.yaml"
	PrometheusRulesFile  = "monitoring/prometheus-rules.yaml"
)

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
	return append(files, "rbac.yaml", TenantFile, "policy.yaml", "config.yaml"), nil
}
