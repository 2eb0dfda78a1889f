//go:build integration

package jobs_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/jobs"
	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/testbed"
	"github.com/pxb-dev/pxb/pkg/vm"
)

// TestVirtualMachineBackup backs up selected KubeVirt VirtualMachines on a real API server with KubeVirt's
// and CDI's types defined. KubeVirt does not run there (no virt-api, no VM, no guest agent), so a freeze
// reaches the API server and is refused as it is when virt-api is down; a guest really frozen and thawed
// cannot be shown here.
func TestVirtualMachineBackup(t *testing.T) {
	c := testbed.APIServer(t)
	c.KubeVirtCRDs(t)
	loc := setup(t, c)
	kube := c.Clientset(t)
	dyn := c.Dynamic(t)
	ns := c.Namespace(t)
	ctx := ctxT(t, 5*time.Minute)

	claim := func(name string, labels map[string]string) {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"vm1-rootdisk", "vm1-data", "vm2-data"} {
		claim(name, nil)
	}
	claim("persistent-state-for-vm1-x7k2p", map[string]string{"persistent-state-for": "vm1"})
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "vm1-cloudinit", Namespace: ns},
		StringData: map[string]string{"userdata": "#cloud-config\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vm1-config", "unrelated"} {
		if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dataVolumes := schema.GroupVersionResource{Group: "cdi.kubevirt.io", Version: "v1beta1", Resource: "datavolumes"}
	apply := func(obj map[string]any) *unstructured.Unstructured {
		t.Helper()
		u := &unstructured.Unstructured{Object: obj}
		u.SetNamespace(ns)
		r := map[string]schema.GroupVersionResource{"VirtualMachine": vm.VirtualMachines,
			"VirtualMachineInstance": vm.VirtualMachineInstances, "DataVolume": dataVolumes}[u.GetKind()]
		out, err := dyn.Resource(r).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		return out
	}
	dvSpec := map[string]any{"source": map[string]any{"blank": map[string]any{}},
		"storage": map[string]any{"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}
	apply(map[string]any{"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
		"metadata": map[string]any{"name": "vm1-rootdisk"}, "spec": dvSpec})
	vm1 := apply(map[string]any{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
		"metadata": map[string]any{"name": "vm1", "labels": map[string]any{"os": "linux"}},
		"spec": map[string]any{
			"runStrategy":         "Always",
			"dataVolumeTemplates": []any{map[string]any{"metadata": map[string]any{"name": "vm1-rootdisk"}, "spec": dvSpec}},
			"template": map[string]any{"spec": map[string]any{
				"domain": map[string]any{
					"firmware": map[string]any{"uuid": "5d307ca9-b3ef-428c-8861-06e72d69f223"},
					"devices": map[string]any{"interfaces": []any{map[string]any{"name": "default", "macAddress": "02:00:00:00:00:01",
						"masquerade": map[string]any{}}}},
				},
				"volumes": []any{
					map[string]any{"name": "root", "dataVolume": map[string]any{"name": "vm1-rootdisk"}},
					map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": "vm1-data"}},
					map[string]any{"name": "cloudinit", "cloudInitNoCloud": map[string]any{"secretRef": map[string]any{"name": "vm1-cloudinit"}}},
					map[string]any{"name": "config", "configMap": map[string]any{"name": "vm1-config"}},
				},
			}},
		}})
	apply(map[string]any{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
		"metadata": map[string]any{"name": "vm2", "labels": map[string]any{"os": "linux"}},
		"spec": map[string]any{"runStrategy": "Halted", "template": map[string]any{"spec": map[string]any{
			"volumes": []any{map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": "vm2-data"}}}}}}})
	// vm1 runs, and its guest agent is connected.
	vmi := apply(map[string]any{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
		"metadata": map[string]any{"name": "vm1", "ownerReferences": []any{map[string]any{"apiVersion": "kubevirt.io/v1",
			"kind": "VirtualMachine", "name": "vm1", "uid": string(vm1.GetUID()), "controller": true}}},
		"spec":   map[string]any{},
		"status": map[string]any{"phase": "Running", "conditions": []any{map[string]any{"type": "AgentConnected", "status": "True"}}}})

	backup := func(name string, sel *v1alpha1.VirtualMachineSelection) (v1alpha1.Backup, error) {
		t.Helper()
		create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc), VolumeMethod: v1alpha1.VolumeNone, VirtualMachines: sel},
		})
		err := jobs.Backup(ctx, c.Config, ns, name, jobs.Options{})
		var b v1alpha1.Backup
		get(t, c, v1alpha1.BackupsResource, ns, name, &b)
		return b, err
	}

	// The guest agent is connected, so the guest is to be frozen; without virt-api the freeze is refused
	// and the backup fails, saying so.
	b, err := backup("frozen", &v1alpha1.VirtualMachineSelection{Names: []string{"vm1"}})
	if err == nil || !strings.Contains(err.Error(), "freeze the guest of VirtualMachine "+ns+"/vm1: ") ||
		!strings.Contains(err.Error(), "is virt-api running?") {
		t.Errorf("backup freezing a guest without virt-api: %v", err)
	}
	if b.Status.Phase != v1alpha1.BackupFailed || !strings.Contains(b.Status.Message, "freeze the guest of VirtualMachine") {
		t.Errorf("status of the backup whose freeze failed: %s %q", b.Status.Phase, b.Status.Message)
	}

	// Without a freeze: the VM and what it uses, nothing else.
	b, err = backup("vm1", &v1alpha1.VirtualMachineSelection{Names: []string{"vm1"}, Freeze: ptr.To(false)})
	if err != nil || b.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("backup of vm1 without freeze: %v; %s %q %q", err, b.Status.Phase, b.Status.Message, b.Status.Warnings)
	}
	l, err := store.OpenLocation(ctx, kube, dyn, loc, location.Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m, err := collect.ReadManifest(ctx, store.Prefixed(l.Store, layout.BackupPrefix(ns, "vm1")))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tr := range m.Types {
		got[tr.String()] = tr.Count
	}
	want := map[string]int{"virtualmachines.kubevirt.io": 1, "datavolumes.cdi.kubevirt.io": 1, "persistentvolumeclaims": 3,
		"secrets": 1, "configmaps": 1, "namespaces": 1}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("backup of vm1 holds %d %s, want %d (all: %v)", got[typ], typ, n, got)
		}
	}
	for typ := range got {
		if _, ok := want[typ]; !ok && typ != "customresourcedefinitions.apiextensions.k8s.io" {
			t.Errorf("backup of vm1 holds %d %s, which vm1 does not use", got[typ], typ)
		}
	}

	// A guest without its agent cannot be frozen: the backup completes and says its volumes are
	// crash-consistent.
	unstructured.SetNestedSlice(vmi.Object, []any{map[string]any{"type": "AgentConnected", "status": "False"}}, "status", "conditions")
	if _, err := dyn.Resource(vm.VirtualMachineInstances).Namespace(ns).Update(ctx, vmi, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err = backup("no-agent", &v1alpha1.VirtualMachineSelection{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "linux"}}})
	if err != nil || b.Status.Phase != v1alpha1.BackupCompleted {
		t.Fatalf("backup of a guest without agent: %v; %s %q", err, b.Status.Phase, b.Status.Message)
	}
	wantWarning := "VirtualMachine " + ns + "/vm1 was not frozen: its guest has no connected QEMU guest agent, so its volumes are crash-consistent"
	if len(b.Status.Warnings) != 1 || b.Status.Warnings[0] != wantWarning {
		t.Errorf("warnings of the backup of a guest without agent: %q, want %q", b.Status.Warnings, wantWarning)
	}
	// Both VMs matched the label selector: four claims (vm2's too).
	if m, err = collect.ReadManifest(ctx, store.Prefixed(l.Store, layout.BackupPrefix(ns, "no-agent"))); err != nil {
		t.Fatal(err)
	}
	for _, tr := range m.Types {
		if tr.String() == "persistentvolumeclaims" && tr.Count != 4 || tr.String() == "virtualmachines.kubevirt.io" && tr.Count != 2 {
			t.Errorf("backup by label selector holds %d %s", tr.Count, tr)
		}
	}

	// Selections that match nothing fail, naming the field.
	for name, c := range map[string]struct {
		sel  *v1alpha1.VirtualMachineSelection
		want string
	}{
		"no-vm3":      {&v1alpha1.VirtualMachineSelection{Names: []string{"vm3"}}, "spec.virtualMachines.names: no VirtualMachine vm3 in namespaces " + ns},
		"no-windows":  {&v1alpha1.VirtualMachineSelection{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"os": "windows"}}}, `spec.virtualMachines: no VirtualMachine matches labelSelector "os=windows" in namespaces ` + ns},
		"other-place": {&v1alpha1.VirtualMachineSelection{Names: []string{"elsewhere/vm1"}}, "spec.virtualMachines.names: elsewhere/vm1 is in namespace elsewhere, which the backup does not include"},
	} {
		b, err := backup(name, c.sel)
		if err == nil || err.Error() != c.want || b.Status.Phase != v1alpha1.BackupFailed {
			t.Errorf("backup %s: %v (%s), want %s", name, err, b.Status.Phase, c.want)
		}
	}

	// Restored into another namespace: the copy gets MAC addresses and a firmware UUID of its own, and CDI
	// is told the DataVolume's claim holds its data. Only an administrator's Backup and Restore, in
	// pxb-system, span namespaces.
	sys, ofVM1, copied := v1alpha1.SystemNamespace, "vm1-"+ns, "copy-"+ns
	create(t, c, v1alpha1.BackupsResource, &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: ofVM1, Namespace: sys},
		Spec: v1alpha1.BackupSpec{Location: v1alpha1.ObjectName(loc), VolumeMethod: v1alpha1.VolumeNone,
			Selection:       v1alpha1.Selection{IncludeNamespaces: []v1alpha1.NamespacePattern{v1alpha1.NamespacePattern(ns)}},
			VirtualMachines: &v1alpha1.VirtualMachineSelection{Names: []string{"vm1"}, Freeze: ptr.To(false)}},
	})
	if err := jobs.Backup(ctx, c.Config, sys, ofVM1, jobs.Options{}); err != nil {
		t.Fatalf("backup of vm1 in %s: %v", sys, err)
	}
	target := ns + "-copy"
	create(t, c, v1alpha1.RestoresResource, &v1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: copied, Namespace: sys},
		Spec:       v1alpha1.RestoreSpec{BackupName: v1alpha1.ObjectName(ofVM1), NamespaceMapping: map[string]v1alpha1.NamespaceName{ns: v1alpha1.NamespaceName(target)}},
	})
	if err := jobs.Restore(ctx, c.Config, sys, copied, jobs.Options{}); err != nil {
		t.Fatalf("restore of vm1: %v", err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(ctxT(t, time.Minute), target, metav1.DeleteOptions{}) })
	restored, err := dyn.Resource(vm.VirtualMachines).Namespace(target).Get(ctx, "vm1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("restored vm1: %v", err)
	}
	if _, found, _ := unstructured.NestedString(restored.Object, "spec", "template", "spec", "domain", "firmware", "uuid"); found {
		t.Error("the copy of vm1 kept the original's firmware UUID")
	}
	ifaces, _, _ := unstructured.NestedSlice(restored.Object, "spec", "template", "spec", "domain", "devices", "interfaces")
	if len(ifaces) != 1 || ifaces[0].(map[string]any)["macAddress"] != nil || ifaces[0].(map[string]any)["name"] != "default" {
		t.Errorf("interfaces of the copy of vm1: %v", ifaces)
	}
	if s, _, _ := unstructured.NestedString(restored.Object, "spec", "runStrategy"); s != "Always" {
		t.Errorf("runStrategy of the copy of vm1: %q", s)
	}
	dv, err := dyn.Resource(dataVolumes).Namespace(target).Get(ctx, "vm1-rootdisk", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("restored DataVolume: %v", err)
	}
	if dv.GetAnnotations()["cdi.kubevirt.io/storage.prePopulated"] != "vm1-rootdisk" {
		t.Errorf("annotations of the restored DataVolume: %v", dv.GetAnnotations())
	}
	for _, name := range []string{"vm1-rootdisk", "vm1-data", "persistent-state-for-vm1-x7k2p"} {
		if _, err := kube.CoreV1().PersistentVolumeClaims(target).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("restored claim %s: %v", name, err)
		}
	}
	if _, err := dyn.Resource(vm.VirtualMachineInstances).Namespace(target).Get(ctx, "vm1", metav1.GetOptions{}); err == nil {
		t.Error("the running instance of vm1 was restored; its VirtualMachine starts its own")
	}
	if _, err := kube.CoreV1().ConfigMaps(target).Get(ctx, "unrelated", metav1.GetOptions{}); err == nil {
		t.Error("a ConfigMap no selected VM uses was restored")
	}
}
