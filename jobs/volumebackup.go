package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/human"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/snapshot"
	"github.com/pxb-dev/pxb/pkg/store"
)

// volumeBackup is the volume data of one Backup on its way into the repository.
type volumeBackup struct {
	*tracker
	b      *v1alpha1.Backup
	loc    *v1alpha1.BackupLocation
	opened *store.Location // the location, open: its repository
	cfg    jobspec.Config
	snap   snapclient.Interface

	// per volume, what the upload mounts
	sources map[*VolumeRecord]*volumeSource
}

// volumeSource is where an upload reads a volume from.
type volumeSource struct {
	snapshotClass string
	snapshotName  string // the VolumeSnapshot in the claim's namespace
	hostPath      string // FileSystem: the volume's directory on the node of its pod
	node          string
}

// tempName names the temporary objects of a volume of a backup or restore: stable, so that a retried job
// finds them, and distinct per owner and volume.
func tempName(kind, ownerNS, owner, volume string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + ownerNS + "/" + owner + "\x00" + volume))
	return "pxb-" + kind + "-" + hex.EncodeToString(sum[:10])
}

// tempLabels are the labels of a backup's temporary objects, by which they are found and cleaned up.
func tempLabels(b *v1alpha1.Backup) map[string]string {
	return jobspec.Labels(jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name})
}

// backupVolumes takes the data of claims into the repository: it plans a method per claim, snapshots all
// snapshot-method claims together between the backup's pre-exec and post-exec rules, then uploads every
// volume through data-mover Jobs, a bounded number at once. Failures are per volume and recorded in the
// returned records; the error is for what stops them all, a failed rule among them.
func backupVolumes(ctx context.Context, env *jobenv.Env, b *v1alpha1.Backup, opened *store.Location, claims []types.NamespacedName, q *quiesce, log *jobLog) ([]VolumeRecord, error) {
	if len(claims) == 0 {
		if err := q.before(ctx); err != nil {
			return nil, err
		}
		return nil, q.after(ctx)
	}
	cfg, err := jobspec.LoadConfig(ctx, env.Kube)
	if err != nil {
		return nil, err
	}
	loc, err := store.GetLocation(ctx, env.Dynamic, string(b.Spec.Location))
	if err != nil {
		return nil, err
	}
	snap, err := snapclient.NewForConfig(env.Config)
	if err != nil {
		return nil, fmt.Errorf("snapshot client: %w", err)
	}
	if cfg.KubeletRootDir == "" {
		// The claims' nodes are taken to keep the kubelet where this one does, as nodes of a cluster do.
		if cfg.KubeletRootDir = jobenv.KubeletRootDir(); cfg.KubeletRootDir != "" {
			log.Printf("kubelet root directory %s, as this job's pod shows", cfg.KubeletRootDir)
		} else {
			cfg.KubeletRootDir = jobspec.DefaultKubeletRootDir
		}
	}
	vb := &volumeBackup{
		tracker: &tracker{env: env, target: jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: b.Namespace, Name: b.Name}, log: log},
		b:       b, loc: loc, opened: opened, cfg: cfg, snap: snap, sources: map[*VolumeRecord]*volumeSource{},
	}
	for _, c := range claims {
		v := &VolumeRecord{Namespace: c.Namespace, PVC: c.Name}
		vb.plan(ctx, v)
		vb.vols = append(vb.vols, v)
	}
	vb.start(ctx)
	defer vb.cleanup(context.WithoutCancel(ctx))

	// Every snapshot is taken while the applications are quiet. A volume read live is only fixed once it
	// is uploaded: with one, the post-exec rule waits for the uploads.
	if err := q.before(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if err := q.after(ctx); err != nil {
			log.Printf("%v", err)
		}
	}()
	vb.snapshots(ctx)
	if !slices.ContainsFunc(vb.vols, func(v *VolumeRecord) bool {
		return v.Phase == v1alpha1.VolumePending && v.Method == v1alpha1.VolumeFileSystem
	}) {
		if err := q.after(ctx); err != nil {
			return nil, err
		}
	}
	if err := setBackupStatus(ctx, env, vb.target, func(s *v1alpha1.BackupStatus) { s.Stage = v1alpha1.BackupStageVolumes }); err != nil {
		log.Printf("%v", err)
	}
	vb.uploads(ctx)
	if err := q.after(ctx); err != nil {
		return nil, err
	}

	out := make([]VolumeRecord, len(vb.vols))
	for i, v := range vb.vols {
		out[i] = *v
	}
	return out, ctx.Err()
}

