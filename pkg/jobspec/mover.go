package jobspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// MoverPath is where a data-mover Job's pod mounts the volume it reads or writes; MoverDevice is where it
// finds a block volume.
const (
	MoverPath   = "/data"
	MoverDevice = "/dev/pxb-volume"
)

// MoverSecretsPath is where a data-mover Job's pod finds its location's Secrets, each in a directory named
// after it.
const MoverSecretsPath = "/var/run/pxb/secrets"

// AnnotationVolume on a data-mover Job names the claim ("namespace/name", as in the backup) it moves.
const AnnotationVolume = "pxb.dev/volume"

// Mover is the work of one upload or download Job: the data of one volume of a Backup or a Restore.
type Mover struct {
	// Kind is KindUpload or KindDownload.
	Kind Kind
	// Owner is the Backup (upload) or Restore (download) the volume belongs to.
	Owner Target
	// Volume is the claim whose data moves, "namespace/name" as in the backup.
	Volume string
	// Claim is the PersistentVolumeClaim in pxb-system mounted at MoverPath: made from a snapshot for an
	// upload, the new volume for a download.
	Claim string
	// HostPath and Node replace Claim for the FileSystem method: the directory of a running pod's volume on
	// the node that runs it.
	HostPath string
	Node     string
	// Method is how an upload's volume is mounted: Snapshot (a new volume made from a snapshot) or
	// FileSystem (the live volume).
	Method v1alpha1.VolumeMethod
	// Snapshot is the repository snapshot a download writes.
	Snapshot string
	// Block says Claim is a raw block volume, which the pod sees as the device MoverDevice.
	Block bool
}

// MoverName is the Job's name: stable for an owner and a volume, so a retried backup finds the Job it
// launched before.
func MoverName(m Mover) string {
	sum := sha256.Sum256([]byte(string(m.Kind) + "\x00" + m.Owner.Namespace + "/" + m.Owner.Name + "\x00" + m.Volume))
	suffix := hex.EncodeToString(sum[:5])
	base := "pxb-" + string(m.Kind) + "-" + m.Owner.Name
	if max := validation.DNS1123LabelMaxLength - len(suffix) - 1; len(base) > max {
		base = base[:max]
	}
	return strings.TrimRight(strings.ReplaceAll(base, ".", "-"), "-") + "-" + suffix
}

// MoverJob renders the Job of m. Its pod runs as the mover's ServiceAccount, which may write nothing in the
// cluster but its owner's progress, and as root with only the capabilities the copy needs: reading
// every file whatever its owner and mode (upload), or writing files with their owners, modes and times
// (download). It sets no fsGroup, so the kubelet never changes the ownership of the volume's files.
func MoverJob(m Mover, c Config) *batchv1.Job {
	job := Job(m.Owner, c)
	job.Name = MoverName(m)
	for _, l := range []map[string]string{job.Labels, job.Spec.Template.Labels} {
		l[LabelJob] = string(m.Kind)
	}
	job.Annotations[AnnotationVolume] = m.Volume
	pod := &job.Spec.Template.Spec
	pod.ServiceAccountName = ServiceAccount(m.Kind, "")
	pod.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(false),
		RunAsUser:      ptr.To(int64(0)),
		RunAsGroup:     ptr.To(int64(0)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	ctr := &pod.Containers[0]
	ctr.Resources = c.MoverResources
	ctr.Args = args(m.Kind, m.Owner.Ref(), "--volume", m.Volume, "--path", MoverPath)
	caps := []corev1.Capability{"DAC_READ_SEARCH"}
	if m.Kind == KindUpload {
		ctr.Args = append(ctr.Args, "--method", string(m.Method))
		if c.MoverUploadLimit > 0 {
			ctr.Args = append(ctr.Args, "--upload-limit", strconv.FormatInt(c.MoverUploadLimit, 10))
		}
	}
	if m.Kind == KindDownload {
		ctr.Args = append(ctr.Args, "--snapshot", m.Snapshot)
		caps = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "MKNOD", "SETFCAP"}
	}
	ctr.SecurityContext.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps}
	vol := corev1.Volume{Name: "volume"}
	if m.Block {
		vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Claim, ReadOnly: m.Kind == KindUpload}
		pod.Volumes = append(pod.Volumes, vol)
		ctr.VolumeDevices = append(ctr.VolumeDevices, corev1.VolumeDevice{Name: "volume", DevicePath: MoverDevice})
		ctr.Args = append(ctr.Args, "--block")
		ctr.Args[slices.Index(ctr.Args, MoverPath)] = MoverDevice
		return job
	}
	mount := corev1.VolumeMount{Name: "volume", MountPath: MoverPath, ReadOnly: m.Kind == KindUpload}
	if m.HostPath != "" {
		vol.HostPath = &corev1.HostPathVolumeSource{Path: m.HostPath, Type: ptr.To(corev1.HostPathDirectory)}
		// The pod's volume is mounted on the node before this pod starts; see it as it is.
		mount.MountPropagation = ptr.To(corev1.MountPropagationHostToContainer)
		pod.NodeName = m.Node
	} else {
		vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Claim, ReadOnly: m.Kind == KindUpload}
	}
	pod.Volumes = append(pod.Volumes, vol)
	ctr.VolumeMounts = append(ctr.VolumeMounts, mount)
	return job
}

// LaunchMover creates the Job of m, working with location loc, unless it exists already for the same owner.
func LaunchMover(ctx context.Context, kube kubernetes.Interface, m Mover, c Config, loc *v1alpha1.BackupLocation) (*batchv1.Job, error) {
	if m.Kind != KindUpload && m.Kind != KindDownload {
		return nil, fmt.Errorf("data-mover Job kind %q: want upload or download", m.Kind)
	}
	job := MoverJob(m, c)
	mountSecrets(&job.Spec.Template.Spec, loc)
	return launch(ctx, kube, job, m.Owner.UID, loc)
}

// mountSecrets has the kubelet mount the credential and encryption key Secrets of loc read-only into the
// pod at MoverSecretsPath/NAME, and tells the mover so: its identity may not read Secrets itself, so that a
// mover, which runs as root and may mount a node's directory, reaches its own location's Secrets alone.
func mountSecrets(pod *corev1.PodSpec, loc *v1alpha1.BackupLocation) {
	names := []string{loc.Spec.EncryptionKey.Name}
	if ref := loc.Spec.Credential; ref != nil && !slices.Contains(names, ref.Name) {
		names = append(names, ref.Name)
	}
	ctr := &pod.Containers[0]
	for i, name := range names {
		vol := "secret-" + strconv.Itoa(i)
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: name, DefaultMode: ptr.To(int32(0o400))}}})
		ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: MoverSecretsPath + "/" + name, ReadOnly: true})
	}
	ctr.Args = append(ctr.Args, "--secrets-dir", MoverSecretsPath)
}
