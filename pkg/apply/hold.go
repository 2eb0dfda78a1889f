package apply

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/pkg/collect"
)

// AnnotationReplicas on a workload restored scaled to zero keeps the replicas it was backed up with.
const AnnotationReplicas = "pxb.dev/replicas"

// podSpecPaths is where each kind of workload keeps the pod spec whose volumes name its claims.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"VirtualMachine":        {"spec", "template", "spec"},
}

// hold keeps an application from starting on an empty volume where a claim's data did not arrive
// (Options.MissingData): such a claim is not restored, and a workload that mounts one is restored scaled to
// zero (its replicas kept in AnnotationReplicas), suspended or halted, or, when it cannot be held (a Pod, a
// DaemonSet), not restored. u is the rewritten object, in the target namespace. skip says why u is not
// restored; note why it was changed.
func (r *restorer) hold(t collect.TypeRecord, u *unstructured.Unstructured) (skip, note string) {
	missing := r.opts.MissingData
	if len(missing) == 0 || !t.Namespaced {
		return "", ""
	}
	ns := u.GetNamespace()
	if t.Group == "" && t.Kind == "PersistentVolumeClaim" {
		if why, ok := missing[ns+"/"+u.GetName()]; ok {
			return "not restored: its data did not arrive (" + why + "); an empty claim would let its application start without it", ""
		}
		return "", ""
	}
	path, ok := podSpecPaths[t.Kind]
	if !ok || (t.Kind == "VirtualMachine") != (t.Group == "kubevirt.io") {
		return "", ""
	}
	claim := r.missingClaim(t, u, path)
	if claim == "" {
		return "", ""
	}
	why := "it mounts claim " + ns + "/" + claim + ", whose data did not arrive (" + missing[ns+"/"+claim] + ")"
	switch t.Kind {
	case "Deployment", "ReplicaSet", "StatefulSet", "ReplicationController":
		replicas, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		if !found {
			replicas = 1
		}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationReplicas] = strconv.FormatInt(replicas, 10)
		u.SetAnnotations(ann)
		_ = unstructured.SetNestedField(u.Object, int64(0), "spec", "replicas")
		return "", fmt.Sprintf("scaled to 0 (from %d, kept in %s): %s", replicas, AnnotationReplicas, why)
	case "Job", "CronJob":
		_ = unstructured.SetNestedField(u.Object, true, "spec", "suspend")
		return "", "suspended: " + why
	case "VirtualMachine":
		unstructured.RemoveNestedField(u.Object, "spec", "running")
		_ = unstructured.SetNestedField(u.Object, "Halted", "spec", "runStrategy")
		return "", "halted: " + why
	}
	return "not restored: " + why, ""
}

// missingClaim is a claim of u's pod spec (at path) whose data did not arrive, if any: one named by a
// volume, or one a StatefulSet makes from its claim templates (TEMPLATE-NAME-ORDINAL).
func (r *restorer) missingClaim(t collect.TypeRecord, u *unstructured.Unstructured, path []string) string {
	ns := u.GetNamespace()
	volumes, _, _ := unstructured.NestedSlice(u.Object, append(append([]string{}, path...), "volumes")...)
	for _, v := range volumes {
		m, _ := v.(map[string]any)
		for _, source := range [][]string{{"persistentVolumeClaim", "claimName"}, {"dataVolume", "name"}} {
			if name, _, _ := unstructured.NestedString(m, source...); name != "" {
				if _, ok := r.opts.MissingData[ns+"/"+name]; ok {
					return name
				}
			}
		}
	}
	if t.Kind != "StatefulSet" {
		return ""
	}
	templates, _, _ := unstructured.NestedSlice(u.Object, "spec", "volumeClaimTemplates")
	var found []string
	for _, tmpl := range templates {
		name, _, _ := unstructured.NestedString(tmpl.(map[string]any), "metadata", "name")
		prefix := ns + "/" + name + "-" + u.GetName() + "-"
		for key := range r.opts.MissingData {
			if ordinal, ok := strings.CutPrefix(key, prefix); ok {
				if _, err := strconv.Atoi(ordinal); err == nil {
					found = append(found, strings.TrimPrefix(key, ns+"/"))
				}
			}
		}
	}
	sort.Strings(found)
	if len(found) > 0 {
		return found[0]
	}
	return ""
}
