// Package jobspec builds the Jobs that carry out pxb's work (one per Backup or Restore step) and waits on
// them. A Job's name is derived from the object it works for, so launching twice finds the first Job rather
// than starting a second one.
package jobspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/install"
)

// Kind is the pxb-job subcommand a Job runs; these are the only names of pxb-job's job kinds.
type Kind string

const (
	// KindBackup carries out a Backup: its objects, and its volumes through upload Jobs.
	KindBackup Kind = "backup"
	// KindRestore carries out a Restore: its objects, and its volumes through download Jobs.
	KindRestore Kind = "restore"
	// KindUpload copies one volume's files into the repository of a Backup's location.
	KindUpload Kind = "upload"
	// KindDownload fills one restored claim from a Backup's repository snapshot.
	KindDownload Kind = "download"
	// KindCheck probes a BackupLocation and writes the outcome into its status.
	KindCheck Kind = "check"
	// KindSync creates the Backups found in a BackupLocation that the cluster lacks.
	KindSync Kind = "sync"
	// KindMaintenance verifies a BackupLocation's repository and removes the data no backup needs any more.
	KindMaintenance Kind = "maintenance"
	// KindSchedule is the job kind a BackupSchedule's CronJobs run.
	KindSchedule Kind = "schedule"
	// KindReconcile launches the Jobs of objects applied without the plugin and keeps schedules' CronJobs in
	// step; the reconciler's CronJob runs it every minute.
	KindReconcile Kind = "reconcile"
	// KindDelete deletes one Backup's data in its location, then the Backup, for the plugin when it cannot
	// reach the location itself (an NFS export, an endpoint only the cluster reaches).
	KindDelete Kind = "delete"
)

// Labels on every Job pxb launches and on its pods.
const (
	LabelBackup    = "pxb.dev/backup"
	LabelRestore   = "pxb.dev/restore"
	LabelNamespace = "pxb.dev/namespace" // namespace of the Backup or Restore
	LabelJob       = "pxb.dev/job"       // the Kind
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationOwnerUID records the UID of the Backup or Restore a Job works for: a Job left over from a
	// deleted object of the same name is replaced, not reused.
	AnnotationOwnerUID = "pxb.dev/owner-uid"
)

// Keys of the pxb-config ConfigMap read here.
const (
	ConfigImage                 = install.ConfigJobImage
	ConfigImagePullPolicy       = "jobImagePullPolicy"
	ConfigCPURequest            = "jobCPURequest"
	ConfigMemoryRequest         = "jobMemoryRequest"
	ConfigCPULimit              = "jobCPULimit"
	ConfigMemoryLimit           = "jobMemoryLimit"
	ConfigBackoffLimit          = "jobBackoffLimit"
	ConfigActiveDeadlineSeconds = "jobActiveDeadlineSeconds"
	ConfigTTLSecondsAfterFinish = "jobTTLSecondsAfterFinished"
	ConfigDNSPolicy             = "jobDNSPolicy"
	// The data-mover Jobs (upload, download) have their own resources: they hold chunks in memory and
	// compress and encrypt them.
	ConfigMoverCPURequest    = "moverCPURequest"
	ConfigMoverMemoryRequest = "moverMemoryRequest"
	ConfigMoverCPULimit      = "moverCPULimit"
	ConfigMoverMemoryLimit   = "moverMemoryLimit"
	// ConfigMoverUploadBytesPerSecond bounds each upload Job's writes to the location, as a quantity
	// ("50Mi"), so backups leave bandwidth to the applications.
	ConfigMoverUploadBytesPerSecond = "moverUploadBytesPerSecond"
	// ConfigVolumeParallelism bounds the data-mover Jobs of one backup or restore running at once.
	ConfigVolumeParallelism = "volumeParallelism"
	// ConfigSnapshotTimeoutSeconds bounds the wait for a VolumeSnapshot to become ready to use.
	ConfigSnapshotTimeoutSeconds = "snapshotTimeoutSeconds"
	// ConfigKubeletRootDir is the kubelets' --root-dir, through which the FileSystem method reads the
	// volume of a running pod. Without it a backup Job finds it from its own pod's mounts, or else takes
	// DefaultKubeletRootDir.
	ConfigKubeletRootDir = "kubeletRootDir"
)

// DefaultKubeletRootDir is the kubelet's --root-dir by default.
const DefaultKubeletRootDir = "/var/lib/kubelet"

