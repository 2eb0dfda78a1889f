package jobs

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// volumeRestore fills new volumes with a backup's volume data before the claims are restored: each volume
// is made in pxb-system through a temporary claim, filled by a download Job, then handed over to the claim
// the restore creates (the claim is restored bound to it).
type volumeRestore struct {
	*tracker
	r   *v1alpha1.Restore
	loc *v1alpha1.BackupLocation
	cfg jobspec.Config
	ao  apply.Options

	targets map[*VolumeRecord]string // volume -> the claim's namespace in the target
	filled  map[string]filledVolume  // "namespace/claim" in the target -> its volume
}

type filledVolume struct {
	pv     string
	policy corev1.PersistentVolumeReclaimPolicy
}

func restoreLabels(r *v1alpha1.Restore) map[string]string {
	return jobspec.Labels(jobspec.Target{Kind: jobspec.KindRestore, Namespace: r.Namespace, Name: r.Name})
}

// restoreVolumes fills a volume for every backed-up claim the restore selects, and returns the claims'
// bindings for pkg/apply. Failures are per volume.
func restoreVolumes(ctx context.Context, env *jobenv.Env, r *v1alpha1.Restore, b *v1alpha1.Backup, backup collect.Store, ao apply.Options, log *jobLog) (*volumeRestore, error) {
	records, err := ReadVolumes(ctx, backup)
	if err != nil {
		return nil, err
	}
	vr := &volumeRestore{
		tracker: &tracker{env: env, target: jobspec.Ref{Resource: v1alpha1.RestoresResource.Resource, Namespace: r.Namespace, Name: r.Name}, log: log},
		r:       r, ao: ao, targets: map[*VolumeRecord]string{}, filled: map[string]filledVolume{},
	}
	if len(records) == 0 {
		return vr, nil
	}
	rf := collect.ResourceFilter{Include: ao.IncludeResources, Exclude: ao.ExcludeResources}
	if err := rf.Resolve([]collect.Type{{Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true}}); err != nil {
		return nil, err
	}
	if !rf.Match(collect.Type{Version: "v1", Resource: "persistentvolumeclaims", Kind: "PersistentVolumeClaim", Namespaced: true}) {
		return vr, nil
	}
	nsFilter := collect.NamespaceFilter{Include: ao.IncludeNamespaces, Exclude: ao.ExcludeNamespaces}
	restore := r.Spec.RestoreVolumes == nil || *r.Spec.RestoreVolumes
	for i := range records {
		v := records[i]
		if !nsFilter.Match(v.Namespace, nil) {
			continue
		}
		target := v.Namespace
		if to, ok := ao.NamespaceMapping[v.Namespace]; ok {
			target = to
		}
		out := &VolumeRecord{Namespace: v.Namespace, PVC: v.PVC, Driver: v.Driver, Method: v.Method, Snapshot: v.Snapshot,
			StorageClass: v.StorageClass, Capacity: v.Capacity, AccessModes: v.AccessModes, VolumeMode: v.VolumeMode, Phase: v1alpha1.VolumePending}
		if sc, ok := ao.StorageClassMapping[v.StorageClass]; ok {
			out.StorageClass = sc
		}
		switch {
		case v.Phase != v1alpha1.VolumeCompleted || v.Snapshot == "":
			out.Phase, out.Message = v1alpha1.VolumeSkipped, "the backup holds no data of this volume"
		case !restore:
			out.Phase, out.Message = v1alpha1.VolumeSkipped, "spec.restoreVolumes is false: the claim is restored empty"
		case r.Spec.DryRun:
			out.Phase, out.Message = v1alpha1.VolumeSkipped, "dry run: the volume would be restored"
		}
		vr.targets[out] = target
		vr.vols = append(vr.vols, out)
	}
	if vr.cfg, err = jobspec.LoadConfig(ctx, env.Kube); err != nil {
		return nil, err
	}
	if vr.loc, err = store.GetLocation(ctx, env.Dynamic, string(b.Spec.Location)); err != nil {
		return nil, err
	}
	vr.start(ctx)
	eachPending(ctx, parallelism(ctx, env.Kube, vr.cfg), vr.vols, func(v *VolumeRecord) {
		if err := vr.fill(ctx, v); err != nil {
			vr.failVolume(ctx, v, err)
		}
	})
	return vr, ctx.Err()
}

