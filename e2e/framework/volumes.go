//go:build e2e

package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	pod := c.toolPod(fmt.Sprintf("%s-%s-%d", args[0], pvc, time.Now().UnixNano()%100000), args...)
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: readOnly}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc, ReadOnly: readOnly},
	}}}
	return c.RunPod(t, ns, pod)
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

// RunPod runs a pod to completion, deletes it, and returns its container's termination message; the test
// fails with the pod's logs if it fails.
func (c *Cluster) RunPod(t testing.TB, ns string, pod *corev1.Pod) string {
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
	WaitFor(t, 2*time.Minute, fmt.Sprintf("pod %s/%s", ns, name), func(ctx context.Context) (bool, error) {
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
	// The pod is done; it must not keep the volume busy for the next step.
	ctx := Context(t, time.Minute)
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	if msg == "" {
		t.Fatalf("pod %s/%s left no result", ns, name)
	}
	return msg
}
