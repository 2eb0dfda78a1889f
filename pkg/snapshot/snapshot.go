// Package snapshot takes CSI VolumeSnapshots of claims and brings them into another namespace, so that a Job
// there can mount a volume made from them.
package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// DefaultClassAnnotation marks the VolumeSnapshotClass a driver's snapshots use when nothing says otherwise.
const DefaultClassAnnotation = "snapshot.storage.kubernetes.io/is-default-class"

const callTimeout = 30 * time.Second

// ClassFor returns the VolumeSnapshotClass for driver's volumes: the one mapping names, else the driver's
// class annotated as default, else its only class. The error says what to do when there is none.
func ClassFor(ctx context.Context, snap snapclient.Interface, driver string, mapping map[string]string) (string, error) {
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := snap.SnapshotV1().VolumeSnapshotClasses().List(lctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list VolumeSnapshotClasses: %w", err)
	}
	if name, ok := mapping[driver]; ok {
		for _, c := range list.Items {
			if c.Name == name {
				if c.Driver != driver {
					return "", fmt.Errorf("VolumeSnapshotClass %s given for driver %s belongs to driver %s", name, driver, c.Driver)
				}
				return name, nil
			}
		}
		return "", fmt.Errorf("VolumeSnapshotClass %s given for driver %s does not exist", name, driver)
	}
	var mine, defaults []string
	for _, c := range list.Items {
		if c.Driver != driver {
			continue
		}
		mine = append(mine, c.Name)
		if c.Annotations[DefaultClassAnnotation] == "true" {
			defaults = append(defaults, c.Name)
		}
	}
	slices.Sort(mine)
	slices.Sort(defaults)
	switch {
	case len(defaults) == 1:
		return defaults[0], nil
	case len(defaults) > 1:
		return "", fmt.Errorf("driver %s has %d default VolumeSnapshotClasses (%s): name one with --snapshot-class %s=CLASS", driver, len(defaults), strings.Join(defaults, ", "), driver)
	case len(mine) == 1:
		return mine[0], nil
	case len(mine) > 1:
		return "", fmt.Errorf("driver %s has %d VolumeSnapshotClasses and none is default (%s): name one with --snapshot-class %s=CLASS", driver, len(mine), strings.Join(mine, ", "), driver)
	}
	return "", ErrNoClass{Driver: driver}
}

// ErrNoClass says that a driver has no VolumeSnapshotClass, so its volumes cannot be snapshotted.
type ErrNoClass struct{ Driver string }

func (e ErrNoClass) Error() string {
	return fmt.Sprintf("driver %s has no VolumeSnapshotClass: create one for it, or back this volume up with --volume-method fs", e.Driver)
}

// Create takes a VolumeSnapshot name of claim ns/pvc with class, labelled with labels; one that exists
// already (a retried backup) is returned as it is.
func Create(ctx context.Context, snap snapclient.Interface, ns, name, pvc, class string, labels map[string]string) (*snapv1.VolumeSnapshot, error) {
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: snapv1.VolumeSnapshotSpec{
			Source:                  snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(pvc)},
			VolumeSnapshotClassName: ptr.To(class),
		},
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	created, err := snap.SnapshotV1().VolumeSnapshots(ns).Create(cctx, vs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = snap.SnapshotV1().VolumeSnapshots(ns).Get(cctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create VolumeSnapshot %s/%s of claim %s: %w", ns, name, pvc, err)
	}
	return created, nil
}

// WaitReady waits until VolumeSnapshot ns/name is ready to use and returns it with its content. A snapshot
// that reports an error, or is not ready within timeout, fails with the snapshot's own words.
func WaitReady(ctx context.Context, snap snapclient.Interface, ns, name string, timeout time.Duration) (*snapv1.VolumeSnapshot, *snapv1.VolumeSnapshotContent, error) {
	var vs *snapv1.VolumeSnapshot
	var content *snapv1.VolumeSnapshotContent
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		var err error
		if vs, err = snap.SnapshotV1().VolumeSnapshots(ns).Get(gctx, name, metav1.GetOptions{}); err != nil {
			last = err.Error()
			return false, nil
		}
		st := vs.Status
		if st == nil {
			last = "no status yet (is the snapshot controller running?)"
			return false, nil
		}
		if st.Error != nil && st.Error.Message != nil {
			// Errors may be transient (the controller retries); keep waiting but remember the words.
			last = *st.Error.Message
		}
		if st.ReadyToUse == nil || !*st.ReadyToUse || st.BoundVolumeSnapshotContentName == nil {
			if last == "" {
				last = "not ready to use yet"
			}
			return false, nil
		}
		content, err = snap.SnapshotV1().VolumeSnapshotContents().Get(gctx, *st.BoundVolumeSnapshotContentName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if content.Status == nil || content.Status.SnapshotHandle == nil {
			last = "its VolumeSnapshotContent " + content.Name + " has no snapshot handle yet"
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("VolumeSnapshot %s/%s: %w", ns, name, ctx.Err())
		}
		return nil, nil, fmt.Errorf("VolumeSnapshot %s/%s not ready to use after %s: %s", ns, name, timeout, last)
	}
	return vs, content, nil
}

// Rebind makes VolumeSnapshot ns/name for the snapshot behind content, through a new content that points at
// the same storage snapshot and keeps it when deleted (Retain): the original snapshot stays its owner. It
// waits until the new snapshot is ready and returns it.
func Rebind(ctx context.Context, snap snapclient.Interface, content *snapv1.VolumeSnapshotContent, ns, name string, labels map[string]string, timeout time.Duration) (*snapv1.VolumeSnapshot, error) {
	if content.Status == nil || content.Status.SnapshotHandle == nil {
		return nil, fmt.Errorf("VolumeSnapshotContent %s has no snapshot handle", content.Name)
	}
	vsc := &snapv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: snapv1.VolumeSnapshotContentSpec{
			DeletionPolicy:          snapv1.VolumeSnapshotContentRetain,
			Driver:                  content.Spec.Driver,
			VolumeSnapshotClassName: content.Spec.VolumeSnapshotClassName,
			SourceVolumeMode:        content.Spec.SourceVolumeMode,
			Source:                  snapv1.VolumeSnapshotContentSource{SnapshotHandle: content.Status.SnapshotHandle},
			VolumeSnapshotRef:       corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: snapv1.VolumeSnapshotSpec{
			Source:                  snapv1.VolumeSnapshotSource{VolumeSnapshotContentName: ptr.To(name)},
			VolumeSnapshotClassName: content.Spec.VolumeSnapshotClassName,
		},
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := snap.SnapshotV1().VolumeSnapshotContents().Create(cctx, vsc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create VolumeSnapshotContent %s: %w", name, err)
	}
	if _, err := snap.SnapshotV1().VolumeSnapshots(ns).Create(cctx, vs, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create VolumeSnapshot %s/%s: %w", ns, name, err)
	}
	ready, _, err := WaitReady(ctx, snap, ns, name, timeout)
	return ready, err
}

// Delete deletes VolumeSnapshot ns/name; one already gone is no error.
func Delete(ctx context.Context, snap snapclient.Interface, ns, name string) error {
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := snap.SnapshotV1().VolumeSnapshots(ns).Delete(dctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete VolumeSnapshot %s/%s: %w", ns, name, err)
	}
	return nil
}

// DeleteContent deletes VolumeSnapshotContent name; one already gone is no error.
func DeleteContent(ctx context.Context, snap snapclient.Interface, name string) error {
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := snap.SnapshotV1().VolumeSnapshotContents().Delete(dctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete VolumeSnapshotContent %s: %w", name, err)
	}
	return nil
}
