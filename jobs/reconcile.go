package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/store"
)

// ReconcileResult is what one reconciliation did, each entry naming the object ("Backup ns/name").
type ReconcileResult struct {
	// Launched are the Backups and Restores whose Job was created: applied without the plugin, or whose
	// Job vanished before they ended (the new Job resumes them).
	Launched []string
	// Failed are the Backups and Restores marked Failed because their Job failed without saying why.
	Failed []string
	// Scheduled are the BackupSchedules whose CronJobs were made to follow their policy.
	Scheduled []string
	// Removed are the CronJobs of BackupSchedules that no longer exist.
	Removed []string
	// Problems are what could not be done, to be tried again at the next reconciliation.
	Problems []string
}

// Message sums the result up for the job's log.
func (r *ReconcileResult) Message() string {
	var parts []string
	add := func(what string, names []string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", what, len(names), strings.Join(names, ", ")))
		}
	}
	add("launched", r.Launched)
	add("failed", r.Failed)
	add("scheduled", r.Scheduled)
	add("removed", r.Removed)
	add("problems", r.Problems)
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, "; ")
}

// Reconcile makes what was applied with kubectl (or any client) run without the plugin: it launches the Job
// of every Backup and Restore that has none and has not ended, marks Failed those whose Job failed without
// ending them, and keeps every BackupSchedule's CronJobs in step with its schedule and policy, removing
// those of deleted schedules. Every step is idempotent, and Jobs have names fixed by their object, so two
// reconciliations at once launch each Job once. Finished Jobs go by their ttlSecondsAfterFinished.
func Reconcile(ctx context.Context, cfg *rest.Config) (*ReconcileResult, error) {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c, err := jobspec.LoadConfig(ctx, env.Kube)
	if err != nil {
		return nil, err
	}
	jobs, err := pxbJobs(ctx, env)
	if err != nil {
		return nil, err
	}
	res := &ReconcileResult{}
	listed := time.Now()
	var backups []v1alpha1.Backup
	var restores []v1alpha1.Restore
	var schedules []v1alpha1.BackupSchedule
	for _, l := range []struct {
		gvr schema.GroupVersionResource
		add func(*unstructured.Unstructured) error
	}{
		{v1alpha1.BackupsResource, func(u *unstructured.Unstructured) error { return appendAs(u, &backups) }},
		{v1alpha1.RestoresResource, func(u *unstructured.Unstructured) error { return appendAs(u, &restores) }},
		{v1alpha1.BackupSchedulesResource, func(u *unstructured.Unstructured) error { return appendAs(u, &schedules) }},
	} {
		if err := listAll(ctx, env, l.gvr, l.add); err != nil {
			return nil, err
		}
	}
	for i := range backups {
		b := &backups[i]
		// A synced Backup's data is already in its location: sync writes its status right after making it,
		// and a Job would back the namespace up again under its name.
		if b.DeletionTimestamp != nil || b.Status.Phase.Final() || b.Status.Phase == v1alpha1.BackupDeleting || b.Labels[v1alpha1.SyncedLabel] == "true" {
			continue
		}
		t := jobspec.Target{Kind: jobspec.KindBackup, Namespace: b.Namespace, Name: b.Name, UID: b.UID}
		reconcileTarget(ctx, env, c, res, t, string(b.Spec.Location), jobs, func(msg string) error {
			return setBackupStatus(ctx, env, t.Ref(), func(s *v1alpha1.BackupStatus) {
				*s = failedBackupStatus(fmt.Errorf("%s", msg), s.StartTimestamp, ptrNow())
			})
		})
	}
	for i := range restores {
		r := &restores[i]
		if r.DeletionTimestamp != nil || r.Status.Phase.Final() {
			continue
		}
		t := jobspec.Target{Kind: jobspec.KindRestore, Namespace: r.Namespace, Name: r.Name, UID: r.UID}
		var b v1alpha1.Backup
		if err := env.Get(ctx, jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: r.Namespace, Name: string(r.Spec.BackupName)}, &b); err != nil {
			// The restore job itself reports a missing backup; it needs a location to be launched with.
			res.Problems = append(res.Problems, fmt.Sprintf("Restore %s/%s: backup %s: %v", r.Namespace, r.Name, r.Spec.BackupName, err))
			continue
		}
		reconcileTarget(ctx, env, c, res, t, string(b.Spec.Location), jobs, func(msg string) error {
			return setRestoreStatus(ctx, env, t.Ref(), func(s *v1alpha1.RestoreStatus) {
				*s = v1alpha1.RestoreStatus{Phase: v1alpha1.RestoreFailed, OperationStatus: failedStatus(fmt.Errorf("%s", msg), s.StartTimestamp, ptrNow())}
			})
		})
	}
	reconcileSchedules(ctx, env, c, res, schedules, listed)
	return res, nil
}

// reconcileTarget launches the Job of target, which works with location, when it has none (jobs holds
// pxb's Jobs by name); when its Job failed, the object did not end, and fail marks it Failed.
func reconcileTarget(ctx context.Context, env *jobenv.Env, c jobspec.Config, res *ReconcileResult, t jobspec.Target,
	location string, jobs map[string]*batchv1.Job, fail func(msg string) error) {
	what := fmt.Sprintf("%s %s/%s", kindTitle(t.Kind), t.Namespace, t.Name)
	job := jobs[jobspec.Name(t)]
	if job != nil && job.Annotations[jobspec.AnnotationOwnerUID] == string(t.UID) {
		if reason := jobFailure(job); reason != "" {
			if err := fail(fmt.Sprintf("its Job %s/%s failed: %s", job.Namespace, job.Name, reason)); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: mark it failed: %v", what, err))
				return
			}
			res.Failed = append(res.Failed, what)
		}
		return
	}
	// No Job, or one left by a deleted object of the same name, which Launch replaces.
	loc, err := store.GetLocation(ctx, env.Dynamic, location)
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", what, err))
		return
	}
	if _, err := jobspec.Launch(ctx, env.Kube, t, c, loc); err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", what, err))
		return
	}
	res.Launched = append(res.Launched, what)
}