// Config is how Jobs are shaped in this installation.
type Config struct {
	Image           string
	ImagePullPolicy corev1.PullPolicy
	Resources       corev1.ResourceRequirements
	// BackoffLimit is how many times a failed pod is retried; every step resumes where it stopped.
	BackoffLimit int32
	// ActiveDeadline bounds a whole Job, retries included.
	ActiveDeadline time.Duration
	// TTLAfterFinished is how long a finished Job (and its pod's log) is kept.
	TTLAfterFinished time.Duration
	DNSPolicy        corev1.DNSPolicy

	// MoverResources are the upload and download Jobs' requests and limits.
	MoverResources corev1.ResourceRequirements
	// MoverUploadLimit is an upload Job's bytes per second into the location; 0 is no limit.
	MoverUploadLimit int64
	// VolumeParallelism is how many upload or download Jobs one backup or restore runs at once; 0 sizes
	// it to the cluster (two per schedulable node, at most 16).
	VolumeParallelism int
	SnapshotTimeout   time.Duration
	// KubeletRootDir is ConfigKubeletRootDir, "" when pxb-config does not set it.
	KubeletRootDir string
}

// DefaultConfig is the shape of Jobs when pxb-config does not say otherwise.
func DefaultConfig() Config {
	return Config{
		Image:           install.DefaultImage(),
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
		},
		BackoffLimit:     2,
		ActiveDeadline:   6 * time.Hour,
		TTLAfterFinished: 24 * time.Hour,
		// Cluster DNS first: object stores are often in-cluster Services (MinIO); without cluster DNS the
		// kubelet falls back to the node's resolver.
		DNSPolicy: corev1.DNSClusterFirst,
		MoverResources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
		SnapshotTimeout: 10 * time.Minute,
	}
}

// ParseConfig reads the Job settings from pxb-config's data over the defaults; errors name the key.
func ParseConfig(data map[string]string) (Config, error) {
	c := DefaultConfig()
	if v := data[ConfigImage]; v != "" {
		c.Image = v
	}
	if v := data[ConfigImagePullPolicy]; v != "" {
		switch p := corev1.PullPolicy(v); p {
		case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
			c.ImagePullPolicy = p
		default:
			return c, fmt.Errorf("%s %s: %s %q is not Always, IfNotPresent or Never", v1alpha1.ConfigMapName, ConfigImagePullPolicy, ConfigImagePullPolicy, v)
		}
	}
	for _, q := range []struct {
		key  string
		list corev1.ResourceList
		name corev1.ResourceName
	}{
		{ConfigCPURequest, c.Resources.Requests, corev1.ResourceCPU},
		{ConfigMemoryRequest, c.Resources.Requests, corev1.ResourceMemory},
		{ConfigCPULimit, c.Resources.Limits, corev1.ResourceCPU},
		{ConfigMemoryLimit, c.Resources.Limits, corev1.ResourceMemory},
		{ConfigMoverCPURequest, c.MoverResources.Requests, corev1.ResourceCPU},
		{ConfigMoverMemoryRequest, c.MoverResources.Requests, corev1.ResourceMemory},
		{ConfigMoverCPULimit, c.MoverResources.Limits, corev1.ResourceCPU},
		{ConfigMoverMemoryLimit, c.MoverResources.Limits, corev1.ResourceMemory},
	} {
		v := data[q.key]
		if v == "" {
			continue
		}
		qty, err := resource.ParseQuantity(v)
		if err != nil {
			return c, fmt.Errorf("%s %s %q: %w", v1alpha1.ConfigMapName, q.key, v, err)
		}
		q.list[q.name] = qty
	}
	for _, n := range []struct {
		key string
		set func(int64)
	}{
		{ConfigBackoffLimit, func(v int64) { c.BackoffLimit = int32(v) }},
		{ConfigActiveDeadlineSeconds, func(v int64) { c.ActiveDeadline = time.Duration(v) * time.Second }},
		{ConfigTTLSecondsAfterFinish, func(v int64) { c.TTLAfterFinished = time.Duration(v) * time.Second }},
		{ConfigVolumeParallelism, func(v int64) { c.VolumeParallelism = int(v) }},
		{ConfigSnapshotTimeoutSeconds, func(v int64) { c.SnapshotTimeout = time.Duration(v) * time.Second }},
	} {
		v := data[n.key]
		if v == "" {
			continue
		}
		i, err := strconv.ParseInt(v, 10, 32)
		if err != nil || i < 0 {
			return c, fmt.Errorf("%s %s %q: want a whole number of at least 0", v1alpha1.ConfigMapName, n.key, v)
		}
		n.set(i)
	}
	if v := data[ConfigMoverUploadBytesPerSecond]; v != "" {
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() < 0 {
			return c, fmt.Errorf("%s %s %q: want bytes per second, such as 50Mi, or 0 for no limit", v1alpha1.ConfigMapName, ConfigMoverUploadBytesPerSecond, v)
		}
		c.MoverUploadLimit = q.Value()
	}
	if v := data[ConfigKubeletRootDir]; v != "" {
		if !strings.HasPrefix(v, "/") {
			return c, fmt.Errorf("%s %s %q: want an absolute path", v1alpha1.ConfigMapName, ConfigKubeletRootDir, v)
		}
		c.KubeletRootDir = strings.TrimRight(v, "/")
	}
	if v := data[ConfigDNSPolicy]; v != "" {
		switch p := corev1.DNSPolicy(v); p {
		case corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSClusterFirstWithHostNet:
			c.DNSPolicy = p
		default:
			return c, fmt.Errorf("%s %s %q: want ClusterFirst, Default or ClusterFirstWithHostNet", v1alpha1.ConfigMapName, ConfigDNSPolicy, v)
		}
	}
	return c, nil
}

