package testbed

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

var crds = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// KubeVirtCRDs defines KubeVirt's VirtualMachines and VirtualMachineInstances and CDI's DataVolumes, with
// schemas that keep any field, and waits until they are served. KubeVirt itself (virt-api, virt-controller,
// virt-handler and QEMU in virt-launcher pods) does not run on this API server: the objects are stored, no
// VM runs, and KubeVirt's subresources.kubevirt.io API (freeze, unfreeze) is not served.
func (c *Cluster) KubeVirtCRDs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dyn := c.Dynamic(t)
	for _, kind := range []string{"kubevirt.io/v1/VirtualMachine", "kubevirt.io/v1/VirtualMachineInstance", "cdi.kubevirt.io/v1beta1/DataVolume"} {
		parts := strings.Split(kind, "/")
		group, version, k := parts[0], parts[1], parts[2]
		plural := strings.ToLower(k) + "s"
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": plural + "." + group},
			"spec": map[string]any{
				"group": group, "scope": "Namespaced",
				"names": map[string]any{"plural": plural, "singular": strings.ToLower(k), "kind": k},
				"versions": []any{map[string]any{"name": version, "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
			},
		}}
		if _, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create the %s CRD: %v", k, err)
		}
		gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("the %s CRD is not served: %v", k, err)
		}
	}
}