// missingData are the claims ("namespace/claim" in the target) whose volumes failed, with why: pkg/apply
// restores neither them nor, running, the workloads that mount them.
func (vr *volumeRestore) missingData() map[string]string {
	out := map[string]string{}
	for _, v := range vr.vols {
		if v.Phase == v1alpha1.VolumeFailed {
			out[vr.targets[v]+"/"+v.PVC] = v.Message
		}
	}
	return out
}

// claimVolumes are the bindings of the claims whose volumes were filled.
func (vr *volumeRestore) claimVolumes() map[string]string {
	out := map[string]string{}
	for k, f := range vr.filled {
		out[k] = f.pv
	}
	return out
}

func (vr *volumeRestore) start(ctx context.Context) {
	err := setRestoreStatus(ctx, vr.env, vr.target, func(s *v1alpha1.RestoreStatus) {
		s.Stage = v1alpha1.RestoreStageVolumes
		listVolumes(&s.OperationStatus, vr.vols)
	})
	if err != nil {
		vr.log.Printf("%v", err)
	}
}

// fill makes the volume of v in pxb-system, writes its data, and hands it over to the claim to restore.
func (vr *volumeRestore) fill(ctx context.Context, v *VolumeRecord) error {
	target := vr.targets[v]
	kube := vr.env.Kube
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := kube.CoreV1().PersistentVolumeClaims(target).Get(gctx, v.PVC, metav1.GetOptions{})
	cancel()
	if err == nil && vr.ao.ExistingPolicy != apply.PolicyReplace {
		vr.mu.Lock()
		v.Phase, v.Message = v1alpha1.VolumeSkipped, fmt.Sprintf("claim %s/%s exists and is kept (existing-resource-policy %s)", target, v.PVC, vr.ao.ExistingPolicy)
		vr.mu.Unlock()
		vr.publish(ctx, v)
		return nil
	}
	vr.mu.Lock()
	v.Phase = v1alpha1.VolumeInProgress
	vr.mu.Unlock()
	vr.publish(ctx, v)

	name := tempName("restore", vr.r.Namespace, vr.r.Name, v.Key())
	size, err := resource.ParseQuantity(v.Capacity)
	if err != nil {
		size = resource.MustParse("1Gi")
	}
	modes := v.AccessModes
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace, Labels: restoreLabels(vr.r)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if v.StorageClass != "" {
		pvc.Spec.StorageClassName = ptr.To(v.StorageClass)
	}
	if v.VolumeMode != "" {
		pvc.Spec.VolumeMode = ptr.To(v.VolumeMode)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(cctx, pvc, metav1.CreateOptions{})
	cancel()
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create claim %s/%s for the new volume: %w", pvc.Namespace, name, err)
	}
	defer vr.deleteClaim(context.WithoutCancel(ctx), name)
	vr.log.Printf("volume %s: downloading snapshot %s into a new volume for %s/%s", v.Key(), v.Snapshot, target, v.PVC)
	res, err := runMover(ctx, kube, jobspec.Mover{
		Kind:     jobspec.KindDownload,
		Owner:    jobspec.Target{Kind: jobspec.KindRestore, Namespace: vr.r.Namespace, Name: vr.r.Name, UID: vr.r.UID},
		Volume:   v.Key(),
		Claim:    name,
		Snapshot: v.Snapshot,
		Block:    v.VolumeMode == corev1.PersistentVolumeBlock,
	}, vr.cfg, vr.loc, nil)
	if err != nil {
		return err
	}
	pv, err := vr.handOver(ctx, name, target, v.PVC)
	if err != nil {
		return err
	}
	vr.mu.Lock()
	v.Phase, v.Files, v.Bytes, v.PV = v1alpha1.VolumeCompleted, res.Files, res.Bytes, pv.pv
	vr.filled[target+"/"+v.PVC] = pv
	vr.mu.Unlock()
	vr.log.Printf("volume %s: %d files, %s in %.1fs into volume %s", v.Key(), res.Files, human.Bytes(res.Bytes), res.Seconds, pv.pv)
	vr.publish(ctx, v)
	return nil
}

