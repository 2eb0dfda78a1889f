package apply

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// clusterScope decides which of a backup's cluster-scoped objects a restore writes. Namespaces and
// PersistentVolumes follow the namespace filter in every mode but Exclude (a volume goes with its claim);
// a target namespace the restore needs and the cluster lacks is created even with Exclude.
type clusterScope struct {
	policy collect.ClusterResources
	// all is Auto over every namespace of the backup, which takes every cluster-scoped object.
	all bool
	// With Auto over some namespaces, the objects related to the restored ones, by type and name.
	related map[string]map[string]bool
}

// newClusterScope works out the scope of r's restore. With Auto over some namespaces it reads the backup's
// claims and ClusterRoleBindings of those namespaces to find the StorageClasses, ClusterRoleBindings and
// ClusterRoles they use; CRDs are related when the restore takes objects of their type.
func newClusterScope(ctx context.Context, r *restorer) *clusterScope {
	s := &clusterScope{policy: r.opts.ClusterResources, all: r.nsFilter.All()}
	if r.opts.Namespace != "" {
		// A restore confined to one namespace writes no cluster-scoped object: Auto and Include are Exclude.
		s.policy = collect.ClusterResourcesNone
	}
	if s.policy != collect.ClusterResourcesAuto || s.all {
		return s
	}
	s.related = map[string]map[string]bool{crdType: {}, storageClassType: {}, clusterRoleType: {}, clusterRoleBindingType: {}}
	for _, t := range r.m.Types {
		if !t.Namespaced || !r.rf.Match(t.Type) {
			continue
		}
		for _, f := range t.Files {
			if r.nsFilter.Match(f.Namespace, nil) && f.Count > 0 {
				s.related[crdType][t.String()] = true
				break
			}
		}
	}
	for _, t := range r.m.Types {
		switch t.String() {
		case claimType, volumeType, clusterRoleBindingType:
		default:
			continue
		}
		for _, f := range t.Files {
			if t.Namespaced && !r.nsFilter.Match(f.Namespace, nil) {
				continue
			}
			objs, err := r.read(ctx, f.Key)
			if err != nil {
				// restoreFile reports the damaged file; the objects it would relate are left out.
				continue
			}
			for _, u := range objs {
				s.relate(t.String(), u, r.nsFilter)
			}
		}
	}
	return s
}

// relate records the cluster-scoped objects u, one of the backup's claims, volumes or ClusterRoleBindings,
// makes related.
func (s *clusterScope) relate(typ string, u *unstructured.Unstructured, ns collect.NamespaceFilter) {
	switch typ {
	case claimType:
		if class, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); class != "" {
			s.related[storageClassType][class] = true
		}
	case volumeType:
		if claimNS := ClaimNamespace(u); claimNS != "" && ns.Match(claimNS, nil) {
			if class, _, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); class != "" {
				s.related[storageClassType][class] = true
			}
		}
	case clusterRoleBindingType:
		subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
		for _, sub := range subjects {
			m, _ := sub.(map[string]any)
			kind, _ := m["kind"].(string)
			subNS, _ := m["namespace"].(string)
			if kind != "ServiceAccount" || subNS == "" || !ns.Match(subNS, nil) {
				continue
			}
			s.related[clusterRoleBindingType][u.GetName()] = true
			if kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind"); kind == "ClusterRole" {
				role, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
				s.related[clusterRoleType][role] = true
			}
			break
		}
	}
}

// takes reports whether the restore writes u, a cluster-scoped object of type t.
func (s *clusterScope) takes(t collect.TypeRecord, u *unstructured.Unstructured) bool {
	switch {
	case s.policy == collect.ClusterResourcesNone:
		return false
	case s.policy == collect.ClusterResourcesAll || s.all:
		return true
	}
	switch t.String() {
	case namespaceType, volumeType:
		// The namespace filter decides (restorer.selected).
		return true
	}
	return s.related[t.String()][u.GetName()]
}

// outside says why u, a namespaced object rewritten for the target, is not written by a restore confined
// to one namespace (Options.Namespace); "" when it may be.
func (r *restorer) outside(t collect.TypeRecord, u *unstructured.Unstructured) string {
	if r.opts.Namespace == "" || !t.Namespaced || u.GetNamespace() == r.opts.Namespace {
		return ""
	}
	return fmt.Sprintf("a restore confined to namespace %s writes nothing into namespace %s", r.opts.Namespace, u.GetNamespace())
}