// plan fills in v from its claim and decides its method; a claim that cannot be backed up is Failed with
// the reason.
func (vb *volumeBackup) plan(ctx context.Context, v *VolumeRecord) {
	fail := func(format string, args ...any) {
		v.Phase, v.Message = v1alpha1.VolumeFailed, fmt.Sprintf("claim %s: ", v.Key())+fmt.Sprintf(format, args...)
	}
	gctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	pvc, err := vb.env.Kube.CoreV1().PersistentVolumeClaims(v.Namespace).Get(gctx, v.PVC, metav1.GetOptions{})
	if err != nil {
		fail("%v", err)
		return
	}
	v.UID = string(pvc.UID)
	v.StorageClass = ptr.Deref(pvc.Spec.StorageClassName, "")
	v.AccessModes = pvc.Spec.AccessModes
	if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		v.Capacity = q.String()
	}
	method, explicit, err := methodOf(pvc, vb.b.Spec.VolumeMethod)
	if err != nil {
		fail("%v", err)
		return
	}
	if explicit {
		v.Method = method
	}
	if method == v1alpha1.VolumeNone {
		v.Phase, v.Message = v1alpha1.VolumeSkipped, "volume method None: only the claim's definition is backed up"
		return
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		fail("%s, not bound to a volume: there is no data to back up", phaseOr(string(pvc.Status.Phase), "Pending"))
		return
	}
	v.PV = pvc.Spec.VolumeName
	pv, err := vb.env.Kube.CoreV1().PersistentVolumes().Get(gctx, v.PV, metav1.GetOptions{})
	if err != nil {
		fail("volume %s: %v", v.PV, err)
		return
	}
	if pv.Spec.CSI != nil {
		v.Driver = pv.Spec.CSI.Driver
	}
	src := &volumeSource{}
	if method == v1alpha1.VolumeSnapshot {
		if v.Driver == "" {
			if explicit {
				fail("volume %s is not a CSI volume and cannot be snapshotted: use --volume-method fs", v.PV)
				return
			}
			method = v1alpha1.VolumeFileSystem
		} else if src.snapshotClass, err = snapshot.ClassFor(ctx, vb.snap, v.Driver, stringMap(vb.b.Spec.SnapshotClasses)); err != nil {
			var none snapshot.ErrNoClass
			if !errors.As(err, &none) || explicit {
				fail("%v", err)
				return
			}
			method = v1alpha1.VolumeFileSystem
		}
	}
	v.Method = method
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		v.VolumeMode = corev1.PersistentVolumeBlock
		if method == v1alpha1.VolumeFileSystem {
			why := "its volume has no CSI driver with a VolumeSnapshotClass"
			if explicit {
				why = "volume method FileSystem reads files, which a block volume has none of"
			}
			fail("a block volume is backed up from a snapshot of it, and %s: use --volume-method snapshot with a VolumeSnapshotClass for its CSI driver, or keep the claim's definition only with --volume-method none", why)
			return
		}
	}
	if method == v1alpha1.VolumeFileSystem {
		if src.hostPath, src.node, err = vb.livePath(ctx, pvc, pv); err != nil {
			fail("%v", err)
			return
		}
	}
	v.Phase = v1alpha1.VolumePending
	vb.sources[v] = src
}

// methodOf is the method for pvc: its annotation, else the Backup's; explicit says it was asked for rather
// than chosen by default.
func methodOf(pvc *corev1.PersistentVolumeClaim, spec v1alpha1.VolumeMethod) (v1alpha1.VolumeMethod, bool, error) {
	if a, ok := pvc.Annotations[v1alpha1.VolumeMethodAnnotation]; ok {
		m, err := v1alpha1.ParseVolumeMethod(a)
		if err != nil {
			return "", false, fmt.Errorf("annotation %s: %w", v1alpha1.VolumeMethodAnnotation, err)
		}
		return m, true, nil
	}
	if spec == "" {
		return v1alpha1.VolumeSnapshot, false, nil
	}
	return spec, true, nil
}

