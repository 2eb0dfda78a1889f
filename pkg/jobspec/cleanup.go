package jobspec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/snapshot"
)

// What deleting a Backup or a Restore removes from the cluster besides the object: the Job that carried it
// out, found by its name, and the temporary objects of its volume work, found by the labels of its Target.

// DeleteObjectAndJob deletes the Backup or Restore of t and the Job that carried it out.
func DeleteObjectAndJob(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	job := Name(t)
	if err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).Delete(ctx, job, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Job %s/%s: %w", v1alpha1.SystemNamespace, job, err)
	}
	gvr, kind := v1alpha1.BackupsResource, "Backup"
	if t.Kind == KindRestore {
		gvr, kind = v1alpha1.RestoresResource, "Restore"
	}
	if err := dyn.Resource(gvr).Namespace(t.Namespace).Delete(ctx, t.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, t.Namespace, t.Name, err)
	}
	return nil
}

// DeleteTemporary deletes what a backup's or restore's volume work may have left behind (its data-mover
// Jobs, temporary claims, VolumeSnapshots and VolumeSnapshotContents), found by the labels of t: for a
// Backup or Restore deleted while its job ran. Volumes already handed to restored claims are not temporary
// and are kept.
func DeleteTemporary(ctx context.Context, kube kubernetes.Interface, snap snapclient.Interface, t Target) error {
	l := Labels(t)
	owner := LabelBackup
	if t.Kind == KindRestore {
		owner = LabelRestore
	}
	sel := labels.Set{owner: l[owner], LabelNamespace: l[LabelNamespace]}.String()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var errs []error
	bg := metav1.DeletePropagationBackground
	jobs, err := kube.BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	errs = append(errs, err)
	if err == nil {
		for _, j := range jobs.Items {
			if k := j.Labels[LabelJob]; k == string(KindUpload) || k == string(KindDownload) {
				errs = append(errs, ignoreNotFound(kube.BatchV1().Jobs(j.Namespace).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: &bg})))
			}
		}
	}
	pvcs, err := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	errs = append(errs, err)
	if err == nil {
		for _, c := range pvcs.Items {
			errs = append(errs, ignoreNotFound(kube.CoreV1().PersistentVolumeClaims(c.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{})))
		}
	}
	if snap != nil {
		// The copies in pxb-system first: their contents keep the storage snapshots, which the originals own.
		vss, err := snap.SnapshotV1().VolumeSnapshots("").List(ctx, metav1.ListOptions{LabelSelector: sel})
		errs = append(errs, ignoreNotFound(err)) // NotFound: the cluster serves no snapshots
		if err == nil {
			slices.SortStableFunc(vss.Items, func(a, b snapv1.VolumeSnapshot) int {
				return boolOrder(a.Namespace != v1alpha1.SystemNamespace) - boolOrder(b.Namespace != v1alpha1.SystemNamespace)
			})
			for _, vs := range vss.Items {
				errs = append(errs, snapshot.Delete(ctx, snap, vs.Namespace, vs.Name))
				if vs.Namespace == v1alpha1.SystemNamespace {
					errs = append(errs, snapshot.DeleteContent(ctx, snap, vs.Name))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete the temporary objects of %s %s/%s: %w", t.Kind, t.Namespace, t.Name, err)
	}
	return nil
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
