//go:build e2e

package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// PVC creates a claim of storageClass (empty: the default class), from dataSource when not nil, and waits
// until it is bound.
func (c *Cluster) PVC(t testing.TB, ns, name, storageClass string, dataSource *corev1.TypedLocalObjectReference) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			DataSource:  dataSource,
		},
	}
	if storageClass != "" {
		pvc.Spec.StorageClassName = &storageClass
	}
	return c.createBound(t, ns, pvc)
}

// createBound creates pvc in ns and waits until it is bound.
func (c *Cluster) createBound(t testing.TB, ns string, pvc *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	t.Helper()
	name := pvc.Name
	if _, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Create(Context(t, 30*time.Second), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PVC %s/%s: %v", ns, name, err)
	}
	WaitFor(t, 2*time.Minute, fmt.Sprintf("PVC %s/%s bound", ns, name), func(ctx context.Context) (bool, error) {
		got, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pvc = got
		return got.Status.Phase == corev1.ClaimBound, nil
	})
	return pvc
}

// BlockPVC creates a raw block claim of size bytes of storageClass and waits until it is bound.
func (c *Cluster) BlockPVC(t testing.TB, ns, name, storageClass string, size int64) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI)}},
			StorageClassName: &storageClass,
			VolumeMode:       ptr.To(corev1.PersistentVolumeBlock),
		},
	}
	return c.createBound(t, ns, pvc)
}

// DiskTool runs `e2etool disk -dev /dev/xvda args...` as root in a pod that has the block claim pvc as the
// device /dev/xvda, and returns its result: the device's size and checksum.
func (c *Cluster) DiskTool(t testing.TB, ns, pvc string, args ...string) string {
	t.Helper()
	pod := c.toolPod(fmt.Sprintf("disk-%s-%d", pvc, time.Now().UnixNano()%100000), append([]string{"disk", "-dev", "/dev/xvda"}, args...)...)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0)), RunAsGroup: ptr.To(int64(0))}
	pod.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "disk", DevicePath: "/dev/xvda"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "disk", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc},
	}}}
	return c.RunPod(t, ns, pod)
}

// SnapshotSource is a PVC dataSource that restores the VolumeSnapshot name.
func SnapshotSource(name string) *corev1.TypedLocalObjectReference {
	group := snapv1.GroupName
	return &corev1.TypedLocalObjectReference{APIGroup: &group, Kind: "VolumeSnapshot", Name: name}
}

// Snapshot creates a VolumeSnapshot of a PVC with the default VolumeSnapshotClass and waits until it is ready.
func (c *Cluster) Snapshot(t testing.TB, ns, name, pvc string) *snapv1.VolumeSnapshot {
	t.Helper()
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc}},
	}
	if _, err := c.Snapshots.SnapshotV1().VolumeSnapshots(ns).Create(Context(t, 30*time.Second), vs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create VolumeSnapshot %s/%s: %v", ns, name, err)
	}
	WaitFor(t, 2*time.Minute, fmt.Sprintf("VolumeSnapshot %s/%s ready", ns, name), func(ctx context.Context) (bool, error) {
		got, err := c.Snapshots.SnapshotV1().VolumeSnapshots(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		vs = got
		if got.Status != nil && got.Status.Error != nil && got.Status.Error.Message != nil {
			t.Logf("VolumeSnapshot %s/%s: %s", ns, name, *got.Status.Error.Message)
		}
		return got.Status != nil && got.Status.ReadyToUse != nil && *got.Status.ReadyToUse, nil
	})
	return vs
}

// WriteDataset runs a pod that writes a deterministic dataset (files of size bytes, content from seed) into
// the PVC, and returns the checksum of the volume's whole tree afterwards.
func (c *Cluster) WriteDataset(t testing.TB, ns, pvc string, seed uint64, files int, size int64) string {
	t.Helper()
	return c.runOnVolume(t, ns, pvc, false, "write", "-dir", "/data", "-seed", fmt.Sprint(seed),
		"-files", fmt.Sprint(files), "-size", fmt.Sprint(size))
}

// Checksum runs a pod that mounts the PVC read-only and returns the checksum of its whole tree.
func (c *Cluster) Checksum(t testing.TB, ns, pvc string) string {
	t.Helper()
	return c.runOnVolume(t, ns, pvc, true, "checksum", "-dir", "/data")
}

