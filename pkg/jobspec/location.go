package jobspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// LabelLocation names the BackupLocation a location Job works on.
const LabelLocation = "pxb.dev/location"

// NFSMountPath is where a Job's pod mounts an NFS location's export; pxb-job opens the location there.
const NFSMountPath = "/mnt/location"

// nfsVolume is the name of the pod volume that holds an NFS location's export.
const nfsVolume = "location"

// LocationJob renders a Job of kind (KindCheck, KindSync, KindMaintenance) for BackupLocation loc, its pod
// given the flags more besides its target. Unlike a Backup's Job, each run is a new Job (generated name), so
// checking again checks again. The pod mounts the export of an NFS location.
func LocationJob(kind Kind, loc *v1alpha1.BackupLocation, c Config, more ...string) *batchv1.Job {
	t := Target{Kind: kind, Namespace: v1alpha1.SystemNamespace, Name: loc.Name, UID: loc.UID}
	job := Job(t, c)
	name := Name(t)
	base := name[:strings.LastIndex(name, "-")]
	// Room for the five random characters the API server appends.
	if max := 63 - 5 - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-")
	}
	job.Name, job.GenerateName = "", base+"-"
	job.Labels[LabelLocation] = LabelValue(loc.Name)
	job.Spec.Template.Labels[LabelLocation] = LabelValue(loc.Name)
	ctr := &job.Spec.Template.Spec.Containers[0]
	ctr.Args = args(kind, Ref{Resource: v1alpha1.BackupLocationsResource.Resource, Namespace: v1alpha1.SystemNamespace, Name: loc.Name}, more...)
	MountLocation(&job.Spec.Template.Spec, loc)
	return job
}

// MountLocation adds an NFS location's export to pod, mounted read-write at NFSMountPath in every
// container; other providers are reached over the network and need nothing. An inline nfs volume cannot
// carry mount options, so a location with mount options is mounted through the claim of NFSVolume.
func MountLocation(pod *corev1.PodSpec, loc *v1alpha1.BackupLocation) {
	if loc.Spec.Provider != v1alpha1.ProviderNFS || loc.Spec.NFS == nil {
		return
	}
	vol := corev1.Volume{Name: nfsVolume, VolumeSource: corev1.VolumeSource{
		NFS: &corev1.NFSVolumeSource{Server: loc.Spec.NFS.Server, Path: loc.Spec.NFS.Path},
	}}
	if _, pvc := NFSVolume(loc); pvc != nil {
		vol.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc.Name}}
	}
	pod.Volumes = append(pod.Volumes, vol)
	for i := range pod.Containers {
		pod.Containers[i].VolumeMounts = append(pod.Containers[i].VolumeMounts, corev1.VolumeMount{Name: nfsVolume, MountPath: NFSMountPath})
	}
}

// NFSVolume returns the PersistentVolume and its claim in pxb-system through which Jobs mount an NFS
// location that has mount options, or nils when an inline nfs volume serves. Both are named after the
// location and a hash of the export and options, so changed options make a new pair; they are kept for the
// location's later Jobs (ReadWriteMany, reclaim policy Retain: the data on the export is never touched).
func NFSVolume(loc *v1alpha1.BackupLocation) (*corev1.PersistentVolume, *corev1.PersistentVolumeClaim) {
	nfs := loc.Spec.NFS
	if loc.Spec.Provider != v1alpha1.ProviderNFS || nfs == nil || len(nfs.MountOptions) == 0 {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(nfs.Server + "\x00" + nfs.Path + "\x00" + strings.Join(nfs.MountOptions, ",")))
	suffix := hex.EncodeToString(sum[:4])
	base := "pxb-nfs-" + loc.Name
	if max := validation.DNS1123LabelMaxLength - len(suffix) - 1; len(base) > max {
		base = strings.TrimRight(base[:max], "-.")
	}
	name := base + "-" + suffix
	labels := map[string]string{LabelLocation: LabelValue(loc.Name), LabelManagedBy: "pxb"}
	// The size is required by the API and means nothing for NFS.
	size := corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pv := &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      size,
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			MountOptions:                  nfs.MountOptions,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: nfs.Server, Path: nfs.Path}},
			// Bound to its own claim only, never to another claim that happens to match.
			ClaimRef:         &corev1.ObjectReference{Namespace: v1alpha1.SystemNamespace, Name: name},
			StorageClassName: "",
		},
	}
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: size},
			VolumeName:       name,
			StorageClassName: ptr.To(""),
		},
	}
	return pv, pvc
}

// DeleteNFSVolumes deletes the PersistentVolumes and claims through which Jobs mounted NFS location name
// (see NFSVolume). The volumes' reclaim policy is Retain: the data on the export is not touched.
func DeleteNFSVolumes(ctx context.Context, kube kubernetes.Interface, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sel := metav1.ListOptions{LabelSelector: LabelLocation + "=" + LabelValue(name)}
	pvcs, err := kube.CoreV1().PersistentVolumeClaims(v1alpha1.SystemNamespace).List(ctx, sel)
	if err != nil {
		return fmt.Errorf("list the NFS claims of location %s: %w", name, err)
	}
	for _, c := range pvcs.Items {
		if err := kube.CoreV1().PersistentVolumeClaims(c.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete claim %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	pvs, err := kube.CoreV1().PersistentVolumes().List(ctx, sel)
	if err != nil {
		return fmt.Errorf("list the NFS volumes of location %s: %w", name, err)
	}
	for _, pv := range pvs.Items {
		if err := kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PersistentVolume %s: %w", pv.Name, err)
		}
	}
	return nil
}

// ensureNFSVolume creates the PersistentVolume and claim of NFSVolume unless they exist.
func ensureNFSVolume(ctx context.Context, kube kubernetes.Interface, loc *v1alpha1.BackupLocation) error {
	pv, pvc := NFSVolume(loc)
	if pv == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := kube.CoreV1().PersistentVolumes().Create(cctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create PersistentVolume %s for the NFS export of location %s: %w", pv.Name, loc.Name, err)
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(cctx, pvc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create PersistentVolumeClaim %s/%s for the NFS export of location %s: %w", pvc.Namespace, pvc.Name, loc.Name, err)
	}
	return nil
}

// LaunchLocationJob creates a new Job of kind for loc, with the flags more, and returns it.
func LaunchLocationJob(ctx context.Context, kube kubernetes.Interface, kind Kind, loc *v1alpha1.BackupLocation, c Config, more ...string) (*batchv1.Job, error) {
	if err := ensureNFSVolume(ctx, kube, loc); err != nil {
		return nil, err
	}
	job := LocationJob(kind, loc, c, more...)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := kube.BatchV1().Jobs(job.Namespace).Create(cctx, job, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create %s Job for BackupLocation %s: %w", kind, loc.Name, err)
	}
	return created, nil
}
