//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/e2e/framework"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// TestInstall: `kubectl pxb install` sets pxb up, and running it again is harmless.
func TestInstall(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		c.Install(t)
		c.Install(t)
		ctx := framework.Context(t, time.Minute)
		if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, "pxb-system", metav1.GetOptions{}); err != nil {
			t.Fatalf("namespace pxb-system: %v", err)
		}
		for _, kind := range []string{"backups", "restores", "backuplocations", "backupschedules", "schedulepolicies", "rules"} {
			crd, err := c.Dynamic.Resource(crdGVR).Get(ctx, kind+".pxb.dev", metav1.GetOptions{})
			if err != nil {
				t.Errorf("CRD %s.pxb.dev: %v", kind, err)
				continue
			}
			if !established(crd) {
				t.Errorf("CRD %s.pxb.dev is not established", kind)
			}
		}
		cm, err := c.Kube.CoreV1().ConfigMaps("pxb-system").Get(ctx, "pxb-config", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ConfigMap pxb-config: %v", err)
		}
		if !strings.Contains(fmt.Sprint(cm.Data), c.Image) {
			t.Errorf("pxb-config does not name the job image %s: %v", c.Image, cm.Data)
		}
	})
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// TestJobImageProbe: a Job running the pxb-job image reads a Backup through the in-cluster config and writes
// its status.
func TestJobImageProbe(t *testing.T) {
	eachCluster(t, func(t *testing.T, c *framework.Cluster) {
		c.Install(t)
		ns := c.Namespace(t)
		c.ServiceAccount(t, ns, "prober",
			rbacv1.PolicyRule{APIGroups: []string{"pxb.dev"}, Resources: []string{"backups"}, Verbs: []string{"get"}},
			rbacv1.PolicyRule{APIGroups: []string{"pxb.dev"}, Resources: []string{"backups/status"}, Verbs: []string{"get", "update", "patch"}})
		c.Apply(t, ns, fmt.Sprintf(`apiVersion: pxb.dev/v1alpha1
kind: Backup
metadata: {name: probed}
spec: {location: default}
---
apiVersion: batch/v1
kind: Job
metadata: {name: pxb-probe}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: prober
      restartPolicy: Never
      dnsPolicy: Default
      containers:
      - name: pxb-job
        image: %s
        imagePullPolicy: Never
        args: [probe, --resource, backups, --namespace, %s, --name, probed]
`, c.Image, ns))
		c.WaitForJob(t, ns, "pxb-probe", 2*time.Minute)
		gvr := schema.GroupVersionResource{Group: "pxb.dev", Version: "v1alpha1", Resource: "backups"}
		obj, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(framework.Context(t, 30*time.Second), "probed", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get backup: %v", err)
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Probed" && m["status"] == string(corev1.ConditionTrue) {
				return
			}
		}
		t.Fatalf("the Backup has no Probed=True condition after the pxb-job probe: status %v", obj.Object["status"])
	})
}
