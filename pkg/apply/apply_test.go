package apply

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pxb-dev/pxb/pkg/collect"
)

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{NamespaceMapping: map[string]string{"a": "B_x"}}, `NamespaceMapping a:B_x: "B_x" is not a valid namespace name`},
		{Options{NamespaceMapping: map[string]string{"a": "c", "b": "c"}}, "NamespaceMapping: a and b both map to c"},
		{Options{StorageClassMapping: map[string]string{"fast": "Slow!"}}, `StorageClassMapping fast:Slow!: "Slow!" is not a valid StorageClass name`},
		{Options{ExistingPolicy: "merge"}, `ExistingPolicy "merge": must be retain, replace or update`},
		{Options{Selector: "a in (b"}, "Selector"},
		{Options{RestoreName: "no spaces allowed"}, "RestoreName"},
		{Options{IncludeNamespaces: []string{"UPPER"}}, "IncludeNamespaces"},
		{Options{ExcludeResources: []string{""}}, "ExcludeResources"},
	} {
		err := tc.opts.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.opts, err, tc.want)
		}
	}
}

func rec(group, resource, kind string, namespaced, custom bool, owners ...string) collect.TypeRecord {
	return collect.TypeRecord{Type: collect.Type{Group: group, Version: "v1", Resource: resource, Kind: kind, Namespaced: namespaced},
		CustomResource: custom, OwnerKinds: owners}
}

func names(ts []collect.TypeRecord) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

