package install

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

func TestObjectsOrderLabelsAndConfig(t *testing.T) {
	objs, err := Objects(Options{Image: "registry.example/pxb-job:v1.2.3", Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if got := o.GetLabels()[VersionLabel]; got != "v1.2.3" {
			t.Errorf("%s %s: version label %q, want v1.2.3", o.GetKind(), o.GetName(), got)
		}
		if got := o.GetLabels()[ManagedByLabel]; got != ManagedBy {
			t.Errorf("%s %s: managed-by label %q, want %s", o.GetKind(), o.GetName(), got, ManagedBy)
		}
	}
	want := []string{"Namespace",
		"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
		"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
		// The role to read everything, then an identity per kind of Job, then the reconciler's.
		"ClusterRole", "ClusterRoleBinding",
		"ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", // pxb-backup
		"ServiceAccount", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", // pxb-restore, pxb-cluster-restore
		"ClusterRole", "ClusterRoleBinding", // teams' restore writers
		"ServiceAccount", "ClusterRoleBinding", "Role", "RoleBinding", // pxb-cluster-writer
		"ServiceAccount", "ClusterRole", "ClusterRoleBinding", // pxb-mover
		"ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", // pxb-location
		"ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", // pxb-schedule
		"ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", // pxb-reconciler
		"ClusterRole", "ClusterRole",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"ConfigMap"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds in order = %v\nwant %v", kinds, want)
	}
	cm := objs[len(objs)-1]
	// Install applies only the keys it owns, so that settings made by others survive an upgrade.
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if len(data) != 2 || data[ConfigJobImage] != "registry.example/pxb-job:v1.2.3" || data[ConfigVersion] != "v1.2.3" {
		t.Errorf("pxb-config data = %v, want only jobImage and version", data)
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != v1alpha1.SystemNamespace {
			t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), ns, v1alpha1.SystemNamespace)
		}
	}
}

func TestObjectsDefaultImageFollowsVersion(t *testing.T) {
	objs, err := Objects(Options{Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	cm := objs[len(objs)-1]
	if got, _, _ := unstructured.NestedString(cm.Object, "data", ConfigJobImage); got != DefaultImage() {
		t.Errorf("default jobImage = %q, want %q", got, DefaultImage())
	}
}

func TestCRDNamesCoverTheAPI(t *testing.T) {
	objs, err := Objects(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range v1alpha1.AllResources {
		want = append(want, r.Resource+"."+r.Group)
	}
	got := CRDNames(objs)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("CRDs = %v, want %v", got, want)
	}
}

// TestRBACGrantsNoEscapeHatch guards the least-privilege promise of manifests/rbac.yaml: no rule writes
// objects of every type, touches non-resource URLs or wipes collections; impersonation is of the two restore
// writers alone, by name, and bind of `edit` alone. (What pxb-cluster-writer may do comes from its binding to
// cluster-admin, which TestEachIdentityMayDoOnlyItsWork shows no Job identity reaches but pxb-cluster-restore.)
func TestRBACGrantsNoEscapeHatch(t *testing.T) {
	objs, err := Objects(Options{})
	if err != nil {
		t.Fatal(err)
	}
	writers := []string{v1alpha1.RestoreWriterServiceAccount, v1alpha1.ClusterWriterServiceAccount}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		if len(rules) == 0 {
			t.Errorf("%s %s has no rules", o.GetKind(), o.GetName())
		}
		for i, r := range rules {
			rule := r.(map[string]any)
			if _, ok := rule["nonResourceURLs"]; ok {
				t.Errorf("%s %s rule %d grants nonResourceURLs", o.GetKind(), o.GetName(), i)
			}
			verbs, _, _ := unstructured.NestedStringSlice(rule, "verbs")
			resources, _, _ := unstructured.NestedStringSlice(rule, "resources")
			names, _, _ := unstructured.NestedStringSlice(rule, "resourceNames")
			for _, v := range verbs {
				switch {
				case v == "*" || v == "deletecollection" || v == "escalate":
					t.Errorf("%s %s rule %d grants %q", o.GetKind(), o.GetName(), i, v)
				case v == "impersonate" && (!slices.Equal(resources, []string{"serviceaccounts"}) || len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return !slices.Contains(writers, n) })):
					t.Errorf("%s %s rule %d impersonates %v %v, not a restore writer by name", o.GetKind(), o.GetName(), i, resources, names)
				case v == "bind" && !slices.Equal(names, []string{"edit"}):
					t.Errorf("%s %s rule %d binds %v, not edit alone", o.GetKind(), o.GetName(), i, names)
				case v != "get" && v != "list" && v != "watch" && slices.Contains(resources, "*"):
					t.Errorf("%s %s rule %d grants %q on every resource", o.GetKind(), o.GetName(), i, v)
				}
			}
		}
	}
}

// TestTenantRole checks the roles teams get: aggregated into admin and edit (pxb-tenant) and view
// (pxb-tenant-view), never a status subresource, and none with --tenant-role=none.
func TestTenantRole(t *testing.T) {
	aggregated := map[string]string{}
	objs, err := Objects(Options{TenantRole: TenantRoleAggregate})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" || !strings.HasPrefix(o.GetName(), "pxb-tenant") {
			continue
		}
		var to []string
		for _, role := range []string{"admin", "edit", "view"} {
			if o.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+role] == "true" {
				to = append(to, role)
			}
		}
		aggregated[o.GetName()] = strings.Join(to, ",")
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
			for _, res := range resources {
				if strings.Contains(res, "/") || res == "backuplocations" || res == "schedulepolicies" {
					t.Errorf("%s grants %s", o.GetName(), res)
				}
			}
		}
	}
	if want := map[string]string{"pxb-tenant": "admin,edit", "pxb-tenant-view": "view"}; !maps.Equal(aggregated, want) {
		t.Errorf("tenant roles aggregated into %v, want %v", aggregated, want)
	}
	none, err := Objects(Options{TenantRole: TenantRoleNone})
	if err != nil {
		t.Fatal(err)
	}
	if len(none) != len(objs)-2 {
		t.Errorf("--tenant-role=none renders %d objects, want the %d of aggregate but the two roles", len(none), len(objs))
	}
	for _, o := range none {
		if strings.HasPrefix(o.GetName(), "pxb-tenant") {
			t.Errorf("--tenant-role=none renders %s %s", o.GetKind(), o.GetName())
		}
	}
	if _, err := Objects(Options{TenantRole: "bind"}); err == nil || !strings.Contains(err.Error(), "want aggregate or none") {
		t.Errorf("tenant role bind: %v, want a refusal", err)
	}
}

func TestDecodeRejectsObjectsWithoutKind(t *testing.T) {
	if _, err := decode([]byte("---\napiVersion: v1\nmetadata:\n  name: x\n")); err == nil {
		t.Fatal("decode accepted an object without kind")
	}
	objs, err := decode([]byte("---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"))
	if err != nil || len(objs) != 2 || objs[1].GetName() != "b" {
		t.Fatalf("decode of two documents = %d objects, %v", len(objs), err)
	}
}
