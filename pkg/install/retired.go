package install

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// Retired names what earlier versions installed and this one does not: applying the manifests again would
// leave it, and with it the rights it granted (pxb-job-restore let restore Jobs write anything, the Role
// pxb-mover let movers read every Secret of pxb-system). Install and
// uninstall delete it.
func Retired() []*unstructured.Unstructured {
	ref := func(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(namespace)
		u.SetName(name)
		return u
	}
	const rbac = "rbac.authorization.k8s.io/v1"
	return []*unstructured.Unstructured{
		ref("v1", "ServiceAccount", v1alpha1.SystemNamespace, "pxb-job"),
		ref(rbac, "Role", v1alpha1.SystemNamespace, "pxb-job"),
		ref(rbac, "RoleBinding", v1alpha1.SystemNamespace, "pxb-job"),
		ref(rbac, "ClusterRole", "", "pxb-job"),
		ref(rbac, "ClusterRoleBinding", "", "pxb-job"),
		ref(rbac, "ClusterRole", "", "pxb-job-restore"),
		ref(rbac, "ClusterRoleBinding", "", "pxb-job-restore"),
		// Movers read their location's Secrets from files the kubelet mounts, not through the API.
		ref(rbac, "Role", v1alpha1.SystemNamespace, "pxb-mover"),
		ref(rbac, "RoleBinding", v1alpha1.SystemNamespace, "pxb-mover"),
	}
}

// writerLabel marks the ServiceAccount and RoleBinding a team's first restore makes in its namespace.
const writerLabel = "app.kubernetes.io/managed-by=pxb"

// RestoreWriters lists, in every namespace, the restore writers and their bindings that teams' restores
// made (a binding a namespace's admin made instead is theirs, and not listed), so that uninstall deletes them.
func (c Client) RestoreWriters(ctx context.Context) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvr := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "serviceaccounts"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	} {
		list, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{
			LabelSelector: writerLabel, FieldSelector: "metadata.name=" + v1alpha1.RestoreWriterServiceAccount})
		if err != nil {
			return nil, fmt.Errorf("list %s of teams' restores: %w", gvr.Resource, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out, nil
}
