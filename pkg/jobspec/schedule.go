package jobspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/schedule"
)

// ScheduleCronJobName names the CronJob in pxb-system that runs kind ("daily", …) of BackupSchedule
// namespace/name: one per schedule and kind, so that creating the schedule again updates it.
func ScheduleCronJobName(namespace, name, kind string) string {
	base := strings.ReplaceAll("pxb-schedule-"+namespace+"-"+name+"-"+kind, ".", "-")
	if len(base) <= cronJobNameMax {
		return base
	}
	sum := sha256.Sum256([]byte(namespace + "/" + name + "/" + kind))
	return strings.TrimRight(base[:cronJobNameMax-9], "-") + "-" + hex.EncodeToString(sum[:4])
}

// scheduleLabels are the labels of a schedule's CronJobs and their Jobs, by which they are found.
func scheduleLabels(namespace, name string) map[string]string {
	return map[string]string{LabelJob: string(KindSchedule), LabelNamespace: namespace,
		v1alpha1.ScheduleLabel: LabelValue(name), LabelManagedBy: "pxb"}
}

// ScheduleCronJob renders the CronJob that starts kind of BackupSchedule bs on cron, in timeZone (IANA).
// Its Jobs run `pxb-job schedule --kind KIND` on the schedule, with location loc mounted for retention's
// deletes. A schedule in pxb-system owns its CronJobs; one elsewhere cannot own objects in pxb-system, and
// `kubectl pxb schedule delete` removes them.
func ScheduleCronJob(bs *v1alpha1.BackupSchedule, kind, cron, timeZone string, c Config, loc *v1alpha1.BackupLocation) *batchv1.CronJob {
	job := Job(Target{Kind: KindSchedule, Namespace: bs.Namespace, Name: bs.Name}, c)
	labels := scheduleLabels(bs.Namespace, bs.Name)
	labels[v1alpha1.ScheduleKindLabel] = kind
	job.Labels, job.Spec.Template.Labels, job.Annotations = labels, labels, nil
	job.Spec.Template.Spec.Containers[0].Args = args(KindSchedule,
		Ref{Resource: v1alpha1.BackupSchedulesResource.Resource, Namespace: bs.Namespace, Name: bs.Name}, "--kind", kind)
	MountLocation(&job.Spec.Template.Spec, loc)
	cj := cronJob(ScheduleCronJobName(bs.Namespace, bs.Name, kind), cron, job)
	if timeZone != "" {
		cj.Spec.TimeZone = ptr.To(timeZone)
	}
	if bs.Namespace == v1alpha1.SystemNamespace {
		cj.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "BackupSchedule", Name: bs.Name, UID: bs.UID,
		}}
	}
	return cj
}

// ApplyScheduleCronJob creates the CronJob of ScheduleCronJob, or updates the one that exists.
func ApplyScheduleCronJob(ctx context.Context, kube kubernetes.Interface, cj *batchv1.CronJob, loc *v1alpha1.BackupLocation) (*batchv1.CronJob, error) {
	if err := ensureNFSVolume(ctx, kube, loc); err != nil {
		return nil, err
	}
	return applyCronJob(ctx, kube, cj)
}

// ApplySchedule makes the CronJobs of BackupSchedule bs follow policy: one per schedule of the policy
// (schedule.Runs), with location loc mounted, created or updated; those of kinds the policy no longer has
// are deleted. It returns the runs and their CronJobs, in the policy's order.
func ApplySchedule(ctx context.Context, kube kubernetes.Interface, bs *v1alpha1.BackupSchedule, policy *v1alpha1.SchedulePolicy, c Config, loc *v1alpha1.BackupLocation) ([]schedule.Run, []*batchv1.CronJob, error) {
	runs, err := schedule.Runs(policy.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("SchedulePolicy %s: %w", policy.Name, err)
	}
	var kinds []string
	var cronJobs []*batchv1.CronJob
	for _, r := range runs {
		cj, err := ApplyScheduleCronJob(ctx, kube, ScheduleCronJob(bs, string(r.Kind), r.Cron, policy.Spec.TimeZone, c, loc), loc)
		if err != nil {
			return nil, nil, err
		}
		kinds, cronJobs = append(kinds, string(r.Kind)), append(cronJobs, cj)
	}
	if _, err := DeleteScheduleCronJobs(ctx, kube, bs.Namespace, bs.Name, kinds...); err != nil {
		return nil, nil, err
	}
	return runs, cronJobs, nil
}

// DeleteScheduleCronJobs deletes the CronJobs of BackupSchedule namespace/name whose kind is not in keep,
// and their Jobs; it returns the names deleted.
func DeleteScheduleCronJobs(ctx context.Context, kube kubernetes.Interface, namespace, name string, keep ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: scheduleLabels(namespace, name)})
	cronJobs := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace)
	list, err := cronJobs.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list the CronJobs of BackupSchedule %s/%s: %w", namespace, name, err)
	}
	var deleted []string
	bg := metav1.DeletePropagationBackground
	for _, cj := range list.Items {
		if kind := cj.Labels[v1alpha1.ScheduleKindLabel]; kind != "" && slices.Contains(keep, kind) {
			continue
		}
		if err := cronJobs.Delete(ctx, cj.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			return deleted, fmt.Errorf("delete CronJob %s/%s: %w", cj.Namespace, cj.Name, err)
		}
		deleted = append(deleted, cj.Name)
	}
	return deleted, nil
}

// DeleteOrphanScheduleCronJobs deletes the schedule CronJobs in pxb-system made before listed, and their
// Jobs, of which exists says that their BackupSchedule (by namespace and the LabelValue of its name) is gone
// in a list of the schedules taken at listed; it returns the names deleted. A schedule outside pxb-system
// cannot own them, so they outlive a `kubectl delete` of it until then.
func DeleteOrphanScheduleCronJobs(ctx context.Context, kube kubernetes.Interface, listed time.Time, exists func(namespace, name string) bool) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{LabelJob: string(KindSchedule), LabelManagedBy: "pxb"}})
	list, err := kube.BatchV1().CronJobs(v1alpha1.SystemNamespace).List(lctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list the schedules' CronJobs: %w", err)
	}
	var deleted []string
	for _, cj := range list.Items {
		ns, name := cj.Labels[LabelNamespace], cj.Labels[v1alpha1.ScheduleLabel]
		// A CronJob made since belongs to a schedule the list could not show.
		if name == "" || exists(ns, name) || !cj.CreationTimestamp.Time.Before(listed.Add(-time.Second)) {
			continue
		}
		gone, err := DeleteScheduleCronJobs(ctx, kube, ns, name)
		deleted = append(deleted, gone...)
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}
