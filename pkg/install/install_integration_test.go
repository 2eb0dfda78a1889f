//go:build integration

package install_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
	"github.com/pxb-dev/pxb/pkg/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// installed installs pxb into the test bed's apiserver and returns a dynamic client. Apply is idempotent,
// so every test may call it.
func installed(t *testing.T) (*testbed.Cluster, dynamic.Interface) {
	t.Helper()
	c := testbed.APIServer(t)
	client := newClient(t, c)
	objs, err := install.Objects(install.Options{Image: "pxb-job:test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.Apply(ctx, objs, false); err != nil {
		t.Fatalf("install: %v", err)
	}
	if err := client.WaitForCRDs(ctx, install.CRDNames(objs), time.Minute); err != nil {
		t.Fatal(err)
	}
	return c, client.Dynamic
}

func newClient(t *testing.T, c *testbed.Cluster) install.Client {
	t.Helper()
	dyn := c.Dynamic(t)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Clientset(t).Discovery()))
	return install.Client{Dynamic: dyn, Mapper: mapper}
}

func TestInstallTwiceChangesNothing(t *testing.T) {
	c, _ := installed(t)
	client := newClient(t, c)
	objs, err := install.Objects(install.Options{Image: "pxb-job:test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := map[string]string{}
	for _, obj := range objs {
		before[obj.GetKind()+"/"+obj.GetName()] = written(get(ctx, t, client, obj))
	}
	again, err := client.Apply(ctx, objs, false)
	if err != nil {
		t.Fatalf("second install: %v", err)
	}
	if len(again) != len(objs) {
		t.Fatalf("second install applied %d objects, want %d", len(again), len(objs))
	}
	for _, obj := range again {
		key := obj.GetKind() + "/" + obj.GetName()
		if got := written(obj); got != before[key] {
			t.Errorf("%s changed on the second install: %s -> %s", key, before[key], got)
		}
	}
}

// written tells whether install wrote obj again: its generation where it has one, which only a change of its
// spec moves (the API server writes the status of CRDs and admission policies in the background, which moves
// their resourceVersion), else its resourceVersion.
func written(obj *unstructured.Unstructured) string {
	if g := obj.GetGeneration(); g > 0 {
		return fmt.Sprintf("generation %d", g)
	}
	return "resourceVersion " + obj.GetResourceVersion()
}

func TestInstallKeepsSettingsMadeByOthers(t *testing.T) {
	c, _ := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cms := c.Clientset(t).CoreV1().ConfigMaps(v1alpha1.SystemNamespace)
	cm, err := cms.Get(ctx, v1alpha1.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data[install.ConfigDefaultLocation] = "s3"
	cm.Data["jobCPULimit"] = "4"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	objs, err := install.Objects(install.Options{Image: "pxb-job:upgraded"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, c).Apply(ctx, objs, false); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	// Put the image back for the other tests.
	defer installed(t)
	data, err := install.InstalledConfig(ctx, c.Clientset(t))
	if err != nil {
		t.Fatal(err)
	}
	if data[install.ConfigJobImage] != "pxb-job:upgraded" || data[install.ConfigDefaultLocation] != "s3" || data["jobCPULimit"] != "4" {
		t.Errorf("pxb-config after upgrade = %v, want the new image and the edited settings kept", data)
	}
}

func get(ctx context.Context, t *testing.T, client install.Client, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := client.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.Dynamic.Resource(m.Resource).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s: %v", gvk.Kind, obj.GetName(), err)
	}
	return got
}

func TestInstallLeavesEstablishedCRDsAndConfig(t *testing.T) {
	c, dyn := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range v1alpha1.AllResources {
		crd, err := dyn.Resource(install.CRDResource).Get(ctx, r.Resource+".pxb.dev", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CRD of %s: %v", r.Resource, err)
		}
		if !install.Established(crd) {
			t.Errorf("CRD %s is not Established", crd.GetName())
		}
		if cats, _, _ := unstructured.NestedStringSlice(crd.Object, "spec", "names", "categories"); len(cats) != 1 || cats[0] != "pxb" {
			t.Errorf("CRD %s categories = %v, want [pxb]", crd.GetName(), cats)
		}
	}
	data, err := install.InstalledConfig(ctx, c.Clientset(t))
	if err != nil {
		t.Fatal(err)
	}
	if data[install.ConfigJobImage] != "pxb-job:test" {
		t.Errorf("pxb-config jobImage = %q, want pxb-job:test", data[install.ConfigJobImage])
	}
	for _, name := range identities {
		sa, err := c.Clientset(t).CoreV1().ServiceAccounts(v1alpha1.SystemNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("service account %s: %v", name, err)
		}
		if sa.Labels[install.ManagedByLabel] != install.ManagedBy {
			t.Errorf("service account %s labels = %v, want %s=%s", name, sa.Labels, install.ManagedByLabel, install.ManagedBy)
		}
	}
}

func TestUninstallRefusesWhileBackupsExist(t *testing.T) {
	c, dyn := installed(t)
	ns := c.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backup := obj("Backup", ns, "keep-me", map[string]any{"location": "s3"})
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Create(ctx, backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Delete(ctx, "keep-me", metav1.DeleteOptions{})
	objs, err := install.Objects(install.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := newClient(t, c).Uninstall(ctx, objs, false)
	// Other tests of this package leave Backups too, so the one named may be another.
	if err == nil || !strings.Contains(err.Error(), "backups exist (for example ") || !strings.Contains(err.Error(), "pass --force") {
		t.Fatalf("uninstall with a Backup left: err = %v, want a refusal that names a Backup and --force", err)
	}
	if len(deleted) != 0 {
		t.Errorf("refused uninstall deleted %d objects", len(deleted))
	}
	if _, err := dyn.Resource(v1alpha1.BackupsResource).Namespace(ns).Get(ctx, "keep-me", metav1.GetOptions{}); err != nil {
		t.Errorf("Backup after a refused uninstall: %v", err)
	}
}

func obj(kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}
