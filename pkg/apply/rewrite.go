package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// Rewriter turns a backed-up object into the object to create in the target cluster.
type Rewriter struct {
	BackupName          string
	RestoreName         string
	NamespaceMapping    map[string]string
	StorageClassMapping map[string]string
	// KeepVolume reports whether a PersistentVolume is restored (or exists) under this name, so that a
	// claim bound to it keeps its binding; other claims are provisioned anew.
	KeepVolume func(name string) bool
	// ClaimVolumes binds restored claims ("namespace/name" in the target) to the volumes named here, which
	// the restore filled with the backed-up data beforehand.
	ClaimVolumes map[string]string
}

// Namespace maps a source namespace to the target one.
func (rw *Rewriter) Namespace(ns string) string {
	if to, ok := rw.NamespaceMapping[ns]; ok {
		return to
	}
	return ns
}

func (rw *Rewriter) storageClass(sc string) string {
	if to, ok := rw.StorageClassMapping[sc]; ok {
		return to
	}
	return sc
}

// labels adds the backup and restore labels to l.
func (rw *Rewriter) labels(l map[string]string) map[string]string {
	if l == nil {
		l = map[string]string{}
	}
	if rw.BackupName != "" {
		l[LabelBackup] = rw.BackupName
	}
	if rw.RestoreName != "" {
		l[LabelRestore] = rw.RestoreName
	}
	return l
}

// serverSet are the metadata fields the API server sets; a create carrying them is rejected or misleading.
var serverSet = []string{"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
	"deletionGracePeriodSeconds", "generation", "managedFields", "selfLink"}

// PVC annotations that record a binding or provisioning in progress; a restored claim starts afresh.
var claimBindingAnnotations = []string{
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.beta.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/selected-node",
}

// Rewrite changes u in place into the object to create. Owner references are left to the caller, which
// knows the new owners' UIDs. A non-empty result means u is not restored, and why.
func (rw *Rewriter) Rewrite(t collect.TypeRecord, u *unstructured.Unstructured) (skip string) {
	for _, f := range serverSet {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	sourceNS := u.GetNamespace()
	if t.Namespaced {
		u.SetNamespace(rw.Namespace(sourceNS))
	}
	if l := rw.labels(u.GetLabels()); len(l) > 0 {
		u.SetLabels(l)
	}
	// Custom resources without a status subresource keep status as an ordinary field; built-in types
	// recompute it.
	if !t.CustomResource {
		unstructured.RemoveNestedField(u.Object, "status")
	}
	switch t.String() {
	case namespaceType:
		u.SetName(rw.Namespace(u.GetName()))
	case "services":
		rw.service(u, sourceNS)
	case "pods":
		unstructured.RemoveNestedField(u.Object, "spec", "nodeName")
	case "jobs.batch":
		// The Job controller generates the selector from the Job's UID, which changes.
		unstructured.RemoveNestedField(u.Object, "spec", "selector")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "labels", "controller-uid")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "labels", "batch.kubernetes.io/controller-uid")
		unstructured.RemoveNestedField(u.Object, "metadata", "labels", "controller-uid")
		unstructured.RemoveNestedField(u.Object, "metadata", "labels", "batch.kubernetes.io/controller-uid")
	case claimType:
		rw.claim(u)
	case volumeType:
		if _, ok := u.GetAnnotations()["pv.kubernetes.io/provisioned-by"]; ok {
			return "dynamically provisioned: its claim is provisioned anew"
		}
		rw.volume(u)
	case "rolebindings.rbac.authorization.k8s.io", clusterRoleBindingType:
		if targets := rw.subjects(u); len(targets) > 0 && u.GetNamespace() == sourceNS {
			// The binding stays beside the original (cluster-scoped, or in a namespace not mapped) while its
			// subjects move: under the original's name it would take the original's permissions away (update,
			// replace) or be retained and leave the copy without them. It gets a name of its own.
			u.SetName(derivedName(u.GetName(), targets))
		}
	case "datavolumes.cdi.kubevirt.io":
		rw.dataVolume(u.Object, "spec")
		// The claim of the DataVolume is restored with its data: CDI is to adopt it, not import again.
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[annPrePopulated] = u.GetName()
		u.SetAnnotations(ann)
	case "virtualmachines.kubevirt.io":
		rw.virtualMachine(u, sourceNS)
	}
	return ""
}

// annPrePopulated tells CDI that a DataVolume's claim already holds its data.
const annPrePopulated = "cdi.kubevirt.io/storage.prePopulated"

// dataVolume maps the storage class of the DataVolume spec at path in obj.
func (rw *Rewriter) dataVolume(obj map[string]any, path ...string) {
	for _, claim := range []string{"pvc", "storage"} {
		f := append(append([]string{}, path...), claim, "storageClassName")
		if sc, found, _ := unstructured.NestedString(obj, f...); found && sc != "" {
			_ = unstructured.SetNestedField(obj, rw.storageClass(sc), f...)
		}
	}
}