// handOver binds the volume of temporary claim name to claim ns/claim: the volume is kept (Retain) while
// the temporary claim goes, then reserved for the claim the restore creates.
func (vr *volumeRestore) handOver(ctx context.Context, name, ns, claim string) (filledVolume, error) {
	kube := vr.env.Kube
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	tmp, err := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Get(gctx, name, metav1.GetOptions{})
	cancel()
	if err != nil {
		return filledVolume{}, fmt.Errorf("get claim %s/%s: %w", v1alpha1.SystemNamespace, name, err)
	}
	pvName := tmp.Spec.VolumeName
	if pvName == "" {
		return filledVolume{}, fmt.Errorf("claim %s/%s is not bound after its volume was filled", v1alpha1.SystemNamespace, name)
	}
	var fv filledVolume
	err = vr.updatePV(ctx, pvName, func(pv *corev1.PersistentVolume) {
		if fv.policy == "" {
			fv = filledVolume{pv: pvName, policy: pv.Spec.PersistentVolumeReclaimPolicy}
		}
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	})
	if err != nil {
		return fv, err
	}
	if err := vr.deleteClaim(ctx, name); err != nil {
		return fv, err
	}
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		gctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		_, err := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Get(gctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return fv, fmt.Errorf("claim %s/%s not gone after its deletion: %w", v1alpha1.SystemNamespace, name, err)
	}
	err = vr.updatePV(ctx, pvName, func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim}
		if pv.Labels == nil {
			pv.Labels = map[string]string{}
		}
		for k, v := range restoreLabels(vr.r) {
			pv.Labels[k] = v
		}
	})
	return fv, err
}

func (vr *volumeRestore) updatePV(ctx context.Context, name string, mutate func(*corev1.PersistentVolume)) error {
	pvs := vr.env.Kube.CoreV1().PersistentVolumes()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		uctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		pv, err := pvs.Get(uctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(pv)
		_, err = pvs.Update(uctx, pv, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update PersistentVolume %s: %w", name, err)
	}
	return nil
}

func (vr *volumeRestore) deleteClaim(ctx context.Context, name string) error {
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := vr.env.Kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Delete(dctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete claim %s/%s: %w", v1alpha1.SystemNamespace, name, err)
	}
	return nil
}

// settle gives every filled volume its reclaim policy back once its claim is bound. A volume whose claim
// was not restored keeps Retain (its data is never deleted by accident) and is reported.
func (vr *volumeRestore) settle(ctx context.Context) []string {
	var warnings []string
	for key, f := range vr.filled {
		var bound bool
		_ = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			gctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			pv, err := vr.env.Kube.CoreV1().PersistentVolumes().Get(gctx, f.pv, metav1.GetOptions{})
			bound = err == nil && pv.Status.Phase == corev1.VolumeBound && pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID != ""
			return bound, nil
		})
		if !bound {
			warnings = append(warnings, fmt.Sprintf("volume %s holds the restored data of claim %s, but the claim did not bind to it: the volume is kept (reclaim policy Retain)", f.pv, key))
			continue
		}
		if f.policy == corev1.PersistentVolumeReclaimRetain {
			continue
		}
		if err := vr.updatePV(ctx, f.pv, func(pv *corev1.PersistentVolume) { pv.Spec.PersistentVolumeReclaimPolicy = f.policy }); err != nil {
			warnings = append(warnings, fmt.Sprintf("volume %s of claim %s keeps reclaim policy Retain: %v", f.pv, key, err))
		}
	}
	return warnings
}