// runOnVolume runs the e2etool with args in a pod mounting pvc at /data and returns its termination message.
func (c *Cluster) runOnVolume(t testing.TB, ns, pvc string, readOnly bool, args ...string) string {
	t.Helper()
	return c.RunPod(t, ns, c.volumePod(pvc, readOnly, args...))
}

// volumePod is a pod running the e2etool with args, with pvc mounted at /data.
func (c *Cluster) volumePod(pvc string, readOnly bool, args ...string) *corev1.Pod {
	pod := c.toolPod(fmt.Sprintf("%s-%s-%d", args[0], pvc, time.Now().UnixNano()%100000), args...)
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: readOnly}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc, ReadOnly: readOnly},
	}}}
	return pod
}

// RunTool runs the e2etool with args in a pod and returns its result (the termination message).
func (c *Cluster) RunTool(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return c.RunPod(t, ns, c.toolPod(fmt.Sprintf("%s-%d", args[0], time.Now().UnixNano()%100000), args...))
}

func (c *Cluster) toolPod(name string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pxb.dev/e2e-pod": name}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			DNSPolicy:                     corev1.DNSDefault,
			AutomountServiceAccountToken:  new(bool),
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "tool", Image: c.ToolImage, ImagePullPolicy: corev1.PullNever, Args: args,
			}},
		},
	}
}

// RootTool runs the e2etool with args as root (it gives files other owners) in a pod mounting pvc at /data,
// and returns its termination message and its log, once complete says the log is whole.
func (c *Cluster) RootTool(t testing.TB, ns, pvc string, readOnly bool, timeout time.Duration, complete func(msg, log string) error, args ...string) (string, string) {
	t.Helper()
	pod := c.volumePod(pvc, readOnly, args...)
	root := int64(0)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &root, RunAsGroup: &root}
	return c.runPod(t, ns, pod, timeout, complete)
}

// RunPod runs a pod to completion, deletes it, and returns its container's termination message; the test
// fails with the pod's logs if it fails.
func (c *Cluster) RunPod(t testing.TB, ns string, pod *corev1.Pod) string {
	t.Helper()
	msg, _ := c.runPod(t, ns, pod, 2*time.Minute, nil)
	return msg
}

// runPod runs a pod to completion within timeout, deletes it, and returns its container's termination
// message and, with complete, its log once complete accepts it: a container that has just exited may not
// have all of its output in the log yet.
func (c *Cluster) runPod(t testing.TB, ns string, pod *corev1.Pod, timeout time.Duration, complete func(msg, log string) error) (string, string) {
	t.Helper()
	name := pod.Name
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels["pxb.dev/e2e-pod"] = name
	pods := c.Kube.CoreV1().Pods(ns)
	if _, err := pods.Create(Context(t, 30*time.Second), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	var msg string
	WaitFor(t, timeout, fmt.Sprintf("pod %s/%s", ns, name), func(ctx context.Context) (bool, error) {
		got, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		switch got.Status.Phase {
		case corev1.PodSucceeded:
			for _, s := range got.Status.ContainerStatuses {
				if s.State.Terminated != nil {
					msg = strings.TrimSpace(s.State.Terminated.Message)
				}
			}
			return true, nil
		case corev1.PodFailed:
			return false, fmt.Errorf("pod failed:\n%s", c.PodLogs(t, ns, "pxb.dev/e2e-pod="+name))
		}
		return false, nil
	})
	var log string
	if complete != nil {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			out, err := pods.GetLogs(name, &corev1.PodLogOptions{}).DoRaw(Context(t, time.Minute))
			if err == nil {
				log = string(out)
				err = complete(msg, log)
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				if len(log) < 1024 {
					err = fmt.Errorf("%w; the log:\n%s", err, log)
				}
				t.Fatalf("log of pod %s/%s: %v", ns, name, err)
			}
		}
	}
	// The pod is done; it must not keep the volume busy for the next step.
	ctx := Context(t, time.Minute)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	if msg == "" {
		t.Fatalf("pod %s/%s left no result", ns, name)
	}
	return msg, log
}

