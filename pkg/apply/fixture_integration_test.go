//go:build integration

package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// kinds maps the fixture's kinds to their resources.
var kinds = map[string]schema.GroupVersionResource{
	"ConfigMap":                {Version: "v1", Resource: "configmaps"},
	"Secret":                   {Version: "v1", Resource: "secrets"},
	"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
	"Service":                  {Version: "v1", Resource: "services"},
	"Pod":                      {Version: "v1", Resource: "pods"},
	"PersistentVolume":         {Version: "v1", Resource: "persistentvolumes"},
	"PersistentVolumeClaim":    {Version: "v1", Resource: "persistentvolumeclaims"},
	"Role":                     {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"ClusterRole":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding":       {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"Deployment":               {Group: "apps", Version: "v1", Resource: "deployments"},
	"StatefulSet":              {Group: "apps", Version: "v1", Resource: "statefulsets"},
	"DaemonSet":                {Group: "apps", Version: "v1", Resource: "daemonsets"},
	"ReplicaSet":               {Group: "apps", Version: "v1", Resource: "replicasets"},
	"Ingress":                  {Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	"StorageClass":             {Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
	"CustomResourceDefinition": {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
}

// The application of every kind pxb must restore field for field. {{ns}} is its namespace, {{id}} makes
// cluster-scoped names and the custom resource group unique in the shared API server.
const appManifests = `
{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"widgets.{{id}}.pxb.test","labels":{"app":"shop"}},
 "spec":{"group":"{{id}}.pxb.test","scope":"Namespaced","names":{"plural":"widgets","singular":"widget","kind":"Widget"},
  "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"},"color":{"type":"string"}}}}}}}]}}
{"apiVersion":"storage.k8s.io/v1","kind":"StorageClass","metadata":{"name":"{{id}}-fast","labels":{"app":"shop"}},"provisioner":"example.com/none","reclaimPolicy":"Retain","volumeBindingMode":"Immediate","parameters":{"tier":"gold"}}
{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"{{id}}-pv","labels":{"app":"shop"},"annotations":{"note":"static"}},
 "spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"Retain","storageClassName":"{{id}}-fast","hostPath":{"path":"/tmp/{{id}}"},
  "claimRef":{"kind":"PersistentVolumeClaim","apiVersion":"v1","namespace":"{{ns}}","name":"data"}}}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"{{id}}-reader","labels":{"app":"shop"}},"rules":[{"apiGroups":[""],"resources":["nodes"],"verbs":["get","list"]}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"{{id}}-reader","labels":{"app":"shop"}},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"{{id}}-reader"},"subjects":[{"kind":"ServiceAccount","name":"shop","namespace":"{{ns}}"}]}
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"shop","namespace":"{{ns}}","labels":{"app":"shop"},"annotations":{"owner":"team-a"}},"automountServiceAccountToken":false}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"shop","namespace":"{{ns}}","labels":{"app":"shop"}},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","watch"]}]}
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"shop","namespace":"{{ns}}","labels":{"app":"shop"}},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"shop"},"subjects":[{"kind":"ServiceAccount","name":"shop","namespace":"{{ns}}"}]}
{"apiVersion":"v1","kind":"Secret","metadata":{"name":"shop-db","namespace":"{{ns}}","labels":{"app":"shop"},"annotations":{"rotated":"2026-01-01"}},"type":"Opaque","data":{"password":"czNjcjN0"}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"shop-config","namespace":"{{ns}}","labels":{"app":"shop","tier":"web"},"annotations":{"checksum":"abc"}},"data":{"greeting":"hello","multi":"a\nb\n"},"binaryData":{"blob":"AAEC"}}
{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":"{{ns}}","labels":{"app":"shop"}},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},"storageClassName":"{{id}}-fast","volumeName":"{{id}}-pv"}}
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"{{ns}}","labels":{"app":"shop"},"annotations":{"team":"a"}},
 "spec":{"replicas":3,"selector":{"matchLabels":{"app":"shop","c":"web"}},"template":{"metadata":{"labels":{"app":"shop","c":"web"}},
  "spec":{"serviceAccountName":"shop","containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":80}],"env":[{"name":"MODE","value":"prod"}]}]}}}}
{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"{{ns}}","labels":{"app":"shop"}},
 "spec":{"replicas":1,"serviceName":"db","selector":{"matchLabels":{"c":"db"}},"template":{"metadata":{"labels":{"c":"db"}},"spec":{"containers":[{"name":"db","image":"postgres:17"}]}},
  "volumeClaimTemplates":[{"metadata":{"name":"pgdata"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"2Gi"}}}}]}}
{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent","namespace":"{{ns}}","labels":{"app":"shop"}},
 "spec":{"selector":{"matchLabels":{"c":"agent"}},"template":{"metadata":{"labels":{"c":"agent"}},"spec":{"containers":[{"name":"agent","image":"busybox:1.36","args":["sleep","infinity"]}]}}}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"{{ns}}","labels":{"app":"shop"},"annotations":{"lb":"internal"}},"spec":{"selector":{"c":"web"},"ports":[{"name":"http","port":80,"targetPort":80}]}}
{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"web","namespace":"{{ns}}","labels":{"app":"shop"}},
 "spec":{"rules":[{"host":"shop.example.com","http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"web","port":{"number":80}}}}]}}]}}
{"apiVersion":"{{id}}.pxb.test/v1","kind":"Widget","metadata":{"name":"gizmo","namespace":"{{ns}}","labels":{"app":"shop"},"annotations":{"made-by":"hand"}},"spec":{"size":3,"color":"blue"}}
`

// derivedManifests are objects the cluster would make itself; a backup skips them (as it skips the
// kube-root-ca.crt ConfigMap the cluster publishes in every namespace).
const derivedManifests = `
{"apiVersion":"v1","kind":"Secret","metadata":{"name":"shop-token","namespace":"{{ns}}","annotations":{"kubernetes.io/service-account.name":"shop"}},"type":"kubernetes.io/service-account-token"}
{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web-1","namespace":"{{ns}}","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"{{deployuid}}","controller":true}]},
 "spec":{"replicas":0,"selector":{"matchLabels":{"c":"web","h":"1"}},"template":{"metadata":{"labels":{"c":"web","h":"1"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}
`

type fixture struct {
	ns, id  string
	objects []*unstructured.Unstructured // as the server returned them after creation
}

// find returns the fixture's object of kind.
func (f *fixture) find(kind string) *unstructured.Unstructured {
	for _, o := range f.objects {
		if o.GetKind() == kind {
			return o
		}
	}
	panic("fixture has no " + kind)
}

func render(m string, vars map[string]string) []string {
	for k, v := range vars {
		m = strings.ReplaceAll(m, "{{"+k+"}}", v)
	}
	var out []string
	for _, doc := range strings.Split(strings.TrimSpace(m), "\n{") {
		if !strings.HasPrefix(doc, "{") {
			doc = "{" + doc
		}
		out = append(out, doc)
	}
	return out
}

func resourceFor(t *testing.T, u *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	if gvr, ok := kinds[u.GetKind()]; ok {
		return gvr
	}
	gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
	if u.GetKind() == "Widget" {
		return gv.WithResource("widgets")
	}
	t.Fatalf("no resource for kind %s", u.GetKind())
	return schema.GroupVersionResource{}
}

func client(t *testing.T, dyn dynamic.Interface, u *unstructured.Unstructured, ns string) dynamic.ResourceInterface {
	gvr := resourceFor(t, u)
	if ns != "" {
		return dyn.Resource(gvr).Namespace(ns)
	}
	return dyn.Resource(gvr)
}

// createApp creates the application in ns; cluster-scoped names carry id.
func createApp(t *testing.T, dyn dynamic.Interface, ns, id string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &fixture{ns: ns, id: id}
	for _, doc := range render(appManifests, map[string]string{"ns": ns, "id": id}) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(doc)); err != nil {
			t.Fatalf("fixture %s: %v", doc, err)
		}
		created := createWait(ctx, t, dyn, u)
		f.objects = append(f.objects, created)
		t.Cleanup(func() { forceDelete(t, dyn, created) })
	}
	return f
}

func createWait(ctx context.Context, t *testing.T, dyn dynamic.Interface, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	var created *unstructured.Unstructured
	// A custom resource can be created once its CRD is served.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		created, err = client(t, dyn, u, u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		if err != nil && u.GetKind() == "Widget" && apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return created
}

// forceDelete removes an object even where no controller runs to finalize it (PVs, PVCs).
func forceDelete(t *testing.T, dyn dynamic.Interface, u *unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client(t, dyn, u, u.GetNamespace())
	_, _ = c.Patch(ctx, u.GetName(), types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	_ = c.Delete(ctx, u.GetName(), metav1.DeleteOptions{})
}

// deleteAndWait deletes objects (cluster-scoped ones too) and waits until they are gone.
func deleteAndWait(t *testing.T, dyn dynamic.Interface, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		forceDelete(t, dyn, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range objs {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := client(t, dyn, u, u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("%s %s not gone: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// userFields are what a user checks after a restore: everything but server-set metadata and status.
func userFields(u *unstructured.Unstructured) map[string]any {
	out := map[string]any{}
	for k, v := range u.Object {
		switch k {
		case "metadata", "status", "apiVersion", "kind":
			continue
		}
		out[k] = v
	}
	labels := u.GetLabels()
	delete(labels, "pxb.dev/backup")
	delete(labels, "pxb.dev/restore")
	if len(labels) > 0 {
		out["labels"] = labels
	}
	if a := u.GetAnnotations(); len(a) > 0 {
		out["annotations"] = a
	}
	if u.GetKind() == "Service" {
		spec := out["spec"].(map[string]any)
		delete(spec, "clusterIP")
		delete(spec, "clusterIPs")
	}
	return out
}

func jsonString(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// compareRestored checks every fixture object against its restored copy in targetNS, with references to
// the source namespace mapped.
func compareRestored(t *testing.T, dyn dynamic.Interface, f *fixture, targetNS, backup, restore string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, orig := range f.objects {
		ns := ""
		if orig.GetNamespace() != "" {
			ns = targetNS
		}
		got, err := client(t, dyn, orig, ns).Get(ctx, orig.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("restored %s %s/%s: %v", orig.GetKind(), ns, orig.GetName(), err)
			continue
		}
		if (ns != "" || targetNS == f.ns) && backup+restore != "" {
			if got.GetLabels()["pxb.dev/backup"] != backup || got.GetLabels()["pxb.dev/restore"] != restore {
				t.Errorf("%s %s labels %v lack pxb.dev/backup=%s, pxb.dev/restore=%s", orig.GetKind(), orig.GetName(), got.GetLabels(), backup, restore)
			}
		}
		want := jsonString(userFields(orig))
		if targetNS != f.ns && ns != "" {
			// Namespace references inside namespaced objects (binding subjects) follow the mapping.
			want = strings.ReplaceAll(want, `"namespace": "`+f.ns+`"`, `"namespace": "`+targetNS+`"`)
		}
		if have := jsonString(userFields(got)); have != want {
			t.Errorf("%s %s/%s differs after restore:\nhave %s\nwant %s", orig.GetKind(), ns, orig.GetName(), have, want)
		}
	}
}

func uniqueID(t *testing.T) string {
	return fmt.Sprintf("t%d", time.Now().UnixNano()%1_000_000_000)
}
