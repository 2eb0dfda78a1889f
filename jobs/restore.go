package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pxb-dev/pxb/pkg/apis/v1alpha1"
	"github.com/pxb-dev/pxb/pkg/apply"
	"github.com/pxb-dev/pxb/pkg/collect"
	"github.com/pxb-dev/pxb/pkg/jobenv"
	"github.com/pxb-dev/pxb/pkg/jobspec"
	"github.com/pxb-dev/pxb/pkg/layout"
	"github.com/pxb-dev/pxb/pkg/location"
	"github.com/pxb-dev/pxb/pkg/store"
	"github.com/pxb-dev/pxb/pkg/tenancy"
)

// Restore carries out Restore namespace/name from its Backup (in the same namespace) and reports through its
// status; the per-object summary and the job log go to the backup's location. A Restore that already
// finished is left alone. The error says why the restore failed; the status then says the same.
func Restore(ctx context.Context, cfg *rest.Config, namespace, name string, opts Options) error {
	env, err := jobenv.NewEnvForConfig(cfg)
	if err != nil {
		return err
	}
	env.Events = jobenv.NewRecorder(env.Kube, jobspec.KindRestore)
	target := jobspec.Ref{Resource: v1alpha1.RestoresResource.Resource, Namespace: namespace, Name: name}
	var r v1alpha1.Restore
	if err := get(ctx, env, "Restore", target, &r); err != nil {
		return err
	}
	switch r.Status.Phase {
	case v1alpha1.RestoreCompleted, v1alpha1.RestorePartiallySucceeded:
		return nil
	}
	refusal, err := restoreRefusal(ctx, env, &r)
	if err != nil {
		return err
	}
	if refusal != nil {
		now := metav1.Now()
		if err := setRestoreStatus(ctx, env, target, func(s *v1alpha1.RestoreStatus) {
			*s = v1alpha1.RestoreStatus{Phase: v1alpha1.RestoreFailed, OperationStatus: failedStatus(refusal, &now, &now)}
		}); err != nil {
			return err
		}
		recordEnd(ctx, env, &r, actionRestore, string(v1alpha1.RestoreFailed), failedStatus(refusal, &now, &now))
		return jobenv.Final(refusal)
	}
	log := newJobLog()
	started := metav1.Now()
	if err := setRestoreStatus(ctx, env, target, func(s *v1alpha1.RestoreStatus) {
		*s = v1alpha1.RestoreStatus{Phase: v1alpha1.RestoreInProgress, Stage: v1alpha1.RestoreStageResources,
			OperationStatus: v1alpha1.OperationStatus{StartTimestamp: &started}}
	}); err != nil {
		return err
	}
	log.Printf("restore %s/%s from backup %s", namespace, name, r.Spec.BackupName)
	env.Events.Eventf(ctx, &r, corev1.EventTypeNormal, jobenv.EventStarted, actionRestore, "restore from Backup %s started", r.Spec.BackupName)

	res, loc, runErr := runRestore(ctx, env, &r, opts, log)
	if loc != nil {
		defer loc.Close()
	}
	finished := metav1.Now()
	if runErr != nil {
		log.Printf("restore failed: %v", runErr)
	}
	if loc != nil {
		if _, err := finish(ctx, loc, log, layout.RestorePrefix(namespace, name)); err != nil && runErr == nil {
			runErr = err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var end v1alpha1.RestoreStatus
	if runErr != nil {
		if err := setRestoreStatus(sctx, env, target, func(s *v1alpha1.RestoreStatus) {
			s.Phase = v1alpha1.RestoreFailed
			// What the restore reported of its volumes and objects stays.
			failed := failedStatus(runErr, s.StartTimestamp, &finished)
			s.Message, s.CompletionTimestamp, s.Errors = failed.Message, failed.CompletionTimestamp, failed.Errors
			s.ErrorCount = max(s.ErrorCount, failed.ErrorCount)
			end = *s
		}); err != nil {
			log.Printf("%v", err)
			return runErr
		}
		recordLocationError(sctx, env, &r, actionRestore, runErr)
		recordEnd(sctx, env, &r, actionRestore, string(end.Phase), end.OperationStatus)
		return jobenv.Final(runErr)
	}
	err = setRestoreStatus(sctx, env, target, func(s *v1alpha1.RestoreStatus) {
		*s = RestoreStatus(res.Result, s.StartTimestamp, &finished)
		addRestoredVolumes(s, res.Volumes)
		if res.Held > 0 {
			// The loudest part of the message: the application is not running on its data.
			s.Message += fmt.Sprintf("; DATA MISSING: %d objects held back (claims not restored, workloads scaled to 0, suspended or not restored) because their volumes' data did not arrive: see the restore's summary", res.Held)
		}
		s.WarningCount += int32(len(res.Warnings))
		s.Warnings = bounded(append(res.Warnings, s.Warnings...))
		end = *s
	})
	if err != nil {
		return err
	}
	recordEnd(sctx, env, &r, actionRestore, string(end.Phase), end.OperationStatus)
	return nil
}

// restoreResult is what a restore did: its objects, and its volumes.
type restoreResult struct {
	*apply.Result
	Volumes  []VolumeRecord
	Warnings []string // about volumes
}

// addRestoredVolumes reports the restore's volumes in s: a failed volume is an error and makes the restore
// PartiallySucceeded.
func addRestoredVolumes(s *v1alpha1.RestoreStatus, vols []VolumeRecord) {
	if len(vols) == 0 {
		return
	}
	done, failed := addVolumes(&s.OperationStatus, vols)
	s.Message += fmt.Sprintf("; %d of %d volumes restored", done, len(vols))
	if failed > 0 && s.Phase == v1alpha1.RestoreCompleted {
		s.Phase = v1alpha1.RestorePartiallySucceeded
	}
}

// RestoreStatus is the status that reports res.
func RestoreStatus(res *apply.Result, started, finished *metav1.Time) v1alpha1.RestoreStatus {
	n := res.Counts
	counts := &v1alpha1.RestoreCounts{
		Created: int32(n[apply.OutcomeRestored] + n[apply.OutcomeWouldCreate]),
		Updated: int32(n[apply.OutcomeUpdated] + n[apply.OutcomeReplaced] + n[apply.OutcomeWouldUpdate] + n[apply.OutcomeWouldReplace]),
		Skipped: int32(n[apply.OutcomeRetained] + n[apply.OutcomeSkipped] + n[apply.OutcomeWouldRetain]),
		Failed:  int32(n[apply.OutcomeFailed] + n[apply.OutcomeWouldFail]),
	}
	s := v1alpha1.RestoreStatus{
		Phase:           v1alpha1.RestoreCompleted,
		Stage:           v1alpha1.RestoreStageDone,
		OperationStatus: doneStatus(res.Total, res.ErrorCount, itemErrors(res.Errors), res.Warnings, started, finished),
		Counts:          counts,
	}
	verb := "restored"
	if res.DryRun {
		verb = "would be restored (dry run)"
	}
	s.Message = fmt.Sprintf("%d objects %s: %d created, %d updated, %d skipped, %d failed",
		res.Total, verb, counts.Created, counts.Updated, counts.Skipped, counts.Failed)
	switch res.Phase {
	case collect.PhasePartiallySucceeded:
		s.Phase = v1alpha1.RestorePartiallySucceeded
	case collect.PhaseFailed:
		s.Phase = v1alpha1.RestoreFailed
	}
	return s
}

func setRestoreStatus(ctx context.Context, env *jobenv.Env, t jobspec.Ref, mutate func(*v1alpha1.RestoreStatus)) error {
	return jobenv.UpdateStatusOf(ctx, env, t, func(r *v1alpha1.Restore) error {
		mutate(&r.Status)
		return nil
	})
}

func runRestore(ctx context.Context, env *jobenv.Env, r *v1alpha1.Restore, opts Options, log *jobLog) (*restoreResult, *store.Location, error) {
	ao, err := RestoreOptions(r.Name, r.Spec)
	if err != nil {
		return nil, nil, err
	}
	if tenancy.Confined(r.Namespace) {
		// A team's Restore writes into its own namespace alone, and no cluster-scoped object.
		ao.Namespace = r.Namespace
	}
	var b v1alpha1.Backup
	if err := get(ctx, env, "Backup", jobspec.Ref{Resource: v1alpha1.BackupsResource.Resource, Namespace: r.Namespace, Name: string(r.Spec.BackupName)}, &b); err != nil {
		return nil, nil, err
	}
	if !b.Status.Phase.Restorable() {
		return nil, nil, fmt.Errorf("Backup %s/%s is %s, not Completed: nothing to restore from", b.Namespace, b.Name, phaseOrPending(string(b.Status.Phase)))
	}
	loc, err := store.OpenLocation(ctx, env.Kube, env.Dynamic, string(b.Spec.Location), opts.Location, false)
	if err != nil {
		return nil, nil, &locationError{name: string(b.Spec.Location), err: err}
	}
	syncBeforeWork(ctx, env, loc, log)
	backup := store.Prefixed(loc.Store, layout.BackupPrefix(b.Namespace, b.Name))
	out := store.Prefixed(loc.Store, layout.RestorePrefix(r.Namespace, r.Name))
	vr, err := restoreVolumes(ctx, env, r, &b, backup, ao, log)
	if err != nil {
		return nil, loc, err
	}
	ao.ClaimVolumes, ao.MissingData = vr.claimVolumes(), vr.missingData()
	if err := setRestoreStatus(ctx, env, jobspec.Ref{Resource: v1alpha1.RestoresResource.Resource, Namespace: r.Namespace, Name: r.Name},
		func(s *v1alpha1.RestoreStatus) { s.Stage = v1alpha1.RestoreStageResources }); err != nil {
		log.Printf("%v", err)
	}
	if ao.WriteAs, err = restoreWriter(ctx, env, r.Namespace); err != nil {
		return nil, loc, err
	}
	log.Printf("restored objects are written as %s", ao.WriteAs.Impersonate.UserName)
	res, err := apply.Run(ctx, env.Config, backup, out, ao)
	if err != nil {
		return nil, loc, errors.New(location.Explain(err))
	}
	for _, w := range res.Warnings {
		log.Printf("warning: %s", w)
	}
	for _, e := range res.Errors {
		log.Printf("error: %s", e)
	}
	log.Printf("%d objects in %s: %v", res.Total, res.Finished.Sub(res.Started).Round(time.Millisecond), res.Counts)
	warnings := vr.settle(ctx)
	for _, w := range warnings {
		log.Printf("warning: %s", w)
	}
	vols := make([]VolumeRecord, len(vr.vols))
	for i, v := range vr.vols {
		vols[i] = *v
	}
	// Every volume's outcome is kept with the restore's summary; the status lists the first ones.
	if len(vols) > 0 {
		if err := collect.PutJSON(ctx, out, layout.VolumesKey, vols); err != nil {
			log.Printf("warning: %v", err)
		}
	}
	if r.Spec.DryRun {
		if err := writePlan(ctx, r, vr, res, out); err != nil {
			return nil, loc, err
		}
	}
	return &restoreResult{Result: res, Volumes: vols, Warnings: warnings}, loc, nil
}

func phaseOrPending(p string) string {
	if p == "" {
		return "Pending"
	}
	return p
}