// jobFailure is why job failed, or "" while it has not.
func jobFailure(job *batchv1.Job) string {
	for _, cond := range job.Status.Conditions {
		if cond.Type == batchv1.JobFailed && cond.Status == corev1.ConditionTrue {
			return strings.TrimSpace(cond.Reason + ": " + cond.Message)
		}
	}
	return ""
}

// reconcileSchedules applies the CronJobs of every schedule and removes those of schedules that are gone.
// Their list was taken at listed.
func reconcileSchedules(ctx context.Context, env *jobenv.Env, c jobspec.Config, res *ReconcileResult, schedules []v1alpha1.BackupSchedule, listed time.Time) {
	keep := map[string]bool{}
	for i := range schedules {
		bs := &schedules[i]
		keep[bs.Namespace+"/"+jobspec.LabelValue(bs.Name)] = true
		if bs.DeletionTimestamp != nil {
			continue
		}
		what := fmt.Sprintf("BackupSchedule %s/%s", bs.Namespace, bs.Name)
		msg, err := applySchedule(ctx, env, c, bs)
		cond := metav1.Condition{Type: v1alpha1.ConditionScheduled, Status: metav1.ConditionTrue, Reason: "CronJobsReady", Message: msg}
		if err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "NotScheduled", truncate(err.Error(), 4096)
			res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", what, err))
		} else {
			res.Scheduled = append(res.Scheduled, what)
		}
		if !meta.IsStatusConditionPresentAndEqual(bs.Status.Conditions, cond.Type, cond.Status) ||
			meta.FindStatusCondition(bs.Status.Conditions, cond.Type).Message != cond.Message {
			ref := jobspec.Ref{Resource: v1alpha1.BackupSchedulesResource.Resource, Namespace: bs.Namespace, Name: bs.Name}
			if err := env.SetCondition(ctx, ref, cond); err != nil {
				res.Problems = append(res.Problems, fmt.Sprintf("%s: %v", what, err))
			}
		}
	}
	removed, err := jobspec.DeleteOrphanScheduleCronJobs(ctx, env.Kube, listed, func(namespace, name string) bool { return keep[namespace+"/"+name] })
	res.Removed = append(res.Removed, removed...)
	if err != nil {
		res.Problems = append(res.Problems, err.Error())
	}
}

// applySchedule makes the CronJobs of bs follow its policy, and says which it made.
func applySchedule(ctx context.Context, env *jobenv.Env, c jobspec.Config, bs *v1alpha1.BackupSchedule) (string, error) {
	var policy v1alpha1.SchedulePolicy
	if err := env.Get(ctx, jobspec.Ref{Resource: v1alpha1.SchedulePoliciesResource.Resource, Name: string(bs.Spec.Policy)}, &policy); err != nil {
		return "", fmt.Errorf("spec.policy: SchedulePolicy %s: %w", bs.Spec.Policy, err)
	}
	loc, err := store.GetLocation(ctx, env.Dynamic, string(bs.Spec.Template.Location))
	if err != nil {
		return "", fmt.Errorf("spec.template.location: %w", err)
	}
	runs, cronJobs, err := jobspec.ApplySchedule(ctx, env.Kube, bs, &policy, c, loc)
	if err != nil {
		return "", err
	}
	var made []string
	for i, r := range runs {
		made = append(made, fmt.Sprintf("%s at %q (CronJob %s)", r.Kind, r.Cron, cronJobs[i].Name))
	}
	return "policy " + policy.Name + ": " + strings.Join(made, ", "), nil
}

// pxbJobs returns pxb's Jobs in pxb-system by name.
func pxbJobs(ctx context.Context, env *jobenv.Env) (map[string]*batchv1.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sel := jobspec.LabelManagedBy + "=pxb"
	out := map[string]*batchv1.Job{}
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		opts.LabelSelector = sel
		return env.Kube.BatchV1().Jobs(v1alpha1.SystemNamespace).List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		j := o.(*batchv1.Job)
		out[j.Name] = j
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the Jobs in %s: %w", v1alpha1.SystemNamespace, err)
	}
	return out, nil
}

// listAll pages through every object of gvr in every namespace.
func listAll(ctx context.Context, env *jobenv.Env, gvr schema.GroupVersionResource, add func(*unstructured.Unstructured) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return env.Dynamic.Resource(gvr).List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{}, func(o runtime.Object) error {
		return add(o.(*unstructured.Unstructured))
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", gvr.Resource, err)
	}
	return nil
}

// appendAs converts u into a T and appends it to list.
func appendAs[T any](u *unstructured.Unstructured, list *[]T) error {
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &obj); err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	*list = append(*list, obj)
	return nil
}

func kindTitle(k jobspec.Kind) string {
	if k == jobspec.KindRestore {
		return "Restore"
	}
	return "Backup"
}

func ptrNow() *metav1.Time {
	now := metav1.Now()
	return &now
}