// LoadConfig reads pxb-config from pxb-system.
func LoadConfig(ctx context.Context, kube kubernetes.Interface) (Config, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	data, err := install.InstalledConfig(ctx, kube)
	if err != nil {
		return Config{}, err
	}
	if data == nil {
		return Config{}, fmt.Errorf("pxb is not installed in this cluster (no %s/%s): run kubectl pxb install", v1alpha1.SystemNamespace, v1alpha1.ConfigMapName)
	}
	return ParseConfig(data)
}

// Target is the Backup or Restore a Job works for.
type Target struct {
	// Kind is also the pxb-job subcommand.
	Kind      Kind
	Namespace string
	Name      string
	UID       types.UID
}

// Resource is the pxb.dev resource of the target.
func (t Target) Resource() string {
	if t.Kind == KindRestore {
		return v1alpha1.RestoresResource.Resource
	}
	return v1alpha1.BackupsResource.Resource
}

// Ref names the target as its job does.
func (t Target) Ref() Ref {
	return Ref{Resource: t.Resource(), Namespace: t.Namespace, Name: t.Name, UID: t.UID}
}

// args is the command line of a Job's pod: the job kind, then the object it works on.
func args(kind Kind, obj Ref, more ...string) []string {
	return append(append([]string{string(kind)}, obj.Args()...), more...)
}

// Name is the Job's name: stable for a target, a valid label value (Jobs label their pods with their name),
// and distinct for distinct targets even when long names are shortened.
func Name(t Target) string {
	id := t.Namespace + "/" + t.Name
	sum := sha256.Sum256([]byte(string(t.Kind) + "\x00" + id))
	suffix := hex.EncodeToString(sum[:4])
	base := "pxb-" + string(t.Kind) + "-" + t.Namespace + "-" + t.Name
	max := validation.DNS1123LabelMaxLength - len(suffix) - 1
	if len(base) > max {
		base = base[:max]
	}
	base = strings.TrimRight(strings.ReplaceAll(base, ".", "-"), "-")
	return base + "-" + suffix
}

// LabelValue keeps an object name usable as a label value: names longer than 63 characters are shortened
// with a hash, so selection by label still tells them apart.
func LabelValue(s string) string {
	if len(s) <= validation.LabelValueMaxLength {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:validation.LabelValueMaxLength-9], "-._") + "-" + hex.EncodeToString(sum[:4])
}

// Labels returns the labels of a target's Jobs and pods.
func Labels(t Target) map[string]string {
	l := map[string]string{
		LabelJob:       string(t.Kind),
		LabelNamespace: t.Namespace,
		LabelManagedBy: "pxb",
	}
	switch t.Kind {
	case KindBackup, KindDelete:
		l[LabelBackup] = LabelValue(t.Name)
	case KindRestore:
		l[LabelRestore] = LabelValue(t.Name)
	}
	return l
}

// finalFailure fails a Job at once when its pod exits with ExitFinal: the work failed for good and
// the object's status says why; other failures (a crash, an eviction) are retried up to BackoffLimit.
var finalFailure = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
	Action:      batchv1.PodFailurePolicyActionFailJob,
	OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{ExitFinal}},
}}}