func stringMap[V ~string](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func phaseOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

// livePath finds a running pod that mounts pvc and returns the directory of the volume on its node, as the
// kubelet mounts it for the pod.
func (vb *volumeBackup) livePath(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (string, string, error) {
	lctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	pods, err := vb.env.Kube.CoreV1().Pods(pvc.Namespace).List(lctx, metav1.ListOptions{})
	if err != nil {
		return "", "", fmt.Errorf("list pods to find the one using the claim: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
			continue
		}
		for _, vol := range p.Spec.Volumes {
			if vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != pvc.Name {
				continue
			}
			var dir string
			switch {
			case pv.Spec.CSI != nil:
				dir = path.Join("kubernetes.io~csi", pv.Name, "mount")
			case pv.Spec.Local != nil:
				dir = path.Join("kubernetes.io~local-volume", pv.Name)
			case pv.Spec.NFS != nil:
				dir = path.Join("kubernetes.io~nfs", pv.Name)
			case pv.Spec.HostPath != nil:
				return pv.Spec.HostPath.Path, p.Spec.NodeName, nil
			default:
				return "", "", fmt.Errorf("the fs method does not know where the kubelet mounts volume %s's kind of volume", pv.Name)
			}
			return path.Join(vb.cfg.KubeletRootDir, "pods", string(p.UID), "volumes", dir), p.Spec.NodeName, nil
		}
	}
	return "", "", fmt.Errorf("no running pod mounts the claim, and the fs method reads a volume through the pod that uses it: start the pod, or back the volume up with a snapshot")
}

// start lists the volumes in the status, Pending or already Failed, with the totals.
func (vb *volumeBackup) start(ctx context.Context) {
	err := setBackupStatus(ctx, vb.env, vb.target, func(s *v1alpha1.BackupStatus) {
		s.Stage = v1alpha1.BackupStageSnapshots
		listVolumes(&s.OperationStatus, vb.vols)
	})
	if err != nil {
		vb.log.Printf("%v", err)
	}
	for _, v := range vb.vols {
		if v.Phase == v1alpha1.VolumeFailed {
			vb.log.Printf("volume %s: %s", v.Key(), v.Message)
		}
	}
}

// snapshots takes the VolumeSnapshots of every snapshot-method volume at once, then waits for each.
func (vb *volumeBackup) snapshots(ctx context.Context) {
	for _, v := range vb.vols {
		src := vb.sources[v]
		if v.Phase != v1alpha1.VolumePending || v.Method != v1alpha1.VolumeSnapshot {
			continue
		}
		src.snapshotName = tempName("snap", vb.b.Namespace, vb.b.Name, v.Key())
		if _, err := snapshot.Create(ctx, vb.snap, v.Namespace, src.snapshotName, v.PVC, src.snapshotClass, tempLabels(vb.b)); err != nil {
			vb.failVolume(ctx, v, err)
		}
	}
	for _, v := range vb.vols {
		src := vb.sources[v]
		if v.Phase != v1alpha1.VolumePending || v.Method != v1alpha1.VolumeSnapshot {
			continue
		}
		if _, _, err := snapshot.WaitReady(ctx, vb.snap, v.Namespace, src.snapshotName, vb.cfg.SnapshotTimeout); err != nil {
			vb.failVolume(ctx, v, err)
			continue
		}
		vb.log.Printf("volume %s: snapshot %s/%s ready", v.Key(), v.Namespace, src.snapshotName)
	}
}

// uploads moves every pending volume into the repository, a bounded number at once.
func (vb *volumeBackup) uploads(ctx context.Context) {
	eachPending(ctx, parallelism(ctx, vb.env.Kube, vb.cfg), vb.vols, func(v *VolumeRecord) {
		if err := vb.upload(ctx, v); err != nil {
			vb.failVolume(ctx, v, err)
		}
	})
}

// upload moves one volume: for a snapshot, through a claim made from it in pxb-system.
func (vb *volumeBackup) upload(ctx context.Context, v *VolumeRecord) error {
	src := vb.sources[v]
	m := jobspec.Mover{
		Kind:   jobspec.KindUpload,
		Owner:  jobspec.Target{Kind: jobspec.KindBackup, Namespace: vb.b.Namespace, Name: vb.b.Name, UID: vb.b.UID},
		Volume: v.Key(),
		Method: v.Method,
		Block:  v.VolumeMode == corev1.PersistentVolumeBlock,
	}
	vb.mu.Lock()
	v.Phase = v1alpha1.VolumeInProgress
	vb.mu.Unlock()
	vb.publish(ctx, v)
	if v.Method == v1alpha1.VolumeSnapshot {
		claim, err := vb.snapshotClaim(ctx, v, src)
		if err != nil {
			return err
		}
		m.Claim = claim
	} else {
		m.HostPath, m.Node = src.hostPath, src.node
	}
	vb.log.Printf("volume %s: uploading (%s)", v.Key(), v.Method)
	res, err := runMover(ctx, vb.env.Kube, m, vb.cfg, vb.loc, func(ctx context.Context) (*MoverResult, error) {
		return findUpload(ctx, vb.opened.Repository(), vb.b, v.Key())
	})
	if err != nil {
		return err
	}
	vb.mu.Lock()
	v.Phase, v.Snapshot, v.Files, v.Bytes, v.UploadedBytes = v1alpha1.VolumeCompleted, res.Snapshot, res.Files, res.Bytes, res.StoredBytes
	vb.mu.Unlock()
	vb.log.Printf("volume %s: %d files, %s in %.1fs, %s new, %s stored, snapshot %s", v.Key(), res.Files,
		human.Bytes(res.Bytes), res.Seconds, human.Bytes(res.NewBytes), human.Bytes(res.StoredBytes), res.Snapshot)
	vb.publish(ctx, v)
	// The storage snapshot and the claim made from it are not needed any more.
	vb.release(context.WithoutCancel(ctx), v)
	return nil
}

// snapshotClaim brings v's snapshot into pxb-system and makes a claim from it there, for the upload Job.
func (vb *volumeBackup) snapshotClaim(ctx context.Context, v *VolumeRecord, src *volumeSource) (string, error) {
	_, content, err := snapshot.WaitReady(ctx, vb.snap, v.Namespace, src.snapshotName, vb.cfg.SnapshotTimeout)
	if err != nil {
		return "", err
	}
	name := tempName("copy", vb.b.Namespace, vb.b.Name, v.Key())
	ready, err := snapshot.Rebind(ctx, vb.snap, content, v1alpha1.SystemNamespace, name, tempLabels(vb.b), vb.cfg.SnapshotTimeout)
	if err != nil {
		return "", err
	}
	size := resource.MustParse("1Gi")
	if v.Capacity != "" {
		size = resource.MustParse(v.Capacity)
	}
	if rs := ready.Status.RestoreSize; rs != nil && rs.Cmp(size) > 0 {
		size = *rs
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace, Labels: tempLabels(vb.b)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			StorageClassName: ptr.To(v.StorageClass),
			DataSource:       &corev1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: name},
		},
	}
	if v.VolumeMode != "" {
		pvc.Spec.VolumeMode = ptr.To(v.VolumeMode)
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := vb.env.Kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(cctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create claim %s/%s from the snapshot: %w", pvc.Namespace, name, err)
	}
	return name, nil
}

// release deletes v's temporary objects: the claim and snapshot in pxb-system first (its content keeps the
// storage snapshot), then the snapshot in the claim's namespace, which deletes the storage snapshot.
func (vb *volumeBackup) release(ctx context.Context, v *VolumeRecord) {
	src := vb.sources[v]
	if src == nil || src.snapshotName == "" {
		return
	}
	name := tempName("copy", vb.b.Namespace, vb.b.Name, v.Key())
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var errs []error
	if err := vb.env.Kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete claim %s/%s: %w", v1alpha1.SystemNamespace, name, err))
	}
	errs = append(errs, snapshot.Delete(ctx, vb.snap, v1alpha1.SystemNamespace, name),
		snapshot.DeleteContent(ctx, vb.snap, name),
		snapshot.Delete(ctx, vb.snap, v.Namespace, src.snapshotName))
	if err := errors.Join(errs...); err != nil {
		vb.log.Printf("volume %s: clean up: %v", v.Key(), err)
	}
	src.snapshotName = ""
}

// cleanup releases what is left of every volume, after failures too.
func (vb *volumeBackup) cleanup(ctx context.Context) {
	for _, v := range vb.vols {
		vb.release(ctx, v)
	}
}
