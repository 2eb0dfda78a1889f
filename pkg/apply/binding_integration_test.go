//go:build integration

package apply_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

// TestMappedRestoreKeepsOriginalBindings copies namespace shop into a new namespace with every existing-object
// policy while the original runs: the original's ClusterRoleBinding, and a RoleBinding of namespace other (not
// mapped) that binds shop's ServiceAccount, stay as they are; the copy's ServiceAccount gets bindings of its
// own under derived names, and with them the permissions. A ClusterRoleBinding of other's ServiceAccount is
// restored under its own name.
func TestMappedRestoreKeepsOriginalBindings(t *testing.T) {
	c := testbed.APIServer(t)
	dyn := c.Dynamic(t)
	cs := c.Clientset(t)
	shop, other := c.Namespace(t), c.Namespace(t)
	id := uniqueID(t)
	ctx := context.Background()
	objs := map[string]*unstructured.Unstructured{}
	for _, doc := range render(`
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"shop","namespace":"{{shop}}"}}
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"agent","namespace":"{{other}}"}}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"{{id}}-nodes"},"rules":[{"apiGroups":[""],"resources":["nodes"],"verbs":["get","list"]}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"{{id}}-nodes"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"{{id}}-nodes"},"subjects":[{"kind":"ServiceAccount","name":"shop","namespace":"{{shop}}"}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"{{id}}-agent"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"{{id}}-nodes"},"subjects":[{"kind":"ServiceAccount","name":"agent","namespace":"{{other}}"}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"peek","namespace":"{{other}}"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"shop-peeks","namespace":"{{other}}"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"peek"},"subjects":[{"kind":"ServiceAccount","name":"shop","namespace":"{{shop}}"}]}`,
		map[string]string{"shop": shop, "other": other, "id": id}) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
		created := createWait(ctx, t, dyn, u)
		t.Cleanup(func() { forceDelete(t, dyn, created) })
		objs[created.GetKind()+" "+created.GetName()] = created
	}
	origCRB, agentCRB, origRB := objs["ClusterRoleBinding "+id+"-nodes"], objs["ClusterRoleBinding "+id+"-agent"], objs["RoleBinding shop-peeks"]
	store := newStore(t)
	// Only these types: a custom resource type another test deleted may still be listed by discovery.
	if res := backup(t, c, store, collect.Options{IncludeNamespaces: []string{shop, other}, BackupName: "b",
		IncludeResources: []string{"namespaces", "serviceaccounts", "clusterroles", "clusterrolebindings", "roles", "rolebindings"}}); res.Phase != collect.PhaseCompleted {
		t.Fatalf("backup phase %s: %v", res.Phase, res.Errors)
	}

	// get returns the binding of kind (namespaced in ns, if set) named name as it is now.
	get := func(kind, ns, name string) *unstructured.Unstructured {
		t.Helper()
		u, err := client(t, dyn, &unstructured.Unstructured{Object: map[string]any{"kind": kind}}, ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s/%s: %v", kind, ns, name, err)
		}
		return u
	}
	subjects := func(u *unstructured.Unstructured) any { return u.Object["subjects"] }
	sa := func(ns, name string) any {
		return []any{map[string]any{"kind": "ServiceAccount", "name": name, "namespace": ns}}
	}
	crbType, rbType := "clusterrolebindings.rbac.authorization.k8s.io", "rolebindings.rbac.authorization.k8s.io"
	copyOf := func(policy apply.Policy, target string, want apply.Outcome) {
		t.Helper()
		name := "r-" + string(policy)
		res, summary := restore(t, c, store, newStore(t), apply.Options{BackupName: "b", RestoreName: name,
			NamespaceMapping: map[string]string{shop: target}, ExistingPolicy: policy})
		if res.Phase != collect.PhaseCompleted {
			t.Errorf("%s: restore phase %s, errors %v", policy, res.Phase, res.Errors)
		}
		// The original's bindings are untouched, and not in the summary.
		for _, orig := range []*unstructured.Unstructured{origCRB, origRB} {
			now := get(orig.GetKind(), orig.GetNamespace(), orig.GetName())
			if now.GetResourceVersion() != orig.GetResourceVersion() || !reflect.DeepEqual(subjects(now), sa(shop, "shop")) ||
				!reflect.DeepEqual(now.Object["roleRef"], orig.Object["roleRef"]) {
				t.Errorf("%s: the original %s %s was changed: version %s (was %s), subjects %v, roleRef %v", policy, orig.GetKind(),
					orig.GetName(), now.GetResourceVersion(), orig.GetResourceVersion(), subjects(now), now.Object["roleRef"])
			}
		}
		for _, k := range []string{crbType + " /" + origCRB.GetName(), rbType + " " + other + "/" + origRB.GetName()} {
			if e, ok := summary[k]; ok {
				t.Errorf("%s: the summary has the original's %s: %+v", policy, k, e)
			}
		}
		// The copy's bindings, named after the original's and the target namespace, bind the copy's
		// ServiceAccount to the same roles.
		for _, tc := range []struct {
			orig          *unstructured.Unstructured
			resource, key string
		}{
			{origCRB, crbType, " /"},
			{origRB, rbType, " " + other + "/"},
		} {
			derived := tc.orig.GetName() + "-" + target
			if e := summary[tc.resource+tc.key+derived]; e.Outcome != want || !strings.Contains(e.Reason, "derived from "+tc.orig.GetName()) {
				t.Errorf("%s: summary of %s %s: %+v, want %s, derived from %s", policy, tc.resource, derived, e, want, tc.orig.GetName())
			}
			copied := get(tc.orig.GetKind(), tc.orig.GetNamespace(), derived)
			if !reflect.DeepEqual(subjects(copied), sa(target, "shop")) || !reflect.DeepEqual(copied.Object["roleRef"], tc.orig.Object["roleRef"]) ||
				copied.GetLabels()[apply.LabelRestore] != name || copied.GetLabels()[apply.LabelBackup] != "b" {
				t.Errorf("%s: %s %s: subjects %v, roleRef %v, labels %v; want the copy's ServiceAccount bound to %v, labelled as restored by %s",
					policy, tc.orig.GetKind(), derived, subjects(copied), copied.Object["roleRef"], copied.GetLabels(), tc.orig.Object["roleRef"], name)
			}
		}
		// A cluster binding of a namespace that is not mapped is restored under its own name.
		agentOutcome := map[apply.Policy]apply.Outcome{apply.PolicyRetain: apply.OutcomeRetained,
			apply.PolicyUpdate: apply.OutcomeUpdated, apply.PolicyReplace: apply.OutcomeReplaced}[policy]
		if e := summary[crbType+" /"+agentCRB.GetName()]; e.Outcome != agentOutcome || strings.Contains(e.Reason, "derived") {
			t.Errorf("%s: summary of %s: %+v, want %s", policy, agentCRB.GetName(), e, agentOutcome)
		}
		if now := get("ClusterRoleBinding", "", agentCRB.GetName()); !reflect.DeepEqual(subjects(now), sa(other, "agent")) {
			t.Errorf("%s: %s subjects %v, want %s's agent", policy, agentCRB.GetName(), subjects(now), other)
		}
		// Both the original's ServiceAccount and the copy's have the permissions.
		for _, user := range []string{"system:serviceaccount:" + shop + ":shop", "system:serviceaccount:" + target + ":shop"} {
			mayDo(t, cs, user, authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"})
			mayDo(t, cs, user, authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: other})
		}
	}
	for _, policy := range []apply.Policy{apply.PolicyUpdate, apply.PolicyReplace, apply.PolicyRetain} {
		target := fmt.Sprintf("copy-%s-%d", policy, time.Now().UnixNano()%1_000_000_000)
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = cs.CoreV1().Namespaces().Delete(cctx, target, metav1.DeleteOptions{})
			_ = cs.RbacV1().ClusterRoleBindings().Delete(cctx, origCRB.GetName()+"-"+target, metav1.DeleteOptions{})
		})
		copyOf(policy, target, apply.OutcomeRestored)
		if policy == apply.PolicyReplace {
			// Restored again, the copy's bindings are found under the same names.
			copyOf(policy, target, apply.OutcomeReplaced)
		}
	}
}

// mayDo waits until the API server allows user attrs; RBAC sees a new binding shortly after it is written.
func mayDo(t *testing.T, cs kubernetes.Interface, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	var last *authorizationv1.SubjectAccessReview
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := cs.AuthorizationV1().SubjectAccessReviews().Create(cctx, review, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		last = out
		return out.Status.Allowed, nil
	})
	if err != nil {
		t.Errorf("%s may not %s %s in %q: %v (last answer %+v)", user, attrs.Verb, attrs.Resource, attrs.Namespace, err, last)
	}
}