func (rw *Rewriter) virtualMachine(u *unstructured.Unstructured, sourceNS string) {
	if templates, found, _ := unstructured.NestedSlice(u.Object, "spec", "dataVolumeTemplates"); found {
		for _, t := range templates {
			if m, ok := t.(map[string]any); ok {
				rw.dataVolume(m, "spec")
			}
		}
		_ = unstructured.SetNestedSlice(u.Object, templates, "spec", "dataVolumeTemplates")
	}
	if rw.Namespace(sourceNS) == sourceNS {
		return
	}
	// A copy in another namespace may run beside the original: it gets MAC addresses and a firmware UUID of
	// its own.
	unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "domain", "firmware", "uuid")
	ifaces, found, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "domain", "devices", "interfaces")
	if !found {
		return
	}
	for _, i := range ifaces {
		if m, ok := i.(map[string]any); ok {
			delete(m, "macAddress")
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, ifaces, "spec", "template", "spec", "domain", "devices", "interfaces")
}

func (rw *Rewriter) service(u *unstructured.Unstructured, sourceNS string) {
	// Cluster IPs are allocated anew, except "None", which makes a headless Service.
	if ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP"); ip != "None" {
		unstructured.RemoveNestedField(u.Object, "spec", "clusterIP")
		unstructured.RemoveNestedField(u.Object, "spec", "clusterIPs")
	}
	if rw.Namespace(sourceNS) == sourceNS {
		return
	}
	// A copy in another namespace cannot take the node ports the original still holds.
	unstructured.RemoveNestedField(u.Object, "spec", "healthCheckNodePort")
	ports, found, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
	if !found {
		return
	}
	for _, p := range ports {
		if m, ok := p.(map[string]any); ok {
			delete(m, "nodePort")
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, ports, "spec", "ports")
}

func (rw *Rewriter) claim(u *unstructured.Unstructured) {
	ann := u.GetAnnotations()
	for _, a := range claimBindingAnnotations {
		delete(ann, a)
	}
	if sc, ok := ann["volume.beta.kubernetes.io/storage-class"]; ok {
		ann["volume.beta.kubernetes.io/storage-class"] = rw.storageClass(sc)
	}
	u.SetAnnotations(ann)
	if sc, found, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); found && sc != "" {
		_ = unstructured.SetNestedField(u.Object, rw.storageClass(sc), "spec", "storageClassName")
	}
	if pv, ok := rw.ClaimVolumes[u.GetNamespace()+"/"+u.GetName()]; ok {
		_ = unstructured.SetNestedField(u.Object, pv, "spec", "volumeName")
		// A claim made from a snapshot or another claim would be provisioned anew, not bound.
		unstructured.RemoveNestedField(u.Object, "spec", "dataSource")
		unstructured.RemoveNestedField(u.Object, "spec", "dataSourceRef")
		return
	}
	if vn, _, _ := unstructured.NestedString(u.Object, "spec", "volumeName"); vn != "" && (rw.KeepVolume == nil || !rw.KeepVolume(vn)) {
		unstructured.RemoveNestedField(u.Object, "spec", "volumeName")
	}
}

func (rw *Rewriter) volume(u *unstructured.Unstructured) {
	if sc, found, _ := unstructured.NestedString(u.Object, "spec", "storageClassName"); found && sc != "" {
		_ = unstructured.SetNestedField(u.Object, rw.storageClass(sc), "spec", "storageClassName")
	}
	if _, found, _ := unstructured.NestedMap(u.Object, "spec", "claimRef"); !found {
		return
	}
	// The claim is bound again by namespace and name; its UID and version are new.
	unstructured.RemoveNestedField(u.Object, "spec", "claimRef", "uid")
	unstructured.RemoveNestedField(u.Object, "spec", "claimRef", "resourceVersion")
	if ns, _, _ := unstructured.NestedString(u.Object, "spec", "claimRef", "namespace"); ns != "" {
		_ = unstructured.SetNestedField(u.Object, rw.Namespace(ns), "spec", "claimRef", "namespace")
	}
}

// subjects maps the namespaces of a binding's ServiceAccount subjects and returns the target namespaces of
// those it mapped, sorted.
func (rw *Rewriter) subjects(u *unstructured.Unstructured) (targets []string) {
	subjects, found, _ := unstructured.NestedSlice(u.Object, "subjects")
	if !found {
		return nil
	}
	for _, s := range subjects {
		m, ok := s.(map[string]any)
		if !ok || m["kind"] != "ServiceAccount" {
			continue
		}
		if ns, _ := m["namespace"].(string); ns != "" && rw.Namespace(ns) != ns {
			m["namespace"] = rw.Namespace(ns)
			targets = append(targets, rw.Namespace(ns))
		}
	}
	_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
	slices.Sort(targets)
	return slices.Compact(targets)
}

// derivedName is the name a restore gives its copy of the binding name, whose subjects it mapped into the
// namespaces targets: the name and the targets joined by "-", or, past the 253 characters most object names
// may have, its beginning and a hash of the whole.
func derivedName(name string, targets []string) string {
	n := name + "-" + strings.Join(targets, "-")
	if len(n) <= validation.DNS1123SubdomainMaxLength {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	hash := hex.EncodeToString(sum[:8])
	return strings.TrimRight(n[:validation.DNS1123SubdomainMaxLength-len(hash)-1], "-.") + "-" + hash
}

// ClaimNamespace is the namespace of the claim a PersistentVolume is bound to, if any.
func ClaimNamespace(u *unstructured.Unstructured) string {
	ns, _, _ := unstructured.NestedString(u.Object, "spec", "claimRef", "namespace")
	return ns
}
