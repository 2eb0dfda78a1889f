package collect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// builtinGroups are the API groups Kubernetes itself serves; the types of other groups are custom
// resources (or aggregated APIs).
var builtinGroups = map[string]bool{
	"": true, "apps": true, "batch": true, "autoscaling": true, "policy": true,
	"admissionregistration.k8s.io": true, "apiextensions.k8s.io": true, "apiregistration.k8s.io": true,
	"certificates.k8s.io": true, "coordination.k8s.io": true, "discovery.k8s.io": true, "events.k8s.io": true,
	"flowcontrol.apiserver.k8s.io": true, "internal.apiserver.k8s.io": true, "networking.k8s.io": true,
	"node.k8s.io": true, "rbac.authorization.k8s.io": true, "resource.k8s.io": true, "scheduling.k8s.io": true,
	"storage.k8s.io": true, "storagemigration.k8s.io": true, "authentication.k8s.io": true,
	"authorization.k8s.io": true, "metrics.k8s.io": true,
}

// BuiltinGroup reports whether group is served by Kubernetes itself.
func BuiltinGroup(group string) bool { return builtinGroups[group] }

// related gathers, while namespaced objects are written, the cluster-scoped objects they need.
type related struct {
	mu               sync.Mutex
	pvs              map[string]bool
	storageClasses   map[string]bool
	crds             map[string]bool
	serviceAccounts  map[string]bool // "namespace/name"
	clusterRoles     map[string]bool
	selectorServices map[string]bool // "namespace/name" of Services with a selector
}

func newRelated() *related {
	return &related{
		pvs: map[string]bool{}, storageClasses: map[string]bool{}, crds: map[string]bool{},
		serviceAccounts: map[string]bool{}, clusterRoles: map[string]bool{}, selectorServices: map[string]bool{},
	}
}

func (r *related) observe(t Type, u *unstructured.Unstructured) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !BuiltinGroup(t.Group) {
		r.crds[t.Resource+"."+t.Group] = true
		return
	}
	switch t.String() {
	case "persistentvolumeclaims":
		if v, _, _ := unstructured.NestedString(u.Object, "spec", "volumeName"); v != "" {
			r.pvs[v] = true
		}
		if sc, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); sc != "" {
			r.storageClasses[sc] = true
		}
	case "persistentvolumes":
		if sc, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); sc != "" {
			r.storageClasses[sc] = true
		}
	case "serviceaccounts":
		r.serviceAccounts[u.GetNamespace()+"/"+u.GetName()] = true
	case "rolebindings.rbac.authorization.k8s.io":
		// A RoleBinding may grant a ClusterRole inside the namespace; the role must exist for it to work.
		if kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind"); kind == "ClusterRole" {
			if n, _, _ := unstructured.NestedString(u.Object, "roleRef", "name"); n != "" {
				r.clusterRoles[n] = true
			}
		}
	case "services":
		if sel, _, _ := unstructured.NestedMap(u.Object, "spec", "selector"); len(sel) > 0 {
			r.selectorServices[u.GetNamespace()+"/"+u.GetName()] = true
		}
	}
}

func (r *related) hasSelectorService(ns, name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.selectorServices[ns+"/"+name]
}

// bindsServiceAccount reports whether a ClusterRoleBinding names one of the included ServiceAccounts.
func (r *related) bindsServiceAccount(u *unstructured.Unstructured) bool {
	subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if !ok || m["kind"] != "ServiceAccount" {
			continue
		}
		ns, _ := m["namespace"].(string)
		name, _ := m["name"].(string)
		if r.serviceAccounts[ns+"/"+name] {
			return true
		}
	}
	return false
}

// collectRelated writes the cluster-scoped objects the namespaced ones need, in an order where each step
// learns what the next needs (PVs name StorageClasses, ClusterRoleBindings name ClusterRoles).
func (c *collector) collectRelated(ctx context.Context) error {
	r := c.related
	// Namespaces.
	w := c.newTypeWriter(namespacesType)
	for _, name := range slices.Sorted(maps.Keys(c.namespaces)) {
		if u := c.namespaces[name]; u != nil {
			if err := w.write(ctx, u); err != nil {
				return err
			}
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	if len(r.serviceAccounts) > 0 && c.served(crbType) && c.rf.Match(crbType) {
		w := c.newTypeWriter(crbType)
		err := c.list(ctx, crbType, "", func(u *unstructured.Unstructured) error {
			if SystemRBAC(u) || !r.bindsServiceAccount(u) || c.written(crbType, u.GetName()) {
				return nil
			}
			if kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind"); kind == "ClusterRole" {
				n, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
				r.mu.Lock()
				r.clusterRoles[n] = true
				r.mu.Unlock()
			}
			return w.write(ctx, u)
		})
		if err := c.endList(w, crbType, err); err != nil {
			return err
		}
	}
	for _, step := range []struct {
		t     Type
		names map[string]bool
	}{{pvType, r.pvs}, {scType, r.storageClasses}, {crType, r.clusterRoles}, {crdType, r.crds}} {
		if len(step.names) == 0 || !c.served(step.t) || !c.rf.Match(step.t) {
			continue
		}
		w := c.newTypeWriter(step.t)
		for _, name := range slices.Sorted(maps.Keys(step.names)) {
			if c.written(step.t, name) {
				continue
			}
			gctx, cancel := context.WithTimeout(ctx, getTimeout)
			u, err := c.dyn.Resource(step.t.GVR()).Get(gctx, name, metav1.GetOptions{})
			cancel()
			switch {
			case apierrors.IsNotFound(err) && step.t.String() == crdType.String():
				// An aggregated API, not a CRD.
				continue
			case apierrors.IsNotFound(err):
				c.warn(fmt.Sprintf("%s %s is referenced but does not exist", step.t, name))
				continue
			case apierrors.IsForbidden(err):
				c.warn(fmt.Sprintf("%s %s not backed up: not permitted to read it", step.t, name))
				continue
			case err != nil:
				c.itemError(ItemError{Resource: step.t.String(), Name: name, Reason: "get: " + err.Error()})
				continue
			}
			if step.t.String() == crType.String() && SystemRBAC(u) {
				continue
			}
			c.related.observe(step.t, u)
			if err := w.write(ctx, u); err != nil {
				w.abort(err)
				return err
			}
		}
		if err := w.close(); err != nil {
			return err
		}
	}
	return nil
}

func (c *collector) endList(w *typeWriter, t Type, err error) error {
	if err != nil {
		var se storeError
		if errors.As(err, &se) {
			w.abort(err)
			return err
		}
		c.listFailed(t, "", err)
	}
	return w.close()
}

func (c *collector) written(t Type, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clusterW[t.String()+"/"+name]
}

func (c *collector) served(t Type) bool {
	for _, s := range c.types {
		if s.Group == t.Group && s.Resource == t.Resource {
			return true
		}
	}
	return false
}
