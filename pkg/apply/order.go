package apply

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// Types a restore treats apart from others, by their names as in a backup's manifest.
const (
	crdType                = "customresourcedefinitions.apiextensions.k8s.io"
	namespaceType          = "namespaces"
	volumeType             = "persistentvolumes"
	claimType              = "persistentvolumeclaims"
	storageClassType       = "storageclasses.storage.k8s.io"
	clusterRoleType        = "clusterroles.rbac.authorization.k8s.io"
	clusterRoleBindingType = "clusterrolebindings.rbac.authorization.k8s.io"
)

// restorePriority is the order types are restored in: what others need comes first. Types not listed follow
// Ingresses (other built-in types), then custom resources, then admission webhooks, which could otherwise
// reject the restore's own objects.
var restorePriority = []string{
	crdType,
	namespaceType,
	"priorityclasses.scheduling.k8s.io",
	clusterRoleType,
	clusterRoleBindingType,
	"resourcequotas",
	"limitranges",
	"serviceaccounts",
	"roles.rbac.authorization.k8s.io",
	"rolebindings.rbac.authorization.k8s.io",
	"secrets",
	"configmaps",
	storageClassType,
	volumeType,
	claimType,
	"deployments.apps",
	"statefulsets.apps",
	"daemonsets.apps",
	"replicasets.apps",
	"replicationcontrollers",
	"cronjobs.batch",
	"jobs.batch",
	"pods",
	"services",
	"endpoints",
	"ingressclasses.networking.k8s.io",
	"ingresses.networking.k8s.io",
}

var lastGroups = map[string]bool{"admissionregistration.k8s.io": true}

func rank(t collect.TypeRecord) int {
	name := t.String()
	for i, n := range restorePriority {
		if n == name {
			return i
		}
	}
	switch {
	case lastGroups[t.Group]:
		return len(restorePriority) + 2
	case t.CustomResource:
		return len(restorePriority) + 1
	default:
		return len(restorePriority)
	}
}

// OrderTypes returns the types in restore order: by restorePriority, except that a type whose objects are
// owned by objects of another type comes after that type (owners must exist to keep the references).
// Ownership cycles are broken by priority.
func OrderTypes(types []collect.TypeRecord) []collect.TypeRecord {
	byKind := map[string][]int{}
	for i, t := range types {
		byKind[t.GroupKind()] = append(byKind[t.GroupKind()], i)
	}
	// deps[i] are the types that must come before type i.
	deps := make([]map[int]bool, len(types))
	for i, t := range types {
		deps[i] = map[int]bool{}
		for _, k := range t.OwnerKinds {
			for _, j := range byKind[k] {
				if j != i {
					deps[i][j] = true
				}
			}
		}
	}
	less := func(a, b int) bool {
		ra, rb := rank(types[a]), rank(types[b])
		if ra != rb {
			return ra < rb
		}
		return types[a].String() < types[b].String()
	}
	done := make([]bool, len(types))
	out := make([]collect.TypeRecord, 0, len(types))
	for len(out) < len(types) {
		best, bestReady := -1, false
		for i := range types {
			if done[i] {
				continue
			}
			ready := true
			for j := range deps[i] {
				if !done[j] {
					ready = false
					break
				}
			}
			// Prefer ready types; among them (or, in a cycle, among all) the highest priority.
			if best < 0 || (ready && !bestReady) || (ready == bestReady && less(i, best)) {
				best, bestReady = i, ready
			}
		}
		done[best] = true
		out = append(out, types[best])
	}
	return out
}

// OwnerLevels splits objects of one type into batches so that every object comes after the objects of the
// same batch set that own it: level 0 has no owner among objs, level 1 is owned by level 0, and so on.
// Objects within a level may be applied in parallel. Ownership cycles end up in the deepest level reached.
func OwnerLevels(objs []*unstructured.Unstructured) [][]*unstructured.Unstructured {
	byUID := make(map[string]int, len(objs))
	for i, u := range objs {
		if uid := string(u.GetUID()); uid != "" {
			byUID[uid] = i
		}
	}
	level := make([]int, len(objs))
	for i := range level {
		level[i] = -1
	}
	visiting := map[int]bool{}
	var depth func(i int) int
	depth = func(i int) int {
		if level[i] >= 0 {
			return level[i]
		}
		if visiting[i] {
			return 0 // a cycle
		}
		visiting[i] = true
		d := 0
		for _, ref := range objs[i].GetOwnerReferences() {
			if j, ok := byUID[string(ref.UID)]; ok && j != i {
				d = max(d, depth(j)+1)
			}
		}
		delete(visiting, i)
		level[i] = d
		return d
	}
	if len(objs) == 0 {
		return nil
	}
	maxLevel := 0
	for i := range objs {
		maxLevel = max(maxLevel, depth(i))
	}
	out := make([][]*unstructured.Unstructured, maxLevel+1)
	for i, u := range objs {
		out[level[i]] = append(out[level[i]], u)
	}
	return out
}
