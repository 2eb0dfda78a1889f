package jobs

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
)

// writePlan keeps a dry run's plan beside its summary in out: every object with its outcome and diff, as
// pkg/apply planned it, and every volume the restore would make.
func writePlan(ctx context.Context, r *v1alpha1.Restore, vr *volumeRestore, res *apply.Result, out collect.Store) error {
	p := &apply.Plan{Restore: r.Namespace + "/" + r.Name, Backup: r.Namespace + "/" + string(r.Spec.BackupName),
		ExistingPolicy: vr.ao.ExistingPolicy, Objects: res.Planned}
	if p.ExistingPolicy == "" {
		p.ExistingPolicy = apply.PolicyRetain
	}
	restore := r.Spec.RestoreVolumes == nil || *r.Spec.RestoreVolumes
	for _, v := range vr.vols {
		p.Volumes = append(p.Volumes, vr.planVolume(ctx, v, restore))
	}
	return apply.WritePlan(ctx, out, p)
}

// planVolume says what a restore would do with volume v: make a claim filled from its snapshot, keep the
// claim that exists, or fail for want of its StorageClass, in which no volume can be made.
func (vr *volumeRestore) planVolume(ctx context.Context, v *VolumeRecord, restore bool) apply.PlannedVolume {
	target := vr.targets[v]
	pv := apply.PlannedVolume{Namespace: target, Claim: v.PVC, Snapshot: v.Snapshot, StorageClass: v.StorageClass, Size: v.Capacity}
	if target != v.Namespace {
		pv.SourceNamespace = v.Namespace
	}
	if v.Snapshot == "" || !restore {
		pv.Outcome, pv.Reason = apply.OutcomeSkipped, v.Message
		return pv
	}
	kube := vr.env.Kube
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := kube.CoreV1().PersistentVolumeClaims(target).Get(gctx, v.PVC, metav1.GetOptions{})
	cancel()
	switch {
	case err == nil && vr.ao.ExistingPolicy != apply.PolicyReplace:
		pv.Outcome, pv.Reason = apply.OutcomeWouldRetain, "the claim exists and is kept"
		return pv
	case err != nil && !apierrors.IsNotFound(err):
		pv.Outcome, pv.Reason = apply.OutcomeWouldFail, fmt.Sprintf("claim %s/%s: %v", target, v.PVC, err)
		return pv
	}
	if v.StorageClass != "" {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := kube.StorageV1().StorageClasses().Get(gctx, v.StorageClass, metav1.GetOptions{})
		cancel()
		if apierrors.IsNotFound(err) {
			pv.Outcome, pv.Reason = apply.OutcomeWouldFail, fmt.Sprintf("StorageClass %q not found: no volume can be made for the data", v.StorageClass)
			return pv
		}
	}
	pv.Outcome = apply.OutcomeWouldCreate
	return pv
}
