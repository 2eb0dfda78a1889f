package collect

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// derivedTypes are types whose objects the cluster makes by itself (or that describe the cluster rather
// than an application); they are skipped unless named in IncludeResources.
var derivedTypes = map[string]string{
	"events":                                         "events are recorded, not restored",
	"events.events.k8s.io":                           "events are recorded, not restored",
	"endpointslices.discovery.k8s.io":                "made by the EndpointSlice controller",
	"leases.coordination.k8s.io":                     "leader election and heartbeats",
	"nodes":                                          "describe the cluster's machines",
	"csinodes.storage.k8s.io":                        "made by the kubelet",
	"volumeattachments.storage.k8s.io":               "made by the attach controller",
	"csistoragecapacities.storage.k8s.io":            "made by CSI drivers",
	"componentstatuses":                              "describe the control plane",
	"ipaddresses.networking.k8s.io":                  "allocated to Services",
	"servicecidrs.networking.k8s.io":                 "cluster network configuration",
	"certificatesigningrequests.certificates.k8s.io": "short-lived requests",
	"apiservices.apiregistration.k8s.io":             "served APIs of the cluster",
	"pods.metrics.k8s.io":                            "metrics",
	"nodes.metrics.k8s.io":                           "metrics",
}

// controllerOwnedDerived are the types whose objects are recreated by their controller owner.
var controllerOwnedDerived = map[string]bool{
	"pods":                     true,
	"replicasets.apps":         true,
	"controllerrevisions.apps": true,
	"jobs.batch":               true,
	// A VirtualMachine starts a new instance of itself; the running one is not restored.
	"virtualmachineinstances.kubevirt.io": true,
}

// DerivedType reports whether pxb skips t unless asked for it by name, and why.
func DerivedType(t Type) (string, bool) {
	r, ok := derivedTypes[t.String()]
	return r, ok
}

// DerivedObject reports whether u is made by the cluster from another object and would be recreated
// by it, and why. Endpoints are handled by the collector, which knows the Services.
func DerivedObject(t Type, u *unstructured.Unstructured) (string, bool) {
	name := t.String()
	if controllerOwnedDerived[name] {
		for _, ref := range u.GetOwnerReferences() {
			if ref.Controller != nil && *ref.Controller {
				if name == "jobs.batch" && ref.Kind != "CronJob" {
					// Jobs of other controllers (operators) are not recreated by a workload controller.
					continue
				}
				return "owned by " + ref.Kind + " " + ref.Name, true
			}
		}
	}
	switch name {
	case "pods":
		if _, ok := u.GetAnnotations()["kubernetes.io/config.mirror"]; ok {
			return "mirror pod of a static pod", true
		}
	case "secrets":
		if t, _, _ := unstructured.NestedString(u.Object, "type"); t == "kubernetes.io/service-account-token" {
			return "service-account token", true
		}
	case "configmaps":
		if u.GetName() == "kube-root-ca.crt" {
			return "published by the root CA publisher in every namespace", true
		}
	case "clusterroles.rbac.authorization.k8s.io", "clusterrolebindings.rbac.authorization.k8s.io":
		if SystemRBAC(u) {
			return "bootstrap RBAC of the cluster", true
		}
	}
	return "", false
}

// SystemRBAC reports whether a ClusterRole or ClusterRoleBinding belongs to the cluster itself.
func SystemRBAC(u *unstructured.Unstructured) bool {
	if u.GetLabels()["kubernetes.io/bootstrapping"] == "rbac-defaults" {
		return true
	}
	n := u.GetName()
	return len(n) > 7 && n[:7] == "system:"
}