// ServiceAccount is the identity a Job of kind, working for an object in namespace, runs as:
// manifests/rbac.yaml binds each to what its kind does, so that a Job that only copies bytes or only reads a
// bucket cannot write to the cluster, and a team's restore cannot act as an administrator's. An unknown kind
// gets none, and so runs as pxb-system's default ServiceAccount, which pxb grants nothing.
func ServiceAccount(kind Kind, namespace string) string {
	switch kind {
	case KindBackup:
		return v1alpha1.BackupServiceAccount
	case KindRestore:
		if namespace == v1alpha1.SystemNamespace {
			return v1alpha1.ClusterRestoreServiceAccount
		}
		return v1alpha1.RestoreServiceAccount
	case KindUpload, KindDownload:
		return v1alpha1.MoverServiceAccount
	case KindCheck, KindSync, KindMaintenance, KindDelete:
		return v1alpha1.LocationServiceAccount
	case KindSchedule:
		return v1alpha1.ScheduleServiceAccount
	case KindReconcile:
		return v1alpha1.ReconcilerServiceAccount
	}
	return ""
}

// Job renders the Job for target. The pod runs `pxb-job KIND --resource R --namespace NS --name NAME` as the
// ServiceAccount of its kind, unprivileged, with a read-only root file system and a scratch /tmp.
func Job(t Target, c Config) *batchv1.Job {
	labels := Labels(t)
	var deadline *int64
	if c.ActiveDeadline > 0 {
		deadline = ptr.To(int64(c.ActiveDeadline / time.Second))
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        Name(t),
			Namespace:   v1alpha1.SystemNamespace,
			Labels:      labels,
			Annotations: map[string]string{AnnotationOwnerUID: string(t.UID)},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(c.BackoffLimit),
			PodFailurePolicy:        finalFailure,
			ActiveDeadlineSeconds:   deadline,
			TTLSecondsAfterFinished: ptr.To(int32(c.TTLAfterFinished / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: ServiceAccount(t.Kind, t.Namespace),
					RestartPolicy:      corev1.RestartPolicyNever,
					DNSPolicy:          c.DNSPolicy,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(int64(65532)),
						RunAsGroup:     ptr.To(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "pxb-job",
						Image:           c.Image,
						ImagePullPolicy: c.ImagePullPolicy,
						Args:            args(t.Kind, t.Ref()),
						Env: []corev1.EnvVar{
							{Name: "TMPDIR", Value: "/tmp"},
							// Keep the Go heap under the container's memory limit.
							{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
								Resource: "limits.memory", Divisor: resource.MustParse("1"),
							}}},
						},
						Resources: c.Resources,
						// A failure's reason is the termination message the job writes, or its last log lines.
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		},
	}
}

// Launch creates the Job for target, working with location loc, unless it already exists for the same
// object; a Job left over from a deleted object of the same name is deleted and replaced. It returns the Job
// in the cluster.
func Launch(ctx context.Context, kube kubernetes.Interface, t Target, c Config, loc *v1alpha1.BackupLocation) (*batchv1.Job, error) {
	return launch(ctx, kube, Job(t, c), t.UID, loc)
}

// launch creates job, made for the object of UID owner, with loc mounted, or returns the one that exists.
func launch(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, owner types.UID, loc *v1alpha1.BackupLocation) (*batchv1.Job, error) {
	if err := ensureNFSVolume(ctx, kube, loc); err != nil {
		return nil, err
	}
	MountLocation(&job.Spec.Template.Spec, loc)
	jobs := kube.BatchV1().Jobs(job.Namespace)
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		created, err := jobs.Create(cctx, job, metav1.CreateOptions{})
		cancel()
		if err == nil {
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) || attempt > 0 {
			return nil, fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
		}
		gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		existing, err := jobs.Get(gctx, job.Name, metav1.GetOptions{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("get Job %s/%s: %w", job.Namespace, job.Name, err)
		}
		if existing.Annotations[AnnotationOwnerUID] == string(owner) {
			return existing, nil
		}
		if err := deleteAndWait(ctx, kube, existing); err != nil {
			return nil, err
		}
	}
}

func deleteAndWait(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job) error {
	jobs := kube.BatchV1().Jobs(job.Namespace)
	bg := metav1.DeletePropagationBackground
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := jobs.Delete(dctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &job.UID}})
	cancel()
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete stale Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cur, err := jobs.Get(gctx, job.Name, metav1.GetOptions{})
		cancel()
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != job.UID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("stale Job %s/%s still exists a minute after its deletion (finalizers?)", job.Namespace, job.Name)
}
