package jobspec

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ReconcilerName names the reconciler's CronJob in pxb-system.
const ReconcilerName = "pxb-reconcile"

// reconcileDeadline bounds one reconciliation; the CronJob starts the next a minute after the last began.
const reconcileDeadline = 5 * time.Minute

// ReconcilerCronJob renders the CronJob that runs `pxb-job reconcile` every minute, one at a time, as the
// reconciler's ServiceAccount: what makes objects applied without the plugin run.
func ReconcilerCronJob(c Config) *batchv1.CronJob {
	job := Job(Target{Kind: KindReconcile}, c)
	labels := map[string]string{LabelJob: string(KindReconcile), LabelManagedBy: "pxb"}
	job.Labels, job.Spec.Template.Labels, job.Annotations = labels, labels, nil
	job.Spec.Template.Spec.Containers[0].Args = []string{string(KindReconcile)}
	// A failed reconciliation is not retried: the next one, a minute later, does the same work.
	job.Spec.BackoffLimit, job.Spec.PodFailurePolicy = ptr.To(int32(0)), nil
	job.Spec.ActiveDeadlineSeconds = ptr.To(int64(reconcileDeadline / time.Second))
	job.Spec.TTLSecondsAfterFinished = ptr.To(int32(time.Hour / time.Second))
	return cronJob(ReconcilerName, "* * * * *", job)
}

// ApplyReconciler creates or updates the reconciler's CronJob.
func ApplyReconciler(ctx context.Context, kube kubernetes.Interface, c Config) (*batchv1.CronJob, error) {
	return applyCronJob(ctx, kube, ReconcilerCronJob(c))
}
