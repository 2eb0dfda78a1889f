package install

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/manifests"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Names of what install --monitoring applies in pxb-system.
const (
	// PrometheusRuleName is the PrometheusRule holding pxb's alert rules.
	PrometheusRuleName = "pxb"
	// KubeStateMetricsConfigMap holds the kube-state-metrics configuration for pxb's resources, under
	// KubeStateMetricsKey.
	KubeStateMetricsConfigMap = "pxb-kube-state-metrics"
	KubeStateMetricsKey       = "config.yaml"
)

// PrometheusRuleKind is the kind of the Prometheus operator that install --monitoring needs.
var PrometheusRuleKind = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}

// monitoringObjects are the PrometheusRule with the groups of manifests/monitoring/prometheus-rules.yaml
// and the ConfigMap with manifests/monitoring/kube-state-metrics.yaml, so that the files in the repository
// and what install applies cannot differ.
func monitoringObjects() ([]*unstructured.Unstructured, error) {
	rules, err := manifests.Monitoring.ReadFile(manifests.PrometheusRulesFile)
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := yaml.Unmarshal(rules, &spec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", manifests.PrometheusRulesFile, err)
	}
	ksm, err := manifests.Monitoring.ReadFile(manifests.KubeStateMetricsFile)
	if err != nil {
		return nil, err
	}
	rule := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	rule.SetGroupVersionKind(PrometheusRuleKind)
	rule.SetName(PrometheusRuleName)
	rule.SetNamespace(v1alpha1.SystemNamespace)
	cm := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{KubeStateMetricsKey: string(ksm)}}}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetName(KubeStateMetricsConfigMap)
	cm.SetNamespace(v1alpha1.SystemNamespace)
	return []*unstructured.Unstructured{cm, rule}, nil
}

// CheckMonitoring fails unless the cluster serves the Prometheus operator's PrometheusRule, naming what is
// missing and what to do without it.
func (c Client) CheckMonitoring() error {
	_, err := c.Mapper.RESTMapping(PrometheusRuleKind.GroupKind(), PrometheusRuleKind.Version)
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("--monitoring needs the Prometheus operator's CustomResourceDefinitions, and the cluster has no %s (prometheusrules.%s): install the Prometheus operator first, or give your Prometheus the rule file %s and kube-state-metrics the configuration %s from pxb's repository yourself",
			PrometheusRuleKind.Kind, PrometheusRuleKind.Group, "manifests/"+manifests.PrometheusRulesFile, "manifests/"+manifests.KubeStateMetricsFile)
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", PrometheusRuleKind, err)
	}
	return nil
}