// VolumeStatus is one entry of a Backup's or Restore's status.volumes, as a user reads it.
type VolumeStatus struct {
	Namespace     string `json:"namespace"`
	PVC           string `json:"pvc"`
	Driver        string `json:"driver"`
	Method        string `json:"method"`
	Phase         string `json:"phase"`
	BytesTotal    int64  `json:"bytesTotal"`
	BytesDone     int64  `json:"bytesDone"`
	FilesTotal    int64  `json:"filesTotal"`
	FilesDone     int64  `json:"filesDone"`
	UploadedBytes int64  `json:"uploadedBytes"`
	Snapshot      string `json:"snapshot"`
	Message       string `json:"message"`
}

func (v VolumeStatus) String() string {
	return fmt.Sprintf("%s/%s driver=%s method=%s phase=%s bytes=%d/%d files=%d/%d uploaded=%d snapshot=%q message=%q",
		v.Namespace, v.PVC, v.Driver, v.Method, v.Phase, v.BytesDone, v.BytesTotal, v.FilesDone, v.FilesTotal,
		v.UploadedBytes, v.Snapshot, v.Message)
}

// Ended reports whether a Backup or Restore has ended: Completed, PartiallySucceeded or Failed.
func Ended(obj *unstructured.Unstructured) bool {
	return slices.Contains([]string{"Completed", "PartiallySucceeded", "Failed"}, Phase(obj))
}

// WaitForEnd waits until the Backup or Restore ns/name has ended (Completed, PartiallySucceeded or Failed) and
// returns it.
func (c *Cluster) WaitForEnd(t testing.TB, gvr schema.GroupVersionResource, ns, name string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	var obj *unstructured.Unstructured
	WaitFor(t, timeout, fmt.Sprintf("%s %s/%s to end", gvr.Resource, ns, name), func(ctx context.Context) (bool, error) {
		o, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // not created yet, or a passing API error
		}
		obj = o
		return Ended(o), nil
	})
	return obj
}

