package jobspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
)

// AnnotationEvery on a location's CronJob is the interval it was made from (kubectl pxb location sync
// --every), kept for people: the schedule alone does not say it.
const AnnotationEvery = "pxb.dev/every"

// cronJobNameMax is the longest CronJob name: the controller appends a suffix of 11 characters to name the
// Jobs it creates, which must stay within 63.
const cronJobNameMax = 52

// LocationCronJobName is the name of the CronJob in pxb-system that runs Jobs of kind on BackupLocation
// name: one per location and kind, so that scheduling again updates it.
func LocationCronJobName(kind Kind, name string) string {
	base := strings.ReplaceAll("pxb-"+string(kind)+"-"+name, ".", "-")
	if len(base) <= cronJobNameMax {
		return base
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(base[:cronJobNameMax-9], "-") + "-" + hex.EncodeToString(sum[:4])
}

// LocationCronJob renders the CronJob that runs the Job of LocationJob (kind, loc, c) on schedule; every is
// the interval the schedule was made from ("" when the schedule was given as such). The CronJob is owned by
// the location, so it goes when the location is deleted; at most one of its Jobs runs at a time.
func LocationCronJob(kind Kind, loc *v1alpha1.BackupLocation, c Config, schedule, every string, more ...string) *batchv1.CronJob {
	job := LocationJob(kind, loc, c, more...)
	cj := cronJob(LocationCronJobName(kind, loc.Name), schedule, job)
	cj.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupLocation", Name: loc.Name, UID: loc.UID,
	}}
	if every != "" {
		cj.Annotations = map[string]string{AnnotationEvery: every}
	}
	return cj
}

// cronJob is the CronJob name in pxb-system that runs job on schedule, labelled as job is; at most one of
// its Jobs runs at a time.
func cronJob(name, schedule string, job *batchv1.Job) *batchv1.CronJob {
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1alpha1.SystemNamespace, Labels: maps.Clone(job.Labels)},
		Spec: batchv1.CronJobSpec{
			Schedule:          schedule,
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			// A start missed by more than a few minutes waits for the next one.
			StartingDeadlineSeconds:    ptr.To(int64(300)),
			SuccessfulJobsHistoryLimit: ptr.To(int32(1)),
			FailedJobsHistoryLimit:     ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: job.Labels, Annotations: job.Annotations},
				Spec:       job.Spec,
			},
		},
	}
}

// ApplyLocationCronJob creates the CronJob of LocationCronJob, or updates the one that exists, and returns
// it.
func ApplyLocationCronJob(ctx context.Context, kube kubernetes.Interface, kind Kind, loc *v1alpha1.BackupLocation, c Config, schedule, every string, more ...string) (*batchv1.CronJob, error) {
	if err := ensureNFSVolume(ctx, kube, loc); err != nil {
		return nil, err
	}
	return applyCronJob(ctx, kube, LocationCronJob(kind, loc, c, schedule, every, more...))
}

// applyCronJob creates want, or updates the CronJob of its name to it, and returns it.
func applyCronJob(ctx context.Context, kube kubernetes.Interface, want *batchv1.CronJob) (*batchv1.CronJob, error) {
	cronJobs := kube.BatchV1().CronJobs(want.Namespace)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	created, err := cronJobs.Create(ctx, want, metav1.CreateOptions{})
	if err == nil {
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create CronJob %s/%s: %w", want.Namespace, want.Name, err)
	}
	var updated *batchv1.CronJob
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cronJobs.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels, cur.Annotations, cur.OwnerReferences, cur.Spec = want.Labels, want.Annotations, want.OwnerReferences, want.Spec
		updated, err = cronJobs.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update CronJob %s/%s: %w", want.Namespace, want.Name, err)
	}
	return updated, nil
}

// GetLocationCronJob returns the CronJob of kind for location name, or nil when there is none.
func GetLocationCronJob(ctx context.Context, kube kubernetes.Interface, kind Kind, name string) (*batchv1.CronJob, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cj, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).Get(ctx, LocationCronJobName(kind, name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get CronJob %s/%s: %w", v1alpha1.SystemNamespace, LocationCronJobName(kind, name), err)
	}
	return cj, nil
}

// DeleteLocationCronJob deletes the CronJob of kind for location name, and the Jobs it left; it says
// whether there was one.
func DeleteLocationCronJob(ctx context.Context, kube kubernetes.Interface, kind Kind, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cjName := LocationCronJobName(kind, name)
	bg := metav1.DeletePropagationBackground
	err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).Delete(ctx, cjName, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete CronJob %s/%s: %w", v1alpha1.SystemNamespace, cjName, err)
	}
	return true, nil
}
