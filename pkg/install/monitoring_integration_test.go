//go:build integration

package install_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pxb-dev/pxb/manifests"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
)

// prometheusRuleCRD is the Prometheus operator's PrometheusRule definition, reduced to what the API server
// needs to serve the kind (the operator's own schema validates more).
func prometheusRuleCRD() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "prometheusrules.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com", "scope": "Namespaced",
			"names": map[string]any{"kind": "PrometheusRule", "listKind": "PrometheusRuleList", "plural": "prometheusrules", "singular": "prometheusrule"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

// TestInstallMonitoring: without the Prometheus operator's CRDs install --monitoring says what is missing
// and where the files are; with them it applies the rules and the kube-state-metrics configuration, exactly
// as the repository's files hold them, and uninstall takes them away.
func TestInstallMonitoring(t *testing.T) {
	c, _ := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := newClient(t, c).CheckMonitoring()
	if err == nil || !strings.Contains(err.Error(), "prometheusrules.monitoring.coreos.com") ||
		!strings.Contains(err.Error(), "manifests/monitoring/prometheus-rules.yaml") {
		t.Fatalf("install --monitoring without the Prometheus operator: %v", err)
	}

	crd := prometheusRuleCRD()
	client := newClient(t, c)
	if _, err := client.Apply(ctx, []*unstructured.Unstructured{crd}, false); err != nil {
		t.Fatal(err)
	}
	if err := client.WaitForCRDs(ctx, []string{crd.GetName()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	client = newClient(t, c) // discovery afresh, as a new kubectl pxb would
	if err := client.CheckMonitoring(); err != nil {
		t.Fatal(err)
	}
	objs, err := install.Objects(install.Options{Image: "pxb-job:test", Monitoring: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Apply(ctx, objs, false); err != nil {
		t.Fatalf("install --monitoring: %v", err)
	}

	rule, err := c.Dynamic(t).Resource(install.PrometheusRuleKind.GroupVersion().WithResource("prometheusrules")).
		Namespace(v1alpha1.SystemNamespace).Get(ctx, install.PrometheusRuleName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := manifests.Monitoring.ReadFile(manifests.PrometheusRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rule.Object["spec"], file) {
		t.Errorf("PrometheusRule spec differs from %s:\n%v", manifests.PrometheusRulesFile, rule.Object["spec"])
	}
	if m := rule.GetManagedFields(); len(m) == 0 || m[0].Manager != install.FieldManager {
		t.Errorf("PrometheusRule managed by %v, want %s", m, install.FieldManager)
	}
	cm, err := c.Clientset(t).CoreV1().ConfigMaps(v1alpha1.SystemNamespace).Get(ctx, install.KubeStateMetricsConfigMap, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ksm, err := manifests.Monitoring.ReadFile(manifests.KubeStateMetricsFile)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data[install.KubeStateMetricsKey] != string(ksm) {
		t.Errorf("ConfigMap %s holds %q", cm.Name, cm.Data[install.KubeStateMetricsKey])
	}

	deleted, err := client.Uninstall(ctx, objs[len(objs)-2:], true)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("uninstall the monitoring objects: deleted %d, %v", len(deleted), err)
	}
}