func TestOrderTypes(t *testing.T) {
	in := []collect.TypeRecord{
		rec("example.com", "widgets", "Widget", true, true),
		rec("networking.k8s.io", "ingresses", "Ingress", true, false),
		rec("", "services", "Service", true, false),
		rec("apps", "deployments", "Deployment", true, false),
		rec("", "persistentvolumeclaims", "PersistentVolumeClaim", true, false),
		rec("", "configmaps", "ConfigMap", true, false),
		rec("", "secrets", "Secret", true, false),
		rec("", "serviceaccounts", "ServiceAccount", true, false),
		rec("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", false, false),
		rec("", "namespaces", "Namespace", false, false),
		rec("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", false, false),
		rec("policy", "poddisruptionbudgets", "PodDisruptionBudget", true, false),
		rec("admissionregistration.k8s.io", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", false, false),
	}
	want := []string{
		"customresourcedefinitions.apiextensions.k8s.io", "namespaces", "clusterroles.rbac.authorization.k8s.io",
		"serviceaccounts", "secrets", "configmaps", "persistentvolumeclaims", "deployments.apps", "services",
		"ingresses.networking.k8s.io", "poddisruptionbudgets.policy", "widgets.example.com",
		"validatingwebhookconfigurations.admissionregistration.k8s.io",
	}
	if got := names(OrderTypes(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("OrderTypes =\n%v\nwant\n%v", got, want)
	}
}

func TestOrderTypesOwnersFirst(t *testing.T) {
	// An operator's custom resource owns ConfigMaps and Deployments: it must exist before them so that
	// their owner references can point at its new UID.
	in := []collect.TypeRecord{
		rec("", "configmaps", "ConfigMap", true, false, "App.example.com"),
		rec("example.com", "apps", "App", true, true),
		rec("apps", "deployments", "Deployment", true, false, "App.example.com"),
		rec("", "secrets", "Secret", true, false),
		// A cycle is broken by priority, not dropped.
		rec("a.example.com", "xs", "X", true, true, "Y.a.example.com"),
		rec("a.example.com", "ys", "Y", true, true, "X.a.example.com"),
	}
	want := []string{"secrets", "apps.example.com", "configmaps", "deployments.apps", "xs.a.example.com", "ys.a.example.com"}
	if got := names(OrderTypes(in)); !reflect.DeepEqual(got, want) {
		t.Errorf("OrderTypes = %v, want %v", got, want)
	}
}

func withOwner(name, uid string, owners ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": name, "uid": uid}}}
	var refs []any
	for _, o := range owners {
		refs = append(refs, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": o})
	}
	if refs != nil {
		u.Object["metadata"].(map[string]any)["ownerReferences"] = refs
	}
	return u
}

func TestOwnerLevels(t *testing.T) {
	leaf := withOwner("leaf", "3", "2")
	mid := withOwner("mid", "2", "1")
	root := withOwner("root", "1")
	loose := withOwner("loose", "4", "elsewhere")
	levels := OwnerLevels([]*unstructured.Unstructured{leaf, mid, root, loose})
	var got [][]string
	for _, l := range levels {
		var ns []string
		for _, u := range l {
			ns = append(ns, u.GetName())
		}
		got = append(got, ns)
	}
	want := [][]string{{"root", "loose"}, {"mid"}, {"leaf"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OwnerLevels = %v, want %v", got, want)
	}
	// A cycle terminates and keeps every object.
	a, b := withOwner("a", "a", "b"), withOwner("b", "b", "a")
	n := 0
	for _, l := range OwnerLevels([]*unstructured.Unstructured{a, b}) {
		n += len(l)
	}
	if n != 2 {
		t.Errorf("OwnerLevels of a cycle kept %d objects, want 2", n)
	}
}

func parse(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(s)); err != nil {
		t.Fatal(err)
	}
	return u
}

func asJSON(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	b, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRewrite(t *testing.T) {
	rw := &Rewriter{
		BackupName: "b1", RestoreName: "r1",
		NamespaceMapping:    map[string]string{"src": "dst"},
		StorageClassMapping: map[string]string{"fast": "ssd"},
		KeepVolume:          func(name string) bool { return name == "static-pv" },
	}
	for _, tc := range []struct {
		name string
		t    collect.TypeRecord
		in   string
		want string
		skip string
	}{
		{"server fields and status go, labels come, namespace maps", rec("", "configmaps", "ConfigMap", true, false),
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"src","uid":"u","resourceVersion":"5","creationTimestamp":"2020-01-01T00:00:00Z","generation":2,"labels":{"app":"x"},"annotations":{"a":"b"}},"data":{"k":"v"},"status":{"x":1}}`,
			`{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"annotations":{"a":"b"},"labels":{"app":"x","pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"c","namespace":"dst"}}`, ""},
		{"custom resources keep status", rec("example.com", "widgets", "Widget", true, true),
			`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"other"},"status":{"ready":true}}`,
			`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"w","namespace":"other"},"status":{"ready":true}}`, ""},
		{"namespace objects are renamed", rec("", "namespaces", "Namespace", false, false),
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"src"},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}`,
			`{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"dst"},"spec":{"finalizers":["kubernetes"]}}`, ""},
		{"services lose cluster IPs and, in another namespace, node ports", rec("", "services", "Service", true, false),
			`{"kind":"Service","metadata":{"name":"s","namespace":"src"},"spec":{"type":"NodePort","clusterIP":"10.0.0.5","clusterIPs":["10.0.0.5"],"ports":[{"port":80,"nodePort":30080}]}}`,
			`{"kind":"Service","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"s","namespace":"dst"},"spec":{"ports":[{"port":80}],"type":"NodePort"}}`, ""},
		{"headless services stay headless, node ports stay in place", rec("", "services", "Service", true, false),
			`{"kind":"Service","metadata":{"name":"s","namespace":"same"},"spec":{"clusterIP":"None","clusterIPs":["None"],"ports":[{"port":80,"nodePort":30080}]}}`,
			`{"kind":"Service","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"s","namespace":"same"},"spec":{"clusterIP":"None","clusterIPs":["None"],"ports":[{"nodePort":30080,"port":80}]}}`, ""},
		{"claims lose binding, map class, keep restored static volumes", rec("", "persistentvolumeclaims", "PersistentVolumeClaim", true, false),
			`{"kind":"PersistentVolumeClaim","metadata":{"name":"p","namespace":"src","annotations":{"pv.kubernetes.io/bind-completed":"yes","volume.kubernetes.io/selected-node":"n1","keep":"me"}},"spec":{"storageClassName":"fast","volumeName":"static-pv"}}`,
			`{"kind":"PersistentVolumeClaim","metadata":{"annotations":{"keep":"me"},"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"p","namespace":"dst"},"spec":{"storageClassName":"ssd","volumeName":"static-pv"}}`, ""},
		{"claims of dynamic volumes are provisioned anew", rec("", "persistentvolumeclaims", "PersistentVolumeClaim", true, false),
			`{"kind":"PersistentVolumeClaim","metadata":{"name":"p","namespace":"src"},"spec":{"storageClassName":"slow","volumeName":"pvc-123"}}`,
			`{"kind":"PersistentVolumeClaim","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"p","namespace":"dst"},"spec":{"storageClassName":"slow"}}`, ""},
		{"static volumes map claimRef and class", rec("", "persistentvolumes", "PersistentVolume", false, false),
			`{"kind":"PersistentVolume","metadata":{"name":"static-pv"},"spec":{"storageClassName":"fast","claimRef":{"kind":"PersistentVolumeClaim","namespace":"src","name":"p","uid":"old","resourceVersion":"9"}},"status":{"phase":"Bound"}}`,
			`{"kind":"PersistentVolume","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"static-pv"},"spec":{"claimRef":{"kind":"PersistentVolumeClaim","name":"p","namespace":"dst"},"storageClassName":"ssd"}}`, ""},
		{"dynamic volumes are skipped", rec("", "persistentvolumes", "PersistentVolume", false, false),
			`{"kind":"PersistentVolume","metadata":{"name":"pvc-123","annotations":{"pv.kubernetes.io/provisioned-by":"csi"}}}`,
			"", "dynamically provisioned: its claim is provisioned anew"},
		{"cluster binding subjects map, under a name of its own", rec("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", false, false),
			`{"kind":"ClusterRoleBinding","metadata":{"name":"b"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"src"},{"kind":"User","name":"u"},{"kind":"ServiceAccount","name":"sa","namespace":"keep"}]}`,
			`{"kind":"ClusterRoleBinding","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"b-dst"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"dst"},{"kind":"User","name":"u"},{"kind":"ServiceAccount","name":"sa","namespace":"keep"}]}`, ""},
		{"cluster binding of namespaces not mapped keeps its name", rec("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", false, false),
			`{"kind":"ClusterRoleBinding","metadata":{"name":"b"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"keep"},{"kind":"Group","name":"src"}]}`,
			`{"kind":"ClusterRoleBinding","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"b"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"keep"},{"kind":"Group","name":"src"}]}`, ""},
		{"role binding moved with its namespace keeps its name", rec("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", true, false),
			`{"kind":"RoleBinding","metadata":{"name":"b","namespace":"src"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"src"}]}`,
			`{"kind":"RoleBinding","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"b","namespace":"dst"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"dst"}]}`, ""},
		{"role binding left in place while its subjects move gets a name of its own", rec("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", true, false),
			`{"kind":"RoleBinding","metadata":{"name":"b","namespace":"keep"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"src"}]}`,
			`{"kind":"RoleBinding","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"b-dst","namespace":"keep"},"subjects":[{"kind":"ServiceAccount","name":"sa","namespace":"dst"}]}`, ""},
		{"jobs lose their generated selector", rec("batch", "jobs", "Job", true, false),
			`{"kind":"Job","metadata":{"name":"j","namespace":"x","labels":{"controller-uid":"u","batch.kubernetes.io/controller-uid":"u","job-name":"j"}},"spec":{"selector":{"matchLabels":{"controller-uid":"u"}},"template":{"metadata":{"labels":{"controller-uid":"u","batch.kubernetes.io/controller-uid":"u","job-name":"j"}}}}}`,
			`{"kind":"Job","metadata":{"labels":{"job-name":"j","pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"j","namespace":"x"},"spec":{"template":{"metadata":{"labels":{"job-name":"j"}}}}}`, ""},
		{"pods lose their node", rec("", "pods", "Pod", true, false),
			`{"kind":"Pod","metadata":{"name":"p","namespace":"x"},"spec":{"nodeName":"n1","containers":[]}}`,
			`{"kind":"Pod","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"p","namespace":"x"},"spec":{"containers":[]}}`, ""},
		{"data volumes adopt their restored claim, class mapped", rec("cdi.kubevirt.io", "datavolumes", "DataVolume", true, true),
			`{"kind":"DataVolume","metadata":{"name":"disk","namespace":"src"},"spec":{"source":{"http":{"url":"http://img"}},"storage":{"storageClassName":"fast"}}}`,
			`{"kind":"DataVolume","metadata":{"annotations":{"cdi.kubevirt.io/storage.prePopulated":"disk"},"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"disk","namespace":"dst"},"spec":{"source":{"http":{"url":"http://img"}},"storage":{"storageClassName":"ssd"}}}`, ""},
		{"a VM copied to another namespace gets its own MACs and firmware UUID", rec("kubevirt.io", "virtualmachines", "VirtualMachine", true, true),
			`{"kind":"VirtualMachine","metadata":{"name":"vm","namespace":"src"},"spec":{"dataVolumeTemplates":[{"metadata":{"name":"disk"},"spec":{"pvc":{"storageClassName":"fast"}}}],"template":{"spec":{"domain":{"firmware":{"uuid":"u1","serial":"s"},"devices":{"interfaces":[{"name":"a","macAddress":"02:00:00:00:00:01","bridge":{}}]}}}}}}`,
			`{"kind":"VirtualMachine","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"vm","namespace":"dst"},"spec":{"dataVolumeTemplates":[{"metadata":{"name":"disk"},"spec":{"pvc":{"storageClassName":"ssd"}}}],"template":{"spec":{"domain":{"devices":{"interfaces":[{"bridge":{},"name":"a"}]},"firmware":{"serial":"s"}}}}}}`, ""},
		{"a VM restored in place keeps its MACs and firmware UUID", rec("kubevirt.io", "virtualmachines", "VirtualMachine", true, true),
			`{"kind":"VirtualMachine","metadata":{"name":"vm","namespace":"same"},"spec":{"template":{"spec":{"domain":{"firmware":{"uuid":"u1"},"devices":{"interfaces":[{"name":"a","macAddress":"02:00:00:00:00:01"}]}}}}}}`,
			`{"kind":"VirtualMachine","metadata":{"labels":{"pxb.dev/backup":"b1","pxb.dev/restore":"r1"},"name":"vm","namespace":"same"},"spec":{"template":{"spec":{"domain":{"devices":{"interfaces":[{"macAddress":"02:00:00:00:00:01","name":"a"}]},"firmware":{"uuid":"u1"}}}}}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := parse(t, tc.in)
			skip := rw.Rewrite(tc.t, u)
			if skip != tc.skip {
				t.Fatalf("skip = %q, want %q", skip, tc.skip)
			}
			if skip != "" {
				return
			}
			if got := asJSON(t, u); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDerivedName(t *testing.T) {
	if got := derivedName("reader", []string{"a-copy", "b-copy"}); got != "reader-a-copy-b-copy" {
		t.Errorf("derivedName = %q, want reader-a-copy-b-copy", got)
	}
	long := strings.Repeat("r", 250)
	got := derivedName(long, []string{"shop-copy"})
	if len(got) != 253 || !strings.HasPrefix(got, strings.Repeat("r", 200)) || len(validation.IsDNS1123Subdomain(got)) > 0 {
		t.Errorf("derivedName of a %d-character name = %q (%d characters), want a valid name of 253 that begins with it", len(long), got, len(got))
	}
	if again := derivedName(long, []string{"shop-copy"}); again != got {
		t.Errorf("derivedName is not deterministic: %q, then %q", got, again)
	}
	if other := derivedName(long, []string{"shop-copy2"}); other == got {
		t.Errorf("derivedName gives %q for two target namespaces", got)
	}
}