// Get returns the Backup or Restore ns/name.
func (c *Cluster) Get(t testing.TB, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(Context(t, 30*time.Second), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj
}

// Phase is status.phase of a Backup or Restore.
func Phase(obj *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	return p
}

// Volumes returns status.volumes of a Backup or Restore.
func Volumes(t testing.TB, obj *unstructured.Unstructured) []VolumeStatus {
	t.Helper()
	raw, _, err := unstructured.NestedSlice(obj.Object, "status", "volumes")
	if err != nil {
		t.Fatalf("status.volumes of %s: %v", obj.GetName(), err)
	}
	data, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var vols []VolumeStatus
	if err := json.Unmarshal(data, &vols); err != nil {
		t.Fatalf("status.volumes of %s: %v", obj.GetName(), err)
	}
	return vols
}

// Volume returns the status.volumes entry of PVC pvc in one of namespaces (a restore may name the source or
// the target namespace), failing the test when there is none.
func Volume(t testing.TB, obj *unstructured.Unstructured, pvc string, namespaces ...string) VolumeStatus {
	t.Helper()
	vols := Volumes(t, obj)
	for _, v := range vols {
		if v.PVC == pvc && slices.Contains(namespaces, v.Namespace) {
			return v
		}
	}
	t.Fatalf("%s %s has no status.volumes entry for PVC %s in %v: %v (status %v)", obj.GetKind(), obj.GetName(), pvc, namespaces, vols, obj.Object["status"])
	return VolumeStatus{}
}

// SetConfig sets key in pxb-system/pxb-config; `kubectl pxb install` applies its own keys server-side and
// keeps this one.
func (c *Cluster) SetConfig(t testing.TB, key, value string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"data": map[string]string{key: value}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kube.CoreV1().ConfigMaps("pxb-system").Patch(Context(t, 30*time.Second), "pxb-config",
		types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("set %s in pxb-config: %v", key, err)
	}
}

// Inventory names the VolumeSnapshotContents, PersistentVolumes, and PersistentVolumeClaims of pxb-system
// that exist at one time, each with the pxb owner labels it carries ("pxb.dev/backup=NAME",
// "pxb.dev/restore=NAME"; a volume those of its pxb-system claim), so that temporary objects a backup or
// restore failed to label still show as leftovers, while those of other backups and restores running beside
// the test do not.
type Inventory map[string][]string

// ownerLabels are the labels that tie a temporary object to its backup or restore.
var ownerLabels = []string{"pxb.dev/backup", "pxb.dev/restore"}

func owners(labels map[string]string) []string {
	var out []string
	for _, k := range ownerLabels {
		if v, ok := labels[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Inventory lists what exists now.
func (c *Cluster) Inventory(t testing.TB) Inventory {
	t.Helper()
	inv, err := c.inventory(Context(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (c *Cluster) inventory(ctx context.Context) (Inventory, error) {
	inv := Inventory{}
	vsc, err := c.Snapshots.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list VolumeSnapshotContents: %w", err)
	}
	for _, o := range vsc.Items {
		inv["VolumeSnapshotContent "+o.Name] = owners(o.Labels)
	}
	pvcs, err := c.Kube.CoreV1().PersistentVolumeClaims("pxb-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list PVCs: %w", err)
	}
	claims := map[string][]string{}
	for _, o := range pvcs.Items {
		claims[o.Name] = owners(o.Labels)
		inv["PersistentVolumeClaim pxb-system/"+o.Name] = claims[o.Name]
	}
	pvs, err := c.Kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list PersistentVolumes: %w", err)
	}
	for _, o := range pvs.Items {
		// Volumes of applications' claims come and go with the tests; pxb's temporary ones are in pxb-system.
		switch ref := o.Spec.ClaimRef; {
		case ref == nil:
			inv["PersistentVolume "+o.Name] = owners(o.Labels)
		case ref.Namespace == "pxb-system":
			inv["PersistentVolume "+o.Name] = append(owners(o.Labels), claims[ref.Name]...)
		}
	}
	return inv, nil
}

// Leftovers lists the temporary objects of a backup or restore that still exist: those carrying its owner
// label (selector, e.g. "pxb.dev/backup=nightly") — VolumeSnapshots in any namespace, VolumeSnapshotContents,
// PersistentVolumeClaims, upload and download Jobs and their pods in pxb-system — and the
// VolumeSnapshotContents, pxb-system claims and their PersistentVolumes that did not exist before and carry
// no other backup's or restore's label.
func (c *Cluster) Leftovers(ctx context.Context, selector string, before Inventory) ([]string, error) {
	seen := map[string]bool{}
	sel := metav1.ListOptions{LabelSelector: selector}
	movers := metav1.ListOptions{LabelSelector: selector + ",pxb.dev/job in (upload,download)"}
	vs, err := c.Snapshots.SnapshotV1().VolumeSnapshots("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("list VolumeSnapshots: %w", err)
	}
	for _, o := range vs.Items {
		seen["VolumeSnapshot "+o.Namespace+"/"+o.Name] = true
	}
	jobs, err := c.Kube.BatchV1().Jobs("pxb-system").List(ctx, movers)
	if err != nil {
		return nil, fmt.Errorf("list Jobs: %w", err)
	}
	for _, o := range jobs.Items {
		seen["Job pxb-system/"+o.Name] = true
	}
	pods, err := c.Kube.CoreV1().Pods("pxb-system").List(ctx, movers)
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for _, o := range pods.Items {
		seen["Pod pxb-system/"+o.Name] = true
	}
	now, err := c.inventory(ctx)
	if err != nil {
		return nil, err
	}
	for name, own := range now {
		if _, existed := before[name]; slices.Contains(own, selector) || (!existed && len(own) == 0) {
			seen[name] = true
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// WaitNoLeftovers waits until the temporary objects of a backup or restore (see Leftovers) are gone, failing
// the test with those still there.
func (c *Cluster) WaitNoLeftovers(t testing.TB, selector string, before Inventory, timeout time.Duration) {
	t.Helper()
	var left []string
	ctx := Context(t, timeout)
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := c.Leftovers(ctx, selector, before)
		if err != nil {
			left = []string{err.Error()}
			return false, nil // a passing API error; the timeout reports it
		}
		left = l
		return len(l) == 0, nil
	})
	if err != nil {
		t.Errorf("temporary objects (%s) still there %s after the end: %s", selector, timeout, strings.Join(left, ", "))
	}
}
